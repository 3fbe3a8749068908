"""The optional parts of tf_dualenc and the setup.py extra that installs each: one clear error when one is missing.

`require(module)` imports a module only an extra provides and returns it; when the module is not installed it raises
`MissingExtraError`, which names the module, what needed it and the `pip install "tf_dualenc[<extra>]"` to run, instead
of a bare ModuleNotFoundError from deep inside the package. The lazy imports at the entry points (build-index, pipeline,
serve, the serving client, BM25, the brute-force search, the retrieval export, analyze) call it before anything else of
the optional part; `explain_missing_module` gives the same error for a missing module the command line meets elsewhere.
"""

import importlib

# Top-level module -> the extra of setup.py that installs it (tests/test_extras.py checks each extra exists there).
EXTRAS = {
    "apache_beam": "index",
    "scann": "index",
    "tensorflow_recommenders": "recommenders",
    "bm25s": "bm25",
    "Stemmer": "bm25",
    "grpc": "serving",
    "tensorflow_serving": "serving",
    "matplotlib": "analysis",
    "sklearn": "analysis",
    "dask": "dask",
    "distributed": "dask",
    "tfx": "tfx",
    "kfp": "tfx",
    "ml_metadata": "tfx",
}


class MissingExtraError(ImportError):
    """An optional part of tf_dualenc was used without the extra that installs it."""

    def __init__(self, module, extra, feature=None):
        self.module, self.extra, self.feature = module, extra, feature
        super().__init__(f"{feature or 'this part of tf_dualenc'} needs the '{module}' module, which is not installed. "
                         f'Install it with: pip install "tf_dualenc[{extra}]"', name=module)


def _is_missing(error, module):
    """Whether `error` says `module` (or a package above it) is not installed, not that something inside it failed."""
    missing = error.name
    return missing is None or module == missing or module.startswith(missing + ".")


def explain_missing_module(error, feature=None):
    """`error` as a MissingExtraError when it is a ModuleNotFoundError for a module an extra provides; else `error`."""
    name = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    top = name.split(".")[0] if name else None
    if top in EXTRAS:
        return MissingExtraError(top, EXTRAS[top], feature)
    return error


def require(module, extra=None, *, feature=None):
    """Import `module` (e.g. "apache_beam" or "dask.distributed") and return it; `MissingExtraError` if it is not
    installed. `extra` defaults to the one `EXTRAS` names for the module's top-level package; `feature` says what
    needs it (e.g. "tf-dualenc build-index")."""
    top = module.split(".")[0]
    extra = extra or EXTRAS[top]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if not _is_missing(error, module):
            raise
        raise MissingExtraError((error.name or top).split(".")[0], extra, feature) from None
