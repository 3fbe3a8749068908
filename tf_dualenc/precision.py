"""The compute precision of a model, in one place for training and inference: bfloat16 compute with float32
variables, float32 embeddings.

Under Keras' "mixed_bfloat16" policy every layer keeps its variables in float32 and computes in bfloat16, which
CPUs with AMX/AVX-512-BF16, GPUs and TPUs multiply several times faster than float32. bfloat16 has float32's
exponent range, so unlike float16 it needs no loss scaling. Only 8 significant bits, though: with cosine / τ and
τ = 0.01, a 4e-3 rounding of a cosine moves a logit by 0.4, so `DualEncoder` casts the projected embeddings to
float32 before L2 normalisation (what it returns is float32 unit vectors in either precision), and the losses
compute logits, log-sum-exp and the mean in float32.

A policy is a property of the layers, not of the weights. Training builds its model under the policy
(`training_precision`, `TrainConfig.mixed_precision`) and evaluates and saves it in float32 (`float32_compute`):
precision is a training choice, not a property of the trained model. `set_precision` puts a built or loaded model
(float32 variables) into a precision for inference (`tf-dualenc evaluate / export --precision`).

No heavy import at module level: the command line reads `PRECISIONS` while it builds its parsers.
"""

import contextlib

PRECISIONS = ("float32", "bfloat16")
PRECISION_POLICIES = {"float32": None, "bfloat16": "mixed_bfloat16"}


def check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} (valid: {list(PRECISIONS)})")
    return precision


def native_bfloat16():
    """(whether this machine computes bfloat16 natively, why): a TPU, a GPU of compute capability 8.0 or newer, or a
    CPU with AVX-512-BF16 or AMX-BF16 (from /proc/cpuinfo's flags; Linux). Elsewhere bfloat16 is emulated, and slower
    than float32."""
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return True, "TPU"
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0)
        if tuple(capability) >= (8, 0):
            return True, f"GPU of compute capability {capability[0]}.{capability[1]}"
    flags = cpu_flags()
    native = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if native:
        return True, "CPU with " + ", ".join(native)
    return False, "CPU without AVX-512-BF16 or AMX" if flags else "CPU flags unknown (no /proc/cpuinfo)"


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (the first processor's `flags` line), or an empty set where there is no such file."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision):
    """(precision, why): "auto" becomes "bfloat16" where `native_bfloat16()`, else "float32"; the others are themselves."""
    if precision != "auto":
        return check_precision(precision), "as configured"
    native, why = native_bfloat16()
    return ("bfloat16" if native else "float32"), f"auto: {why}"


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


def _float_layers(model):
    # Every layer with a floating-point policy, the model itself included; the tokenisers' int32 keep theirs.
    return [layer for layer in model._flatten_layers(include_self=True, recursive=True)
            if layer.dtype_policy.variable_dtype in ("float32", "float16", "bfloat16", "float64")]


def set_compute_policy(model, policy):
    """Gives every floating-point layer of `model` the dtype policy `policy` ("float32", "mixed_bfloat16"); returns
    what they had, for `restore_compute_policy`. Layers with an integer policy (the tokenisers' int32) keep theirs."""
    layers = _float_layers(model)
    previous = [(layer, layer.dtype_policy) for layer in layers]
    for layer in layers:
        layer.dtype_policy = policy
    return previous


def restore_compute_policy(previous):
    for layer, policy in previous:
        layer.dtype_policy = policy


def set_precision(model, precision):
    """Puts `model` (its variables stay float32) into `precision` for inference: "bfloat16" computes in bfloat16
    (Keras' mixed_bfloat16 policy on every floating-point layer), "float32" in float32. A dual encoder's
    embeddings are float32 and L2-normalised in float32 either way. Returns the model."""
    set_compute_policy(model, PRECISION_POLICIES[check_precision(precision)] or "float32")
    return model


def model_precision(model):
    """What reports, manifests and index metadata record: "bfloat16" when a Keras `model` computes in bfloat16, else
    "float32"; for another encoder its own `precision` attribute (an `ExportedDualEncoder`: its manifest's), or None."""
    policy = getattr(model, "dtype_policy", None)
    if policy is None:
        return getattr(model, "precision", None)
    return "bfloat16" if policy.compute_dtype == "bfloat16" else "float32"


@contextlib.contextmanager
def float32_compute(model):
    """`model` computes in float32 inside the block (evaluating, saving), in its own policy again after it."""
    previous = set_compute_policy(model, "float32")
    try:
        yield model
    finally:
        restore_compute_policy(previous)
