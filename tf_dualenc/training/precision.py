"""Mixed-precision training: bfloat16 compute with float32 variables, float32 embeddings, logits and loss.

Under Keras' "mixed_bfloat16" policy every layer keeps its variables in float32 and computes in bfloat16, which
CPUs with AMX/AVX-512-BF16, GPUs and TPUs multiply several times faster than float32. bfloat16 has float32's
exponent range, so unlike float16 it needs no loss scaling. Only 8 significant bits, though: with cosine / τ and
τ = 0.01, a 4e-3 rounding of a cosine moves a logit by 0.4, so `DualEncoder` casts the projected embeddings to
float32 before L2 normalisation, and the losses compute logits, log-sum-exp and the mean in float32.

Precision is a training choice, not a property of the trained model: what is evaluated and saved computes in float32.
"""

import contextlib

PRECISION_POLICIES = {"float32": None, "bfloat16": "mixed_bfloat16"}


@contextlib.contextmanager
def training_precision(mixed_precision):
    """Sets Keras' global dtype policy for `mixed_precision` ("bfloat16" → "mixed_bfloat16") while models are built
    and trained, and restores the previous policy on exit, so nothing built afterwards inherits it.

    "float32" leaves the global policy as it is.
    """
    import keras

    policy = PRECISION_POLICIES.get(mixed_precision)
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def set_compute_policy(model, policy):
    """Gives every mixed-precision layer of `model` the dtype policy `policy`; returns what they had, for
    `restore_compute_policy`. Layers with a plain policy (the preprocessors' int32) keep theirs."""
    layers = [layer for layer in model._flatten_layers(include_self=True, recursive=True)
              if layer.dtype_policy.name.startswith("mixed_")]
    previous = [(layer, layer.dtype_policy) for layer in layers]
    for layer in layers:
        layer.dtype_policy = policy
    return previous


def restore_compute_policy(previous):
    for layer, policy in previous:
        layer.dtype_policy = policy


@contextlib.contextmanager
def float32_compute(model):
    """`model` computes in float32 inside the block (evaluating, saving), in its own policy again after it."""
    previous = set_compute_policy(model, "float32")
    try:
        yield model
    finally:
        restore_compute_policy(previous)
