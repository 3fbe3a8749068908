"""Shapes of the T5 encoder towers: a tiny one for tests and the public T5.1.1 sizes.

T5.1.1 (and FLAN-T5, same architecture): gated-GELU feed-forward with the tanh-approximated GELU, no
parameter sharing between embedding and classifier, relative position buckets, RMS layer norm with
ε = 1e-6. Values from the public t5-v1_1 `config.json` files (d_model, d_ff, num_layers, num_heads, d_kv).
"""

import copy

from tf_dualenc.models.activations import gelu_approximate

T5_VOCABULARY_SIZE = 32128  # the 32,000 SentencePiece pieces padded to a multiple of 128, as in the checkpoints

_T511 = {"activation": gelu_approximate, "use_gated_activation": True, "layer_norm_epsilon": 1e-6, "dropout": 0.1}

T5_TOWER_CONFIGS = {
    # Unit tests: 2 layers, hidden 64.
    "tiny": dict(_T511, num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128, key_value_dim=32),
    "t5_1.1_small": dict(_T511, num_layers=8, num_heads=6, hidden_dim=512, intermediate_dim=1024, key_value_dim=64),
    "t5_1.1_base": dict(_T511, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=2048, key_value_dim=64),
    "t5_1.1_large": dict(_T511, num_layers=24, num_heads=16, hidden_dim=1024, intermediate_dim=2816, key_value_dim=64),
    "t5_1.1_xl": dict(_T511, num_layers=24, num_heads=32, hidden_dim=2048, intermediate_dim=5120, key_value_dim=64),
    "t5_1.1_xxl": dict(_T511, num_layers=24, num_heads=64, hidden_dim=4096, intermediate_dim=10240, key_value_dim=64),
}


def t5_tower_config(size, vocabulary_size=T5_VOCABULARY_SIZE, **overrides):
    """Constructor arguments of `T5EncoderTower` for a named size, with optional overrides (e.g. dropout)."""
    if size not in T5_TOWER_CONFIGS:
        raise ValueError(f"Unknown T5 tower size {size!r}; valid sizes: {sorted(T5_TOWER_CONFIGS)}.")
    config = copy.copy(T5_TOWER_CONFIGS[size])
    config["vocabulary_size"] = vocabulary_size
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError(f"Unknown T5 tower config keys {sorted(unknown)}; valid keys: {sorted(config)}.")
    config.update(overrides)
    return config
