import json

import numpy as np
import pytest

import keras_hub
import sentencepiece as spm

from tf_dualenc import cli
from tf_dualenc.models import build_t5_dual_encoder
from tf_dualenc.vocabulary import read_vocabulary, train_sentencepiece_vocabulary

TEXTS = [
    "Paris is the capital of France.",
    "The Nile is the longest river in Africa.",
    "Water boils at one hundred degrees.",
    "Jupiter is the largest planet.",
    "Light travels very fast in a vacuum.",
] * 20


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    with open(path, "w") as f:
        for i, text in enumerate(TEXTS):
            f.write(json.dumps({"_id": str(i), "title": "", "text": text}) + "\n")
    return path


def test_trained_vocabulary_has_t5_special_ids_and_works_in_a_model(corpus, tmp_path):
    path = train_sentencepiece_vocabulary(corpus, tmp_path / "out" / "spiece.model", vocabulary_size=120)
    processor = spm.SentencePieceProcessor(model_file=str(path))
    assert [processor.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    assert (processor.pad_id(), processor.eos_id(), processor.unk_id(), processor.bos_id()) == (0, 1, 2, -1)
    assert processor.vocab_size() <= 120
    tokenizer = keras_hub.models.T5Tokenizer(proto=str(path))
    ids = np.asarray(tokenizer("Paris is the capital")).tolist()
    assert 2 not in ids  # every word was in the training text: no <unk>
    model = build_t5_dual_encoder("tiny", vocabulary=path, query_sequence_length=8, document_sequence_length=16)
    assert model.encode_queries(["capital of France"]).shape == (1, 64)
    assert not list(tmp_path.joinpath("out").glob("*.tmp"))


def test_train_vocab_cli(corpus, tmp_path, capsys):
    out = tmp_path / "v.model"
    assert cli.main(["train-vocab", "--input", str(corpus), "--output", str(out), "--vocabulary-size", "100"]) == 0
    assert out.exists() and "wrote" in capsys.readouterr().out
    read_vocabulary(out)


def test_vocabulary_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.model"):
        read_vocabulary(tmp_path / "missing.model")
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"text": "ok"}\n{not json}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: malformed JSON"):
        train_sentencepiece_vocabulary(bad_json, tmp_path / "x.model")
    no_text = tmp_path / "empty_fields.jsonl"
    no_text.write_text('{"title": "", "text": ""}\n')
    with pytest.raises(ValueError, match=r"empty_fields\.jsonl:1: none of the fields"):
        train_sentencepiece_vocabulary(no_text, tmp_path / "x.model")
    assert not (tmp_path / "x.model").exists()


def test_vocabulary_without_t5_special_ids_is_rejected(tmp_path):
    import io

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXTS), model_writer=model, vocab_size=60, minloglevel=2, hard_vocab_limit=False
    )  # default ids: unk=0, bos=1, eos=2
    path = tmp_path / "default_ids.model"
    path.write_bytes(model.getvalue())
    with pytest.raises(ValueError, match=r"default_ids\.model does not have T5's special pieces"):
        read_vocabulary(path)


def test_cli_reports_bad_input_as_an_error(tmp_path, capsys):
    assert cli.main(["train-vocab", "--input", str(tmp_path / "nope.txt"), "--output", str(tmp_path / "v.model")]) == 2
    assert "nope.txt" in capsys.readouterr().err
    np.testing.assert_equal((tmp_path / "v.model").exists(), False)
