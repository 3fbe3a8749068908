"""Mean pooling over the non-padding positions of a sequence."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tf_dualenc")
class MaskedMeanPooling(keras.layers.Layer):
    """Averages token vectors where `padding_mask` is 1.

        pooled_b = Σ_t mask_{b,t} · h_{b,t} / max(Σ_t mask_{b,t}, 1)

    Args (call):
        sequence: [B, T, H] float tensor.
        padding_mask: [B, T] tensor, 1 for real tokens and 0 for padding.

    Returns:
        [B, H]. An all-padding row pools to zeros instead of NaN.
    """

    def call(self, sequence, padding_mask):
        mask = ops.cast(padding_mask, sequence.dtype)[:, :, None]
        total = ops.sum(sequence * mask, axis=1)
        count = ops.maximum(ops.sum(mask, axis=1), ops.cast(1, sequence.dtype))
        return total / count

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[2])
