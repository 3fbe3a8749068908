"""Process-wide environment shims, in one place.

`import tf_dualenc` runs `apply()` before anything imports TensorFlow. It does three things:

1. `KERAS_BACKEND=tensorflow` and `TF_USE_LEGACY_KERAS=1` (setdefault, so a user's own setting wins).
   With both set, `import keras` is Keras 3 (which keras-hub needs) while `tf.keras` is tf-keras (which
   tensorflow-recommenders needs and refuses to import without). They only take effect if set before
   TensorFlow is first imported, which is why this module must stay free of heavy imports.
2. A stand-in for `tensorflow_data_validation` when the real package is absent. TFDV has no wheel for
   glibc < 2.39 (see ../shared/STACK.md), yet `import tfx.v1` imports it at module level and uses its
   names in annotations. The stand-in lets every such import and attribute lookup succeed and raises
   `MissingTFDVError` (naming the package) the moment anything from it is actually called.
3. TensorFlow's C++ log lines: INFO and WARNING off (`TF_CPP_MIN_LOG_LEVEL=2`, and the same level for the absl
   logging some of TensorFlow's C++ code uses), unless the user set `TF_CPP_MIN_LOG_LEVEL`. The command line goes
   further (`quiet_tensorflow_logs`): ERROR lines off too, all lines back with `--verbose`.
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


# TensorFlow's C++ log levels: TF_CPP_MIN_LOG_LEVEL hides lines below it (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL).
TF_LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# `import tf_dualenc`: INFO and WARNING lines off.
LIBRARY_TF_LOG_LEVEL = "2"
# The command line: ERROR lines off too. TensorFlow logs "oneDNN supports DT_INT64 only on platforms with AVX-512" at
# ERROR in every command that encodes (on these machines, whose CPUs do have AVX-512F); a real failure still reaches
# the command as an exception, which it prints. `--verbose` shows every line.
CLI_TF_LOG_LEVEL = "3"
VERBOSE_TF_LOG_LEVEL = "0"
# absl::SetMinLogLevel in libtensorflow_framework (absl LTS of TensorFlow 2.20). Some TensorFlow C++ code (Grappler's
# "loop_optimizer.cc:934] Skipping loop optimization ..." WARNING, once per traced model) logs through absl, which
# TF_CPP_MIN_LOG_LEVEL does not reach; absl's level is set to the same value, which has the same meaning there.
_ABSL_SET_MIN_LOG_LEVEL = ("_ZN4absl12lts_2025012714SetMinLogLevelENS0_18LogSeverityAtLeastE",)

# Whether the user set TF_CPP_MIN_LOG_LEVEL: then neither the library nor the command line changes it.
user_set_tf_log_level = TF_LOG_LEVEL_VARIABLE in os.environ


def _set_absl_min_log_level(level):
    """absl's minimum log level in TensorFlow's C++ library (loads the library, which importing TensorFlow does anyway);
    False when it cannot (no TensorFlow, another absl)."""
    import ctypes

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return False
    path = os.path.join(list(spec.submodule_search_locations)[0], "libtensorflow_framework.so.2")
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return False
    for symbol in _ABSL_SET_MIN_LOG_LEVEL:
        function = getattr(library, symbol, None)
        if function is not None:
            function.restype = None
            function(ctypes.c_int(level))
            return True
    return False


class _TensorFlowLogLevel(importlib.abc.MetaPathFinder):
    """On the first `import tensorflow`, before TensorFlow's own code runs: absl's level = TF_CPP_MIN_LOG_LEVEL."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "tensorflow" and self in sys.meta_path:
            sys.meta_path.remove(self)
            try:
                level = int(os.environ.get(TF_LOG_LEVEL_VARIABLE, "0"))
            except ValueError:
                level = 0
            _set_absl_min_log_level(min(max(level, 0), 3))
        return None  # the import itself goes on as usual


def quiet_tensorflow_logs(verbose=False):
    """TensorFlow's C++ log lines as the command line has them (`tf_dualenc.quiet_tensorflow_logs`): none, not even
    ERROR-level notices (`CLI_TF_LOG_LEVEL`), or with `verbose` every one (`VERBOSE_TF_LOG_LEVEL`), through
    `TF_CPP_MIN_LOG_LEVEL` and absl's level, unless the user set TF_CPP_MIN_LOG_LEVEL. Only before TensorFlow is
    imported (after, it changes nothing: a process that already runs TensorFlow, such as a test calling the command
    line's `main`, keeps its levels). The command line calls it before any command runs."""
    if user_set_tf_log_level or "tensorflow" in sys.modules:
        return
    # The import hook above passes it on to absl.
    os.environ[TF_LOG_LEVEL_VARIABLE] = VERBOSE_TF_LOG_LEVEL if verbose else CLI_TF_LOG_LEVEL


def apply():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # TensorFlow's C++ INFO and WARNING lines drown the output; a user's own setting wins.
    os.environ.setdefault(TF_LOG_LEVEL_VARIABLE, LIBRARY_TF_LOG_LEVEL)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _TensorFlowLogLevel) for f in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowLogLevel())
    _install_tfdv_stub()
    import warnings

    # keras-hub's T5 attention layers warn about a Keras mask they never use, once per layer and call: in Python
    # as on the command line, that is noise (the towers pass the padding mask explicitly).
    warnings.filterwarnings("ignore", message=r".*T5MultiHeadAttention.*does not support masking")
