"""threshold_dropout against its formula: drop frequency, scale, unbiased mean, replay from a reset seed state."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from tf_dualenc.models.threshold_dropout import threshold_dropout, use_threshold_dropout


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_threshold_dropout_drops_at_the_rate_and_keeps_the_mean(dtype):
    x = tf.ones([500, 1001], dtype)  # an odd last axis: the last 32-bit word gives one element its draw
    out = tf.cast(threshold_dropout(x, 0.1, keras.random.SeedGenerator(3)), tf.float32).numpy()
    threshold = round(0.1 * 65536)
    assert abs((out == 0).mean() - threshold / 65536) < 0.002
    kept = out[out != 0]
    np.testing.assert_allclose(kept, np.float32(tf.cast(65536 / (65536 - threshold), dtype).numpy()))
    if dtype == "float32":
        assert abs(out.mean() - 1.0) < 0.003


def test_threshold_dropout_draws_independent_masks_along_every_axis():
    out = threshold_dropout(tf.ones([400, 64]), 0.5, keras.random.SeedGenerator(0)).numpy() == 0
    # Neighbours along the last axis share a 32-bit word: their drops must still be uncorrelated.
    pairs = out[:, 0::2], out[:, 1::2]
    assert abs(np.corrcoef(pairs[0].ravel(), pairs[1].ravel())[0, 1]) < 0.03
    assert not np.array_equal(out[0], out[1])


def test_threshold_dropout_replays_its_masks_when_the_seed_state_is_reset():
    generator = keras.random.SeedGenerator(7)
    x = tf.random.stateless_normal([8, 33], seed=[1, 2])
    before = tf.identity(generator.state.value)
    first = threshold_dropout(x, 0.1, generator).numpy()
    second = threshold_dropout(x, 0.1, generator).numpy()
    generator.state.assign(before)
    np.testing.assert_array_equal(threshold_dropout(x, 0.1, generator).numpy(), first)
    assert not np.array_equal(first, second)


def test_threshold_dropout_with_rate_zero_is_the_identity_and_rejects_a_bad_rate():
    x = tf.ones([3, 5])
    assert threshold_dropout(x, 0.0, keras.random.SeedGenerator(0)) is x
    with pytest.raises(ValueError, match=r"`rate` must be in \[0, 1\); got 1.0"):
        threshold_dropout(x, 1.0, keras.random.SeedGenerator(0))


def test_use_threshold_dropout_draws_with_it_in_training_only():
    layer = keras.layers.Dropout(0.25, seed=1)
    x = tf.ones([64, 128])
    stock = layer(x, training=True).numpy()
    use_threshold_dropout(layer)
    state = tf.identity(layer.seed_generator.state.value)
    ours = layer(x, training=True).numpy()
    layer.seed_generator.state.assign(state)
    np.testing.assert_array_equal(threshold_dropout(x, 0.25, layer.seed_generator).numpy(), ours)
    assert not np.array_equal(ours, stock)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    # A noise_shape (the same mask along some axes) keeps Keras' own draw, which supports it.
    shaped = keras.layers.Dropout(0.5, noise_shape=(64, 1), seed=1)
    use_threshold_dropout(shaped)
    out = shaped(x, training=True).numpy()
    assert all(len(set(row)) == 1 for row in out)


def test_t5_towers_train_with_threshold_dropout():
    from tf_dualenc.models import T5EncoderTower
    from tf_dualenc.models.t5_tower_configs import t5_tower_config
    from tf_dualenc.training.cached_step import dropout_seed_states

    tower = T5EncoderTower(**t5_tower_config("tiny", vocabulary_size=50, dropout=0.2))
    dropouts = [layer for layer in tower.encoder._flatten_layers() if type(layer) is keras.layers.Dropout]
    assert dropouts and all("call" in vars(layer) for layer in dropouts)
    features = {"token_ids": tf.constant([[5, 6, 7, 0], [8, 9, 0, 0]]), "padding_mask": tf.constant([[1, 1, 1, 0], [1, 1, 0, 0]])}
    states = dropout_seed_states(tower)
    before = [tf.identity(state.value) for state in states]
    first = tower(features, training=True).numpy()
    assert np.abs(first - tower(features, training=False).numpy()).max() > 1e-4
    for state, value in zip(states, before):
        state.assign(value)
    np.testing.assert_allclose(tower(features, training=True).numpy(), first, atol=1e-6)
    rebuilt = T5EncoderTower.from_config(tower.get_config())
    assert all("call" in vars(layer) for layer in rebuilt.encoder._flatten_layers() if type(layer) is keras.layers.Dropout)
