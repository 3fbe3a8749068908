"""Activations the towers need: the T5 family's, which Keras has no serialisable name for, and BERT's exact GELU."""

import keras


@keras.saving.register_keras_serializable(package="tf_dualenc")
def gelu_approximate(x):
    """GELU with the tanh approximation, as T5.1.1 and FLAN-T5 use ("gelu_new" / "gated-gelu" in their configs).

        gelu(x) ≈ 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))

    Keras' string "gelu" is the exact erf form, which differs from the checkpoints' by up to ~1e-3.
    """
    return keras.activations.gelu(x, approximate=True)


def gelu_exact(x):
    """Exact (erf) GELU, as BERT/MiniLM checkpoints were trained with, evaluated in float32 whatever `x`'s dtype:

        gelu(x) = 0.5·x·(1 + erf(x / √2)) = 0.5·x·erfc(−x / √2)

    In float32 this is `keras.activations.gelu(x, approximate=False)`, exactly. Under bfloat16 compute the result is
    cast back to bfloat16: TensorFlow's CPU `Erfc` kernel has no vectorised bfloat16 path, so a bfloat16 GELU took
    28% of a bfloat16 MiniLM forward pass (profile in docs/benchmarks.md) against 6% in float32; the casts cost far
    less, and the float32 erf is also the more accurate one.
    """
    x = keras.ops.convert_to_tensor(x)
    if x.dtype in ("float32", "float64"):
        return keras.activations.gelu(x, approximate=False)
    return keras.ops.cast(keras.activations.gelu(keras.ops.cast(x, "float32"), approximate=False), x.dtype)
