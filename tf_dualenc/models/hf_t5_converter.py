"""Hugging Face T5 / T5.1.1 / FLAN-T5 checkpoints (config.json + safetensors) → `T5EncoderTower`.

keras-hub 0.32 has no converter for model type "t5" (`T5Backbone.from_preset(<HF folder>)` fails), so this
maps the encoder tensors by name. Hugging Face stores dense kernels as [out, in]; Keras as [in, out].
"""

import json
import os

import numpy as np

from tf_dualenc.models.activations import gelu_approximate
from tf_dualenc.models.t5_encoder_tower import T5EncoderTower

# keras-hub's T5MultiHeadAttention hard-codes these; checkpoints with others cannot be represented.
_BUCKETS, _MAX_DISTANCE = 32, 128
_ACTIVATIONS = {"gated-gelu": (gelu_approximate, True), "relu": ("relu", False), "gated-relu": ("relu", True)}


def _read_config(folder):
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No config.json in {folder}")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("model_type") not in ("t5", "mt5", "umt5"):
        raise ValueError(f"{path}: model_type {config.get('model_type')!r} is not a T5 model.")
    projection = config.get("feed_forward_proj", "relu")
    if projection not in _ACTIVATIONS:
        raise ValueError(f"{path}: feed_forward_proj {projection!r} is not supported; supported: {sorted(_ACTIVATIONS)}.")
    buckets = (config.get("relative_attention_num_buckets", 32), config.get("relative_attention_max_distance", 128))
    if buckets != (_BUCKETS, _MAX_DISTANCE):
        raise ValueError(f"{path}: relative attention {buckets} differs from keras-hub's fixed ({_BUCKETS}, {_MAX_DISTANCE}).")
    return config


def _read_tensors(folder):
    from safetensors.numpy import load_file

    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    if not files:
        raise FileNotFoundError(f"No .safetensors file in {folder}")
    tensors = {}
    for name in files:
        tensors.update(load_file(os.path.join(folder, name)))
    return tensors


def t5_tower_from_huggingface(folder, *, dropout=None, name=None):
    """Builds a `T5EncoderTower` carrying a Hugging Face T5 checkpoint's encoder weights.

    Args:
        folder: a Hugging Face T5-family folder with `config.json` and `*.safetensors`.
        dropout: override the checkpoint's `dropout_rate`.
    """
    folder = os.fspath(folder)
    config = _read_config(folder)
    tensors = _read_tensors(folder)
    activation, gated = _ACTIVATIONS[config.get("feed_forward_proj", "relu")]
    tower = T5EncoderTower(
        vocabulary_size=config["vocab_size"],
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        hidden_dim=config["d_model"],
        intermediate_dim=config["d_ff"],
        key_value_dim=config["d_kv"],
        dropout=config.get("dropout_rate", 0.1) if dropout is None else dropout,
        activation=activation,
        use_gated_activation=gated,
        layer_norm_epsilon=config.get("layer_norm_epsilon", 1e-6),
        name=name,
    )

    used = set()

    def take(key, transpose=False):
        if key not in tensors:
            raise ValueError(f"{folder}: checkpoint has no tensor {key!r} (needed for the encoder).")
        used.add(key)
        value = tensors[key].astype(np.float32)
        return value.T if transpose else value

    embedding_key = "encoder.embed_tokens.weight" if "encoder.embed_tokens.weight" in tensors else "shared.weight"
    embedding, *layers, final_norm = tower.encoder_layers
    embedding.embeddings.assign(take(embedding_key))
    for i, layer in enumerate(layers):
        prefix = f"encoder.block.{i}.layer."
        attention = layer.self_attention
        attention.query_projector.kernel.assign(take(prefix + "0.SelfAttention.q.weight", True))
        attention.key_projector.kernel.assign(take(prefix + "0.SelfAttention.k.weight", True))
        attention.value_projector.kernel.assign(take(prefix + "0.SelfAttention.v.weight", True))
        attention.output_projector.kernel.assign(take(prefix + "0.SelfAttention.o.weight", True))
        if i == 0:
            attention.relative_attention_bias.assign(take(prefix + "0.SelfAttention.relative_attention_bias.weight"))
        layer.self_attention_layer_norm.weight.assign(take(prefix + "0.layer_norm.weight"))
        if gated:
            layer.input_projector.kernel.assign(take(prefix + "1.DenseReluDense.wi_0.weight", True))
            layer.gate_projector.kernel.assign(take(prefix + "1.DenseReluDense.wi_1.weight", True))
        else:
            layer.input_projector.kernel.assign(take(prefix + "1.DenseReluDense.wi.weight", True))
        layer.output_projector.kernel.assign(take(prefix + "1.DenseReluDense.wo.weight", True))
        layer.layer_norm.weight.assign(take(prefix + "1.layer_norm.weight"))
    final_norm.weight.assign(take("encoder.final_layer_norm.weight"))
    leftover = sorted(k for k in tensors if k.startswith("encoder.") and k not in used and k != "encoder.embed_tokens.weight")
    if leftover:
        raise ValueError(f"{folder}: encoder tensors not mapped onto the tower: {leftover[:5]}")
    return tower
