"""tf_dualenc: TensorFlow/Keras dual-encoder retrieval trained with the SamToNe loss.

Importing the package applies the environment shims in `tf_dualenc._env` (Keras backend, legacy tf.keras
for tensorflow-recommenders, the TFDV stand-in) before TensorFlow loads; heavy submodules load lazily.
"""

from tf_dualenc import _env

_env.apply()

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("losses", "models", "vocabulary", "evaluation", "demo", "doctor", "data", "training", "export", "indexing", "analysis")


def load_model(path):
    """Loads a tf_dualenc `.keras` file (dual encoder or cross-encoder, compiled with a tf_dualenc loss or not);
    see `tf_dualenc.loading`."""
    from tf_dualenc.loading import load_model as _load_model

    return _load_model(path)


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"tf_dualenc.{name}")
    raise AttributeError(f"module 'tf_dualenc' has no attribute {name!r}")
