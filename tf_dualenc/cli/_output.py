"""Files the commands write themselves (the library writes its own reports)."""

import json
import os


def write_json(path, value):
    # Through a temporary file, so a reader never sees half a report.
    with open(f"{path}.tmp", "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(f"{path}.tmp", path)


def new_output_dir(path, names):
    """Makes `path`, refusing one that already holds any of `names` (trained models are never overwritten)."""
    existing = [name for name in names if os.path.exists(os.path.join(path, name))]
    if existing:
        raise FileExistsError(f"{path} already holds {', '.join(existing)}; choose another --output-dir.")
    os.makedirs(path, exist_ok=True)
