"""A T5 encoder tower: the encoder half of keras-hub's T5Backbone, mean-pooled."""

import keras
import keras_hub

from tf_dualenc.models.masked_mean_pooling import MaskedMeanPooling
from tf_dualenc.models.threshold_dropout import use_threshold_dropout

# The encoder path of keras_hub.models.T5Backbone, by attribute name (weights copied by these).
_ENCODER_ATTRIBUTES = ("token_embedding", "encoder_transformer_layers", "encoder_layer_norm")


def _encoder_layers(backbone):
    layers = []
    for name in _ENCODER_ATTRIBUTES:
        value = getattr(backbone, name)
        layers.extend(value if isinstance(value, list) else [value])
    return layers


@keras.saving.register_keras_serializable(package="tf_dualenc")
class T5EncoderTower(keras.Model):
    """T5 encoder with masked mean pooling: `{"token_ids", "padding_mask"}` → [B, hidden_dim].

    keras-hub exports T5 only as the whole encoder-decoder `T5Backbone`; this tower builds one and keeps the
    functional sub-graph from `encoder_token_ids`/`encoder_padding_mask` to `encoder_sequence_output`, so the
    decoder's layers are not part of the tower (nor of its saved weights). Then

        pooled_b = Σ_t mask_{b,t} · encoder(x)_{b,t} / Σ_t mask_{b,t}

    Projection and L2 normalisation belong to `DualEncoder`, so ADE-SPL can share one projection.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, key_value_dim, dropout,
        activation, use_gated_activation, layer_norm_epsilon: as `keras_hub.models.T5Backbone`.
        See `tf_dualenc.models.t5_tower_config` for the T5.1.1 sizes.

    Example:
    ```python
    tower = T5EncoderTower(**t5_tower_config("tiny", vocabulary_size=32128))
    pooled = tower({"token_ids": ids, "padding_mask": mask})
    ```

    Reference: Raffel et al., "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
    Transformer" (JMLR 2020); Ni et al., "Sentence-T5" / "GTR" for mean-pooled T5 encoders.
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        key_value_dim=None,
        dropout=0.1,
        activation="relu",
        use_gated_activation=True,
        layer_norm_epsilon=1e-6,
        dtype=None,
        **kwargs,
    ):
        backbone = keras_hub.models.T5Backbone(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            key_value_dim=key_value_dim,
            dropout=dropout,
            activation=activation,
            use_gated_activation=use_gated_activation,
            layer_norm_epsilon=layer_norm_epsilon,
            # Tied: an encoder never uses the output (reverse) embedding, so don't allocate one.
            tie_embedding_weights=True,
            dtype=dtype,
        )
        # The encoder sub-graph of the backbone; the decoder's layers are not on its path, so they are
        # dropped with `backbone` at the end of __init__.
        self.encoder = keras.Model(
            inputs={
                "encoder_token_ids": backbone.input["encoder_token_ids"],
                "encoder_padding_mask": backbone.input["encoder_padding_mask"],
            },
            outputs=backbone.output["encoder_sequence_output"],
            name="t5_encoder",
        )
        self.encoder_layers = _encoder_layers(backbone)
        for layer in self.encoder._flatten_layers():
            if type(layer) is keras.layers.Dropout:  # half the random-number cost in training (threshold_dropout)
                use_threshold_dropout(layer)
        # keras-hub 0.32 initialises T5 token embeddings with TruncatedNormal(1.0), whose first argument
        # is the *mean*: every token starts near the all-ones vector, mean-pooled texts have cosine
        # ~0.9998 with each other, and an in-batch softmax between two fresh towers cannot get started.
        # T5 itself (Mesh TF / HF) draws embeddings from N(0, 1); so do we.
        embedding = self.encoder_layers[0].embeddings
        embedding.assign(keras.initializers.RandomNormal(stddev=1.0)(embedding.shape, embedding.dtype))
        self.pooling = MaskedMeanPooling(dtype=dtype, name="mean_pooling")

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        sequence = self.encoder({"encoder_token_ids": token_ids, "encoder_padding_mask": padding_mask})
        pooled = self.pooling(sequence, padding_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=pooled,
            dtype=dtype,
            **kwargs,
        )
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.key_value_dim = key_value_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.use_gated_activation = use_gated_activation
        self.layer_norm_epsilon = layer_norm_epsilon

    @property
    def output_dim(self):
        return self.hidden_dim

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "key_value_dim": self.key_value_dim,
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "use_gated_activation": self.use_gated_activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.saving.deserialize_keras_object(config["dtype"])
        return cls(**config)

    @classmethod
    def from_backbone(cls, backbone, **kwargs):
        """A tower carrying the encoder weights of an existing (e.g. pretrained) `T5Backbone`."""
        if not isinstance(backbone, keras_hub.models.T5Backbone):
            raise ValueError(f"`backbone` must be a keras_hub.models.T5Backbone; got {type(backbone).__name__}.")
        tower = cls(
            vocabulary_size=backbone.vocabulary_size,
            num_layers=backbone.num_layers,
            num_heads=backbone.num_heads,
            hidden_dim=backbone.hidden_dim,
            intermediate_dim=backbone.intermediate_dim,
            key_value_dim=backbone.key_value_dim,
            dropout=backbone.dropout,
            activation=backbone.activation,
            use_gated_activation=backbone.use_gated_activation,
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            **kwargs,
        )
        for target, source in zip(tower.encoder_layers, _encoder_layers(backbone), strict=True):
            if target is tower.encoder_layers[0]:
                # The token embedding; an untied source also has a decoder-only reverse embedding.
                target.embeddings.assign(source.embeddings)
            else:
                target.set_weights(source.get_weights())
        return tower

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Loads pretrained encoder weights from a keras-hub T5 preset.

        `preset` is a keras-hub preset name (e.g. "t5_1.1_small", needs the Kaggle hub) or a local preset
        folder (`config.json` + `model.weights.h5`, as written by `T5Backbone.save_to_preset`).
        """
        backbone = keras_hub.models.T5Backbone.from_preset(preset)
        return cls.from_backbone(backbone, **kwargs)
