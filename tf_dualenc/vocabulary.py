"""SentencePiece vocabularies for T5 towers: load and check one, or train one on a corpus."""

import io
import json
import os

import sentencepiece as spm

from tf_dualenc.atomic_write import atomic_writer

# T5's special ids, which keras-hub's T5Tokenizer requires.
T5_SPECIAL_PIECES = {0: "<pad>", 1: "</s>", 2: "<unk>"}


def read_vocabulary(path):
    """Reads and checks a SentencePiece model file; returns its bytes.

    Raises FileNotFoundError or ValueError naming `path` when the file is missing, is not a SentencePiece
    model, or lacks T5's special pieces (pad=0 `<pad>`, eos=1 `</s>`, unk=2 `<unk>`).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path}")
    with open(path, "rb") as f:
        proto = f.read()
    try:
        processor = spm.SentencePieceProcessor(model_proto=proto)
    except Exception as error:  # sentencepiece raises RuntimeError/OSError variants for a bad proto
        raise ValueError(f"Vocabulary file {path} is not a valid SentencePiece model: {error}") from error
    check_t5_special_pieces(processor, path)
    return proto


def check_t5_special_pieces(processor, path):
    size = processor.vocab_size()
    found = {i: processor.id_to_piece(i) for i in T5_SPECIAL_PIECES if i < size}
    if found != T5_SPECIAL_PIECES or processor.pad_id() != 0 or processor.eos_id() != 1 or processor.unk_id() != 2:
        raise ValueError(
            f"Vocabulary {path} does not have T5's special pieces (want {T5_SPECIAL_PIECES}, pad_id=0, eos_id=1, "
            f"unk_id=2; got {found}, pad_id={processor.pad_id()}, eos_id={processor.eos_id()}, "
            f"unk_id={processor.unk_id()}). Train one with `tf-dualenc train-vocab`."
        )


def _iter_texts(paths, text_fields):
    for path in paths:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Corpus file not found: {path}")
        is_jsonl = path.endswith((".jsonl", ".json"))
        with open(path, encoding="utf-8", errors="strict") as f:
            for line_number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                if not is_jsonl:
                    yield line
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{line_number}: malformed JSON ({error.msg})") from error
                parts = [str(record[field]) for field in text_fields if record.get(field)]
                if not parts:
                    raise ValueError(f"{path}:{line_number}: none of the fields {list(text_fields)} has text")
                yield " ".join(parts)


def train_sentencepiece_vocabulary(
    inputs, output_path, *, vocabulary_size=32000, text_fields=("title", "text"), model_type="unigram"
):
    """Trains a SentencePiece model with T5's special ids on text files.

    Args:
        inputs: a path or list of paths: plain text (one text per line) or JSONL (BEIR `corpus.jsonl`,
            `queries.jsonl`, pair files), whose `text_fields` are joined.
        output_path: where the `.model` file goes (written atomically; a `.vocab` file is not kept).
        vocabulary_size: number of pieces, including the 3 special ones.
        text_fields: JSONL fields to read.
        model_type: "unigram" (T5's) or "bpe".

    Returns:
        `output_path`. The model has pad=0 `<pad>`, eos=1 `</s>`, unk=2 `<unk>` and no BOS, as
        `keras_hub.models.T5Tokenizer` requires.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if vocabulary_size < 8:
        raise ValueError(f"`vocabulary_size` must be at least 8; got {vocabulary_size}.")
    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"`model_type` must be 'unigram' or 'bpe'; got {model_type!r}.")
    texts = list(_iter_texts(inputs, tuple(text_fields)))
    if not texts:
        raise ValueError(f"No text found in {list(map(os.fspath, inputs))}.")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model,
            vocab_size=vocabulary_size,
            model_type=model_type,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            pad_piece="<pad>",
            eos_piece="</s>",
            unk_piece="<unk>",
            character_coverage=1.0,
            hard_vocab_limit=False,
            minloglevel=2,
        )
    except RuntimeError as error:
        raise ValueError(f"SentencePiece training failed on {list(map(os.fspath, inputs))}: {error}") from error
    output_path = os.fspath(output_path)
    # Check before writing, so a model T5 cannot use never lands at `output_path`.
    check_t5_special_pieces(spm.SentencePieceProcessor(model_proto=model.getvalue()), output_path)
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with atomic_writer(output_path, binary=True) as f:
        f.write(model.getvalue())
    return output_path
