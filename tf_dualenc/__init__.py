"""tf_dualenc: TensorFlow/Keras dual-encoder retrieval trained with the SamToNe loss.

Importing the package applies the environment shims in `tf_dualenc._env` (Keras backend, legacy tf.keras
for tensorflow-recommenders, the TFDV stand-in) before TensorFlow loads. Everything else loads on first use, so
`import tf_dualenc` stays cheap: the subpackages (`tf_dualenc.models`, `tf_dualenc.reranking`, ...) and the names
of `__all__` (`tf_dualenc.DualEncoder`, `tf_dualenc.SamToNeLoss`, ...) are attributes that import their module when
first read. See docs/python_api.md.
"""

import importlib
import importlib.util

from tf_dualenc import _env
from tf_dualenc._env import quiet_tensorflow_logs

_env.apply()

__version__ = "0.1.0"

# The names a user reaches for first, each with the module that is its one home.
_LAZY_NAMES = {
    "load_model": "tf_dualenc.loading",
    "DualEncoder": "tf_dualenc.models",
    "CrossEncoder": "tf_dualenc.models",
    "build_t5_dual_encoder": "tf_dualenc.models",
    "build_bert_dual_encoder": "tf_dualenc.models",
    "build_t5_cross_encoder": "tf_dualenc.models",
    "build_bert_cross_encoder": "tf_dualenc.models",
    "SamToNeLoss": "tf_dualenc.losses",
    "InBatchSoftmaxLoss": "tf_dualenc.losses",
    "PairLoss": "tf_dualenc.losses",
    "TrainConfig": "tf_dualenc.training",
    "train": "tf_dualenc.training",
    "evaluate_retrieval": "tf_dualenc.evaluation",
    "export_encoder": "tf_dualenc.export",
    "export_retrieval_model": "tf_dualenc.export",
    "load_export": "tf_dualenc.export",
    "RetrievalIndex": "tf_dualenc.indexing",
    "build_index": "tf_dualenc.indexing",
    "train_sentencepiece_vocabulary": "tf_dualenc.vocabulary",
}

SUBPACKAGES = ("analysis", "data", "evaluation", "export", "indexing", "losses", "models", "reranking", "training")

__all__ = sorted([*_LAZY_NAMES, "quiet_tensorflow_logs"]) + list(SUBPACKAGES)


def __getattr__(name):
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value  # later reads skip this hook
        return value
    # Any submodule, public or not (`tf_dualenc.demo`, ...), as after `import tf_dualenc.<name>`.
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'tf_dualenc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
