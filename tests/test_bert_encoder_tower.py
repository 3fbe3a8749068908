"""BertEncoderTower's fused inference graph (`inference_call`) against the Keras forward pass it stands in for, on a
tiny random BERT: same numbers in float32 (and close in bfloat16), padding respected, the live variables read, and
DualEncoder's encode path taking it."""

import numpy as np
import pytest
import tensorflow as tf

import keras


def _tiny_tower(activation="gelu"):
    import keras_hub

    from tf_dualenc.models.bert_encoder_tower import BertEncoderTower

    backbone = keras_hub.models.BertBackbone(vocabulary_size=97, num_layers=2, num_heads=2, hidden_dim=64,
                                             intermediate_dim=128, max_sequence_length=32, dropout=0.1)
    return BertEncoderTower(backbone, feedforward_activation=activation)


def _features(batch=4, length=12, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([length, length - 3, 5, 1])[:batch]
    mask = np.arange(length)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.integers(1, 97, (batch, length)), 0)
    return {"token_ids": tf.constant(ids, tf.int32), "segment_ids": tf.constant(rng.integers(0, 2, (batch, length)), tf.int32),
            "padding_mask": tf.constant(mask)}


@pytest.mark.parametrize("activation", ["gelu", "gelu_approximate"])
def test_inference_call_equals_the_keras_forward_pass_in_float32(activation):
    tower = _tiny_tower(activation)
    features = _features()
    want = tower(features, training=False).numpy()
    got = tf.function(tower.inference_call)(features).numpy()
    np.testing.assert_allclose(got, want, atol=2e-6)
    # Padding does not leak: the same texts padded further give the same vectors.
    longer = {k: tf.pad(v, [[0, 0], [0, 5]]) for k, v in features.items()}
    np.testing.assert_allclose(tower.inference_call(longer).numpy(), want, atol=2e-6)


def test_inference_call_reads_the_variables_as_they_are_now():
    tower = _tiny_tower()
    features = _features()
    fused = tf.function(tower.inference_call)
    before = fused(features).numpy()
    layer = tower.backbone.transformer_layers[1]._feedforward_intermediate_dense
    layer.kernel.assign(layer.kernel * 1.5)
    after = fused(features).numpy()
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, tower(features, training=False).numpy(), atol=2e-6)


def test_inference_call_is_close_to_the_keras_forward_pass_in_bfloat16():
    from tf_dualenc.training.precision import training_precision

    with training_precision("bfloat16"):
        tower = _tiny_tower()
    assert tower.backbone.compute_dtype == "bfloat16"
    features = _features()
    want = tf.cast(tower(features, training=False), tf.float32).numpy()
    got = tf.cast(tf.function(tower.inference_call)(features), tf.float32).numpy()
    cosine = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    assert cosine.min() > 0.999, cosine


def test_dual_encoder_encodes_and_embeds_for_inference_through_the_fused_graph(monkeypatch):
    from tf_dualenc.models import DualEncoder
    from tf_dualenc.models.bert_encoder_tower import BertEncoderTower

    tower = _tiny_tower()
    model = DualEncoder(tower, None, None, architecture="sde", projection_initializer="identity")
    features = _features()
    calls = []
    original = BertEncoderTower.inference_call
    monkeypatch.setattr(BertEncoderTower, "inference_call", lambda self, f: calls.append(1) or original(self, f))
    inference = model.embed_documents(features).numpy()
    assert calls
    calls.clear()
    keras_path = model.embed_documents(features, training=None).numpy()  # Keras' own call, e.g. inside fit()
    assert not calls
    np.testing.assert_allclose(inference, keras_path, atol=2e-6)


def _without_speedups(tower):
    """The same tower with keras-hub's own attention and dropout (the per-instance overrides removed)."""
    for layer in tower.backbone.transformer_layers:
        del layer._self_attention_layer.__dict__["_compute_attention"]
        del layer._self_attention_dropout.__dict__["call"]
        del layer._feedforward_dropout.__dict__["call"]
    del tower.backbone.embeddings_dropout.__dict__["call"]
    return tower


def test_training_attention_equals_keras_attention_without_dropout():
    tower = _tiny_tower()
    features = _features()
    fast = tower(features, training=False).numpy()
    with tf.GradientTape() as tape:
        fast_loss = tf.reduce_sum(tower(features, training=False) ** 2)
    fast_gradients = tape.gradient(fast_loss, tower.trainable_variables)
    _without_speedups(tower)
    np.testing.assert_allclose(fast, tower(features, training=False).numpy(), atol=2e-6)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tower(features, training=False) ** 2)
    for got, want in zip(fast_gradients, tape.gradient(loss, tower.trainable_variables)):
        if want is not None:
            np.testing.assert_allclose(tf.convert_to_tensor(got).numpy(), tf.convert_to_tensor(want).numpy(), atol=2e-5)


def test_training_drops_out_with_the_tower_seed_generators():
    from tf_dualenc.training.cached_step import dropout_seed_states

    tower = _tiny_tower()
    features = _features()
    states = dropout_seed_states(tower)
    before = [tf.identity(state.value) for state in states]
    first = tower(features, training=True).numpy()
    assert np.abs(first - tower(features, training=False).numpy()).max() > 1e-3
    assert np.abs(first - tower(features, training=True).numpy()).max() > 1e-3
    for state, value in zip(states, before):
        state.assign(value)
    np.testing.assert_allclose(tower(features, training=True).numpy(), first, atol=1e-6)


def test_a_rebuilt_tower_keeps_the_training_speedups():
    from tf_dualenc.models.bert_encoder_tower import BertEncoderTower

    rebuilt = BertEncoderTower.from_config(_tiny_tower().get_config())
    layer = rebuilt.backbone.transformer_layers[0]
    assert "_compute_attention" in vars(layer._self_attention_layer)
    assert "call" in vars(layer._feedforward_dropout) and "call" in vars(rebuilt.backbone.embeddings_dropout)
