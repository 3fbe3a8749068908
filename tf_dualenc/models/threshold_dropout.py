"""Dropout that draws its keep/drop decisions as 16-bit random integers: half the random-number cost of TensorFlow's."""

import types

import tensorflow as tf

_LEVELS = 1 << 16


def threshold_dropout(x, rate, seed_generator):
    """Inverted dropout as `tf.nn.experimental.stateless_dropout` does it, with a cheaper keep/drop draw.

    Each element is dropped when a uniform 16-bit integer `u` falls below `t = round(rate · 2¹⁶)`, so

        out = x · [u ≥ t] · 2¹⁶ / (2¹⁶ − t),     P(drop) = t / 2¹⁶ (within 2⁻¹⁷ of `rate`),  E[out] = x exactly.

    Every 32-bit word of TensorFlow's counter-based Philox generator gives two elements their `u`, and no uniform
    float is formed: TensorFlow's own dropout draws one 32-bit word per element, converts it to a float and then
    compares and selects. On a BERT attention-probability tensor ([batch, heads, T, T], the largest tensor a training
    step makes) this halves the dropout's cost. With it and an additive attention mask, a bfloat16 training step of
    all-MiniLM-L6-v2 became ~1.3× faster (docs/benchmarks.md). In bfloat16 it is also closer to `rate` than the stock
    kernel, whose bfloat16 uniform has 8 bits of resolution (a measured drop rate of 0.1015 for rate 0.1).

    The seed comes from `seed_generator` (a `keras.random.SeedGenerator`, e.g. a `keras.layers.Dropout`'s), which
    advances by one draw per call exactly as Keras' dropout does: resetting its state replays the same masks, which is
    how the cached-negatives step (`tf_dualenc.training.cached_step`) re-runs a mini-batch.

    Args:
        x: a floating tensor of rank ≥ 1.
        rate: the drop probability, a Python float in [0, 1).
        seed_generator: the `keras.random.SeedGenerator` to draw this call's seed from.

    Returns:
        A tensor like `x`.

    Example:
    ```python
    generator = keras.random.SeedGenerator(0)
    dropped = threshold_dropout(tf.ones([4, 8]), 0.1, generator)
    ```
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`rate` must be in [0, 1); got {rate!r}.")
    threshold = round(rate * _LEVELS)
    if threshold == 0:
        return x
    # Keras keeps seed states as int64 variables while TensorFlow's stateless ops want int32: fold as Keras does.
    seed = tf.cast(tf.math.floormod(tf.convert_to_tensor(seed_generator.next()), tf.int32.max - 1), tf.int32)
    shape = tf.shape(x)
    last = shape[-1]
    words = tf.random.stateless_uniform(tf.concat([shape[:-1], [(last + 1) // 2]], 0), seed=seed, minval=None,
                                        maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), tf.concat([shape[:-1], [-1]], 0))[..., :last]
    keep = halves >= tf.constant(threshold, tf.uint16)
    scale = tf.constant(_LEVELS / (_LEVELS - threshold), x.dtype)
    if x.dtype == tf.float32:
        # A select keeps its 1-byte condition for the backward pass where a multiply keeps a 4-byte mask: 0.5 GB less
        # in a float32 MiniLM step at batch 32, at the same speed. In bfloat16 the mask is 2 bytes and TensorFlow's
        # select is the slower kernel (a step 10-15% slower), so there the mask multiplies.
        return tf.where(keep, x * scale, tf.zeros((), x.dtype))
    return x * (tf.cast(keep, x.dtype) * scale)


def use_threshold_dropout(layer):
    """Make one `keras.layers.Dropout` draw with `threshold_dropout` (set on the instance, so its config, its seed
    generator and what a saved model records stay Keras'). A layer with a `noise_shape` keeps Keras' own draw.

    Example:
    ```python
    layer = keras.layers.Dropout(0.1)
    use_threshold_dropout(layer)
    ```
    """
    layer.call = types.MethodType(_dropout_call, layer)


def _dropout_call(self, inputs, training=False):
    if training and self.rate > 0 and self.noise_shape is None:
        return threshold_dropout(inputs, self.rate, self.seed_generator)
    return type(self).call(self, inputs, training=training)
