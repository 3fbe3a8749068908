"""Which ops an exported SavedModel needs, and which of them stock TF Serving does not register.

Stock `tensorflow/serving` (the Docker image and `tensorflow_model_server`) links TensorFlow's core kernels and
TF Text's op library (`@org_tensorflow_text//tensorflow_text:ops_lib` in `SUPPORTED_TENSORFLOW_OPS` of
`tensorflow_serving/model_servers/BUILD`). ScaNN's ops (`Scann>...`) are not in it: a ScaNN retrieval model needs
a model server built with them.

The op sets are read from this TensorFlow build: a child process imports TensorFlow alone (core ops), then
tensorflow_text, then ScaNN's TF ops, and lists the registered ops after each.
"""

import dataclasses
import functools
import json
import os
import subprocess
import sys

# Providers whose ops stock TF Serving registers besides TensorFlow core.
STOCK_SERVING_PROVIDERS = ("tensorflow", "tensorflow_text")

_LIST_OPS = r"""
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from tensorflow.python.client import pywrap_tf_session
from tensorflow.core.framework import op_def_pb2
import tensorflow

def names():
    buffer = pywrap_tf_session.TF_GetAllOpList()
    ops = op_def_pb2.OpList.FromString(pywrap_tf_session.TF_GetBuffer(buffer))
    pywrap_tf_session.TF_DeleteBuffer(buffer)
    return {op.name for op in ops.op}

seen = names()
result = {"tensorflow": sorted(seen)}
try:
    import tensorflow_text  # noqa: F401
    result["tensorflow_text"] = sorted(names() - seen)
    seen = names()
except ImportError:
    result["tensorflow_text"] = []
try:
    from scann.scann_ops.py import scann_ops  # noqa: F401  (registers the Scann> ops)
    result["scann"] = sorted(names() - seen)
except ImportError:
    result["scann"] = []
print("OPS " + json.dumps(result))
"""


@functools.lru_cache(maxsize=1)
def registered_ops_by_provider():
    """{"tensorflow": [...core ops], "tensorflow_text": [...], "scann": [...]} for this TensorFlow build."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", KERAS_BACKEND="tensorflow")
    out = subprocess.run([sys.executable, "-c", _LIST_OPS], capture_output=True, text=True, env=env, timeout=600)
    line = next((l for l in out.stdout.splitlines() if l.startswith("OPS ")), None)
    if line is None:
        raise RuntimeError(f"Could not list the registered TensorFlow ops (exit {out.returncode}): {out.stderr[-1500:]}")
    return {provider: frozenset(ops) for provider, ops in json.loads(line[4:]).items()}


def saved_model_ops(saved_model_dir):
    """Every op type in the SavedModel's graphs, including its function library (where tf.functions live)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(saved_model_dir, "saved_model.pb")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No saved_model.pb in {saved_model_dir}.")
    with open(path, "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        graph = meta_graph.graph_def
        ops.update(node.op for node in graph.node)
        for function in graph.library.function:
            ops.update(node.op for node in function.node_def)
    # Calls of the graph's own functions appear as ops named after the function.
    functions = {f.signature.name for mg in saved_model.meta_graphs for f in mg.graph_def.library.function}
    return sorted(ops - functions)


@dataclasses.dataclass
class OpAudit:
    """The ops of one export, grouped by the library that registers them."""

    saved_model_dir: str
    ops: list
    by_provider: dict
    unknown: list

    @property
    def not_in_stock_serving(self):
        """Ops stock TF Serving would reject with `Op type not registered`."""
        extra = [op for provider, ops in self.by_provider.items() if provider not in STOCK_SERVING_PROVIDERS for op in ops]
        return sorted(extra + self.unknown)

    @property
    def stock_serving_compatible(self):
        return not self.not_in_stock_serving

    def to_dict(self):
        return {
            "ops": self.ops,
            "non_core_ops": {p: ops for p, ops in self.by_provider.items() if p != "tensorflow" and ops},
            "unknown_ops": self.unknown,
            "not_in_stock_tf_serving": self.not_in_stock_serving,
            "stock_tf_serving_compatible": self.stock_serving_compatible,
        }


def audit_saved_model(saved_model_dir):
    """Lists the SavedModel's ops by provider and those stock TF Serving does not register."""
    ops = saved_model_ops(saved_model_dir)
    registered = registered_ops_by_provider()
    by_provider, unknown = {}, []
    for op in ops:
        provider = next((p for p, names in registered.items() if op in names), None)
        if provider is None:
            unknown.append(op)
        else:
            by_provider.setdefault(provider, []).append(op)
    return OpAudit(os.path.abspath(saved_model_dir), ops, by_provider, unknown)
