"""`tf-dualenc doctor`: what is installed, and whether the parts that break first actually load."""

import importlib
import importlib.metadata
import os
import time

# The verified stack (requirements/requirements.in; a test keeps the two in step).
PINNED = {
    "tensorflow-cpu": "2.20.0",
    "tensorflow-text": "2.20.1",
    "keras": "3.15.1",
    "keras-hub": "0.32.0",
    "tf-keras": "2.20.1",
    "tensorflow-recommenders": "0.7.7",
    "scann": "1.4.2",
    "apache-beam": "2.77.0",
    "tfx": "1.21.0",
    "ml-pipelines-sdk": "1.21.0",
    "ml-metadata": "1.17.1",
    "tfx-bsl": "1.21.0",
    "tensorflow-transform": "1.21.0",
    "tensorflow-model-analysis": "0.52.0",
    "tensorflow-metadata": "1.21.0",
    "tensorflow-serving-api": "2.19.1",
    "sentencepiece": "0.2.3",
    "safetensors": "0.8.0",
    "numpy": "2.4.6",
    "protobuf": "6.33.6",
    "attrs": "25.4.0",
    "bm25s": "0.3.16",
    "pystemmer": "3.1.0",
    "matplotlib": "3.11.2",
    "dask": "2026.8.0",
    "distributed": "2026.8.0",
}
# Either build of TensorFlow satisfies the stack: tensorflow-cpu here, tensorflow on GPU machines.
_ALTERNATIVES = {"tensorflow-cpu": ("tensorflow-cpu", "tensorflow")}
# Pinned packages that only an extra of setup.py installs: in an environment of one's own (`pip install
# "tf_dualenc[tfx,beam,scann]"`) a part left out is reported, not failed. Everything else is the core.
OPTIONAL = {
    "tensorflow-recommenders": "recommenders", "scann": "scann", "apache-beam": "beam",
    "tfx": "tfx", "ml-pipelines-sdk": "tfx", "ml-metadata": "tfx", "tfx-bsl": "tfx", "tensorflow-transform": "tfx",
    "tensorflow-model-analysis": "tfx", "tensorflow-metadata": "tfx", "attrs": "tfx",
    "tensorflow-serving-api": "serving", "bm25s": "bm25", "pystemmer": "bm25", "matplotlib": "analysis",
    "dask": "dask", "distributed": "dask",
}


def installed_version(package):
    for name in _ALTERNATIVES.get(package, (package,)):
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return package, None


def _op_registered(name):
    from tensorflow.python.framework import op_def_registry

    return op_def_registry.get(name) is not None


def _check_tensorflow_text():
    import tensorflow_text  # noqa: F401  (registers the ops)

    missing = [op for op in ("SentencepieceOp", "SentencepieceTokenizeOp") if not _op_registered(op)]
    if missing:
        raise RuntimeError(f"ops not registered: {missing}")
    return "SentencepieceOp, SentencepieceTokenizeOp registered"


def _check_scann():
    from scann.scann_ops.py import scann_ops  # noqa: F401  (loads _scann_ops.so)

    # ScaNN registers its ops under the "Scann>" namespace.
    if not _op_registered("Scann>ScannSearchBatched"):
        raise RuntimeError("Scann>ScannSearchBatched op not registered")
    return "ScaNN TF ops loaded"


def _check_tfrs():
    import tensorflow_recommenders as tfrs

    return f"tfrs {tfrs.__version__} (tf.keras is {importlib.import_module('tensorflow').keras.__name__})"


def _check_tfx():
    import tfx.v1 as tfx  # noqa: F401

    from tf_dualenc import _env

    if _env.tfdv_is_stub():
        return "tfx.v1 imports; TFDV absent (stand-in active: StatisticsGen/SchemaGen/ExampleValidator unavailable)"
    return "tfx.v1 imports; TFDV installed"


def _check_keras():
    import keras
    import tensorflow as tf

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(f"Keras backend is {backend!r}, tf_dualenc needs 'tensorflow'")
    return f"Keras {keras.__version__} on TensorFlow {tf.__version__}"


