"""A BERT-family encoder tower (BERT, MiniLM, ...): keras-hub's BertBackbone, mean-pooled."""

import types

import keras
import keras_hub
import tensorflow as tf

from tf_dualenc.models.activations import gelu_approximate, gelu_exact
from tf_dualenc.models.masked_mean_pooling import MaskedMeanPooling
from tf_dualenc.models.threshold_dropout import threshold_dropout, use_threshold_dropout

_ACTIVATIONS = {"gelu": gelu_exact, "gelu_approximate": gelu_approximate}


@keras.saving.register_keras_serializable(package="tf_dualenc")
class BertEncoderTower(keras.Model):
    """`{"token_ids", "segment_ids", "padding_mask"}` → masked mean of the backbone's `sequence_output`.

    Mean pooling over non-padding tokens is what sentence-transformers' all-MiniLM-L6-v2 uses, so a
    `DualEncoder` with this tower and an identity projection reproduces that model's embeddings.

    Args:
        backbone: a `keras_hub.models.BertBackbone` (or a config dict of one).
        feedforward_activation: "gelu" (exact, erf — what BERT/MiniLM checkpoints were trained with and
            what Hugging Face runs) or "gelu_approximate" (tanh, keras-hub 0.32's hard-coded choice). keras-hub's
            choice moves all-MiniLM-L6-v2 embeddings by up to 3e-4 (cosine 1 − 1.5e-6) from the checkpoint's.

    Example:
    ```python
    tower = BertEncoderTower.from_preset("/path/to/hf/all-MiniLM-L6-v2")  # local Hugging Face folder
    ```
    """

    def __init__(self, backbone, feedforward_activation="gelu", **kwargs):
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        if not isinstance(backbone, keras_hub.models.BertBackbone):
            raise ValueError(f"`backbone` must be a keras_hub.models.BertBackbone; got {type(backbone).__name__}.")
        if feedforward_activation not in _ACTIVATIONS:
            raise ValueError(
                f"`feedforward_activation` must be one of {sorted(_ACTIVATIONS)}; got {feedforward_activation!r}."
            )
        activation = _ACTIVATIONS[feedforward_activation]
        for layer in backbone.transformer_layers:
            # BertBackbone's config has no activation field; set it on each already-built encoder layer.
            layer.activation = activation
            layer._feedforward_intermediate_dense.activation = activation
            # Training speed (why: docs/benchmarks.md): the attention adds the padding mask as a bias instead of two
            # selects over every [B, heads, T, T] score, and every dropout draws 16-bit thresholds. Set per instance,
            # like the activation, so the layers, their variables and the saved config stay keras-hub's.
            attention = layer._self_attention_layer
            attention._compute_attention = types.MethodType(_training_attention, attention)
            use_threshold_dropout(layer._self_attention_dropout)
            use_threshold_dropout(layer._feedforward_dropout)
        use_threshold_dropout(backbone.embeddings_dropout)
        # The tower mean-pools `sequence_output`; BERT's [CLS] pooler is never used, so it is frozen (a trainable
        # weight without a gradient makes every optimizer step warn "Gradients do not exist for variables").
        backbone.pooled_dense.trainable = False
        self.feedforward_activation = feedforward_activation
        self.backbone = backbone
        self.pooling = MaskedMeanPooling(dtype=backbone.dtype_policy, name="mean_pooling")
        inputs = {
            "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
            "segment_ids": keras.Input(shape=(None,), dtype="int32", name="segment_ids"),
            "padding_mask": keras.Input(shape=(None,), dtype="int32", name="padding_mask"),
        }
        sequence = backbone(inputs)["sequence_output"]
        pooled = self.pooling(sequence, inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs=pooled, **kwargs)

    @property
    def output_dim(self):
        return self.backbone.hidden_dim

    def inference_call(self, inputs):
        """The tower's output for inference (no dropout), from one graph of plain TensorFlow ops over the same
        variables: what `DualEncoder` encodes and exports with. Equal to `tower(inputs, training=False)` (within
        3e-7 in float32 on all-MiniLM-L6-v2) and faster on CPU, because TensorFlow's graph optimiser (grappler's
        remapper, with oneDNN) fuses each `MatMul` + `BiasAdd` + GELU into one `_FusedMatMul`, which the Keras layers'
        einsum / add / activation graph does not match. Also: one query-key-value product instead of three, the
        1/√d scale folded into the query weights, and the padding mask added as a [B, 1, 1, T] bias instead of a
        select over every [B, heads, T, T] score. Measured on 2 AMD EPYC vCPUs, 256 SciFact abstracts at batch 64:
        55 docs/s against 41 in float32 and 85 against 55 in bfloat16, where the fused kernel also spares the
        unvectorised bfloat16 `Erfc` (docs/benchmarks.md).

        Args:
            inputs: `{"token_ids", "segment_ids", "padding_mask"}`, [B, T] each.

        Returns:
            [B, hidden] mean-pooled token vectors in the backbone's compute dtype, as `__call__` gives.
        """
        backbone = self.backbone
        dtype = backbone.compute_dtype
        token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]
        segment_ids = inputs.get("segment_ids")
        batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        # Embeddings and layer norms in float32, as Keras' mixed precision computes them.
        x = tf.gather(tf.cast(backbone.token_embedding.embeddings, tf.float32), token_ids)
        x += tf.cast(backbone.position_embedding.position_embeddings, tf.float32)[None, :length]
        if segment_ids is None:
            segment_ids = tf.zeros_like(token_ids)
        x += tf.gather(tf.cast(backbone.segment_embedding.embeddings, tf.float32), segment_ids)
        x = tf.cast(_layer_norm(x, backbone.embeddings_layer_norm), dtype)
        mask_bias = tf.cast((1.0 - tf.cast(padding_mask, tf.float32))[:, None, None, :] * -1e9, dtype)
        for layer in backbone.transformer_layers:
            x = _encoder_layer(layer, x, mask_bias, batch, length, dtype, self.feedforward_activation)
        return self.pooling(x, padding_mask)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "feedforward_activation": self.feedforward_activation,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """From a keras-hub BERT preset name or a local Hugging Face BERT-family folder (config.json + safetensors)."""
        return cls(keras_hub.models.BertBackbone.from_preset(preset), **kwargs)


