"""Process-wide environment shims, in one place.

`import tf_dualenc` runs `apply()` before anything imports TensorFlow. It does two things:

1. `KERAS_BACKEND=tensorflow` and `TF_USE_LEGACY_KERAS=1` (setdefault, so a user's own setting wins).
   With both set, `import keras` is Keras 3 (which keras-hub needs) while `tf.keras` is tf-keras (which
   tensorflow-recommenders needs and refuses to import without). They only take effect if set before
   TensorFlow is first imported, which is why this module must stay free of heavy imports.
2. A stand-in for `tensorflow_data_validation` when the real package is absent. TFDV has no wheel for
   glibc < 2.39 (see ../shared/STACK.md), yet `import tfx.v1` imports it at module level and uses its
   names in annotations. The stand-in lets every such import and attribute lookup succeed and raises
   `MissingTFDVError` (naming the package) the moment anything from it is actually called.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types

TFDV_MODULE = "tensorflow_data_validation"
TFDV_PACKAGE = "tensorflow-data-validation"


class MissingTFDVError(ImportError):
    """Raised when code really uses TensorFlow Data Validation, which is not installed."""


def _missing(qualname):
    message = (
        f"{qualname} needs the '{TFDV_PACKAGE}' package, which is not installed. It has no wheel for "
        "this platform (glibc < 2.39); TFX components that compute statistics (StatisticsGen, SchemaGen, "
        "ExampleValidator) cannot run here. Install tensorflow-data-validation on a glibc >= 2.39 machine "
        "to use them."
    )

    class _MissingMeta(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return _missing(f"{qualname}.{name}")

        def __call__(cls, *args, **kwargs):
            raise MissingTFDVError(message)

        def __repr__(cls):
            return f"<missing {qualname} ({TFDV_PACKAGE} not installed)>"

    return _MissingMeta(qualname.rsplit(".", 1)[-1], (), {"__module__": TFDV_MODULE})


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _missing(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


class _TFDVStubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves `tensorflow_data_validation` and any submodule of it as a stub module."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == TFDV_MODULE or fullname.startswith(TFDV_MODULE + "."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        module.TF_DUALENC_STUB = True
        return module

    def exec_module(self, module):
        pass


def tfdv_is_stub():
    """True when `tensorflow_data_validation` resolves to this module's stand-in."""
    spec = importlib.util.find_spec(TFDV_MODULE)
    return spec is not None and isinstance(spec.loader, _TFDVStubFinder)


def _install_tfdv_stub():
    if any(isinstance(f, _TFDVStubFinder) for f in sys.meta_path):
        return
    if TFDV_MODULE in sys.modules or importlib.util.find_spec(TFDV_MODULE) is not None:
        return
    # Last, so a TFDV installed later in the process (or on sys.path) still wins.
    sys.meta_path.append(_TFDVStubFinder())


def apply():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # TensorFlow's C++ INFO lines drown the CLI's output; users can still lower this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    _install_tfdv_stub()
    import warnings

    # keras-hub's T5 attention layers warn about a Keras mask they never use, once per layer and call: in Python
    # as on the command line, that is noise (the towers pass the padding mask explicitly).
    warnings.filterwarnings("ignore", message=r".*T5MultiHeadAttention.*does not support masking")
