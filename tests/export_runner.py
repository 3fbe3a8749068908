"""Runs exported signatures in a fresh process (nothing of the exporting process is reused).

    python export_runner.py <saved_model_dir> <requests.json> <out.npz>

requests.json: [[signature, input_name, values], ...]; out.npz holds `<i>_<output key>` arrays.
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
for i, (signature, input_name, values) in enumerate(requests):
    dtype = tf.string if values and isinstance(np.ravel(np.asarray(values, dtype=object))[0], str) else tf.float32
    outputs = loaded.signatures[signature](**{input_name: tf.constant(values, dtype)})
    for key, value in outputs.items():
        value = value.numpy()
        arrays[f"{i}_{key}"] = value.astype(str) if value.dtype == object else value
np.savez(sys.argv[3], **arrays)
print("OK")