def _training_attention(self, query, key, value, attention_mask=None, training=None, return_attention_scores=False,
                        use_causal_mask=False):
    """`keras.layers.MultiHeadAttention._compute_attention` for BERT's case (4-D projections, a padding mask), bound
    to each of the tower's attention layers. The same function (within rounding: a masked score is −1e9 plus the score
    instead of −1e9); in training, the keep/drop draw is `threshold_dropout`'s from the layer's own seed generator.
    One difference: Keras zeroes a row whose every key is masked, where this gives it a uniform softmax. A padding mask
    never makes one (each text keeps at least one token), and pooling drops padded positions' outputs anyway.

    Keras' version masks with a select before the softmax and another after it, and its dropout draws a float per
    element then selects; each is a pass over the [B, heads, T, T] scores forwards and again backwards. Here the mask is
    one broadcast add of a [B, 1, 1, T] bias (its gradient is the identity), and dropout compares 16-bit draws and
    applies them in one pass (`threshold_dropout`).
    """
    if use_causal_mask or len(query.shape) != 4:
        return type(self)._compute_attention(self, query, key, value, attention_mask, training, return_attention_scores,
                                             use_causal_mask)
    query = keras.ops.multiply(query, keras.ops.cast(self._inverse_sqrt_key_dim, query.dtype))
    scores = keras.ops.einsum(self._dot_product_equation, key, query)
    if attention_mask is not None:
        while len(attention_mask.shape) < len(scores.shape):
            attention_mask = keras.ops.expand_dims(attention_mask, axis=-3)  # the heads axis
        large_negative = -3e4 if scores.dtype == "float16" else -1e9  # as keras.layers.Softmax, within float16's range
        scores += (1.0 - keras.ops.cast(attention_mask, scores.dtype)) * keras.ops.cast(large_negative, scores.dtype)
    probabilities = self._softmax(scores)
    dropped = probabilities
    if training and self._dropout > 0.0:
        dropped = threshold_dropout(probabilities, self._dropout, self._dropout_layer.seed_generator)
    return keras.ops.einsum(self._combine_equation, dropped, value), probabilities


def _dense(x, kernel, bias, dtype):
    """x [..., in] @ kernel [in, out] + bias, as MatMul + BiasAdd on a 2-D x: the pattern grappler fuses."""
    return tf.nn.bias_add(tf.matmul(x, tf.cast(kernel, dtype)), tf.cast(bias, dtype))


def _layer_norm(x, layer):
    """`keras.layers.LayerNormalization` over the last axis, in float32."""
    x = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + layer.epsilon) * tf.cast(layer.gamma, tf.float32) + tf.cast(
        layer.beta, tf.float32)


def _encoder_layer(layer, x, mask_bias, batch, length, dtype, activation):
    """One post-norm `keras_hub.layers.TransformerEncoder` (BERT's) at inference, on x [B, T, H]."""
    attention = layer._self_attention_layer
    query, key, value = attention._query_dense, attention._key_dense, attention._value_dense
    hidden, heads, head_dim = query.kernel.shape
    scale = 1.0 / float(head_dim) ** 0.5
    kernel = tf.concat([tf.reshape(query.kernel, [hidden, -1]) * scale, tf.reshape(key.kernel, [hidden, -1]),
                        tf.reshape(value.kernel, [hidden, -1])], axis=1)
    bias = tf.concat([tf.reshape(query.bias, [-1]) * scale, tf.reshape(key.bias, [-1]), tf.reshape(value.bias, [-1])], 0)
    flat = tf.reshape(x, [-1, hidden])
    qkv = tf.transpose(tf.reshape(_dense(flat, kernel, bias, dtype), [batch, length, 3, heads, head_dim]), [2, 0, 3, 1, 4])
    probabilities = tf.nn.softmax(tf.matmul(qkv[0], qkv[1], transpose_b=True) + mask_bias)
    context = tf.reshape(tf.transpose(tf.matmul(probabilities, qkv[2]), [0, 2, 1, 3]), [-1, heads * head_dim])
    output = attention._output_dense
    attended = _dense(context, tf.reshape(output.kernel, [heads * head_dim, hidden]), output.bias, dtype)
    x = tf.cast(_layer_norm(flat + attended, layer._self_attention_layer_norm), dtype)
    inner = layer._feedforward_intermediate_dense
    inner = tf.nn.gelu(_dense(x, inner.kernel, inner.bias, dtype), approximate=activation == "gelu_approximate")
    out = layer._feedforward_output_dense
    x = _layer_norm(x + _dense(inner, out.kernel, out.bias, dtype), layer._feedforward_layer_norm)
    return tf.reshape(tf.cast(x, dtype), [batch, length, hidden])