# What `import tf_dualenc` sets in the environment unless the user did (tf_dualenc/_env.py), and why, so that a
# process-wide change is never silent (docs/python_api.md).
ENVIRONMENT_NOTES = {
    "KERAS_BACKEND": "keras-hub's towers run on Keras 3 over TensorFlow",
    "TF_USE_LEGACY_KERAS": "`tf.keras` is tf-keras (Keras 2) for the whole process, which tensorflow-recommenders needs; "
    "`import keras` stays Keras 3",
    "TF_CPP_MIN_LOG_LEVEL": "TensorFlow's C++ INFO and WARNING lines off (absl's too); the tf-dualenc command also turns off "
    "ERROR lines, such as oneDNN's DT_INT64 notice, unless --verbose",
}

# (label, check, the pinned package whose part it checks: absent when an extra left that part out).
CHECKS = (
    ("keras backend", _check_keras, None),
    ("tensorflow-text ops", _check_tensorflow_text, None),
    ("scann TF ops", _check_scann, "scann"),
    ("tensorflow-recommenders", _check_tfrs, "tensorflow-recommenders"),
    ("tfx", _check_tfx, "tfx"),
)


def _package_status(package, want, have, strict):
    """(status for --json, the line's text, passes) of one pinned package; `strict` holds the environment to the lock
    (what `make test` checks)."""
    if have == want:
        return "ok", "ok", True
    if have is None:
        if package in OPTIONAL and not strict:
            return "not_installed", f'NOT INSTALLED (pip install "tf_dualenc[{OPTIONAL[package]}]")', True
        return "missing", "MISSING", False
    if strict:
        return "mismatch", f"MISMATCH (want {want})", False
    return "differs", f"DIFFERS (verified with {want})", True


def check(print_fn=print, strict=False):
    """Prints the report as it goes (a check can take seconds) and returns it: {"ok", "strict", "packages" (name,
    installed, pinned, status), "environment" ({variable: value or None}), "checks" (name, status, detail, seconds)}.
    A package's status is one of "ok", "differs", "not_installed" (passing) or "missing", "mismatch" (failing); a
    check's one of "ok", "skipped" or "failed". The printed lines show the failing ones in capitals.

    Args:
        strict: hold the environment to the lock (`make test`): "ok" when every pinned package is installed at its
            pin and every check passes. Otherwise (an environment of one's own): "ok" when the core is installed and
            every check of an installed part passes; a part an extra left out is reported as not installed and its
            check skipped, and a version other than the verified one is reported, not failed.
    """
    report = {"ok": True, "strict": bool(strict), "packages": [], "environment": {}, "checks": []}
    print_fn("tf_dualenc doctor")
    print_fn("\nPinned stack (requirements/lock.txt):")
    installed = {}
    for package, want in PINNED.items():
        name, have = installed_version(package)
        installed[package] = have
        status, text, passes = _package_status(package, want, have, strict)
        report["ok"] &= passes
        report["packages"].append({"name": name, "installed": have, "pinned": want, "status": status})
        print_fn(f"  {name:<28} {have or '-':<12} {text}")
    print_fn("\nEnvironment (set by `import tf_dualenc` unless already set; see docs/python_api.md):")
    for name, why in ENVIRONMENT_NOTES.items():
        report["environment"][name] = os.environ.get(name)
        print_fn(f"  {name + '=' + os.environ.get(name, '(unset)'):<28} {why}")
    print_fn("\nImports and ops:")
    for label, check_part, package in CHECKS:
        start = time.perf_counter()
        if package is not None and installed.get(package, True) is None and not strict:
            detail, status = f'{package} is not installed (pip install "tf_dualenc[{OPTIONAL[package]}]")', "skipped"
        else:
            try:
                detail = check_part()
                status = "ok"
            except Exception as error:  # noqa: BLE001 — doctor reports every failure instead of stopping at one
                detail, status = f"{type(error).__name__}: {error}", "failed"
                report["ok"] = False
        seconds = time.perf_counter() - start
        report["checks"].append({"name": label, "status": status, "detail": detail, "seconds": round(seconds, 1)})
        print_fn(f"  {label:<26} {status.upper() if status == 'failed' else status:<7} {detail} ({seconds:.1f}s)")
    if report["ok"]:
        print_fn("\nAll checks passed.")
    elif strict:
        print_fn("\nSome checks FAILED: see above. Re-run `make setup` (it installs requirements/lock.txt).")
    else:
        print_fn('\nSome checks FAILED: see above. A MISSING package is part of the core: `pip install "tf_dualenc"` '
                 "installs it (`make setup` in a clone of the repository).")
    return report


def run(print_fn=print, strict=False):
    """Prints the report; returns 0 when it is "ok" (see `check`), else 1."""
    return 0 if check(print_fn, strict)["ok"] else 1
