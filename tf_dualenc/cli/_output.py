"""The output folder of the commands that train (reports and records are written with `tf_dualenc.atomic_write`)."""

import os


def new_output_dir(path, names):
    """Makes `path`, refusing one that already holds any of `names` (trained models are never overwritten)."""
    existing = [name for name in names if os.path.exists(os.path.join(path, name))]
    if existing:
        raise FileExistsError(f"{path} already holds {', '.join(existing)}; choose another --output-dir.")
    os.makedirs(path, exist_ok=True)
