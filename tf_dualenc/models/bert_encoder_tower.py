"""A BERT-family encoder tower (BERT, MiniLM, ...): keras-hub's BertBackbone, mean-pooled."""

import keras
import keras_hub

from tf_dualenc.models.activations import gelu_approximate, gelu_exact
from tf_dualenc.models.masked_mean_pooling import MaskedMeanPooling

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
