"""Activations the T5 family needs that Keras has no serialisable name for."""

import keras


@keras.saving.register_keras_serializable(package="tf_dualenc")
def gelu_approximate(x):
    """GELU with the tanh approximation, as T5.1.1 and FLAN-T5 use ("gelu_new" / "gated-gelu" in their configs).

        gelu(x) ≈ 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))

    Keras' string "gelu" is the exact erf form, which differs from the checkpoints' by up to ~1e-3.
    """
    return keras.activations.gelu(x, approximate=True)
