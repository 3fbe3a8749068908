"""Runs exported signatures in a fresh process (nothing of the exporting process is reused).

    python export_runner.py <saved_model_dir> <requests.json> <out.npz>

requests.json: [[signature, input_name, values], ...] or [[signature, {input_name: values, ...}], ...];
out.npz holds `<i>_<output key>` arrays.
"""

import json
import sys

import numpy as np

import tf_dualenc  # noqa: F401  (environment shims only)
from tf_dualenc.export import load_export

import tensorflow as tf

loaded = load_export(sys.argv[1])
arrays = {}
with open(sys.argv[2]) as f:
    requests = json.load(f)
def _tensor(values):
    dtype = tf.string if values and isinstance(np.ravel(np.asarray(values, dtype=object))[0], str) else tf.float32
    return tf.constant(values, dtype)


for i, request in enumerate(requests):
    signature, inputs = request[0], (request[1] if len(request) == 2 else {request[1]: request[2]})
    outputs = loaded.signatures[signature](**{name: _tensor(values) for name, values in inputs.items()})
    for key, value in outputs.items():
        value = value.numpy()
        arrays[f"{i}_{key}"] = value.astype(str) if value.dtype == object else value
np.savez(sys.argv[3], **arrays)
print("OK")
