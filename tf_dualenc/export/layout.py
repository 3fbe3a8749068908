"""TF Serving's folder layout, in one place: `<base>/<model_name>/<version>/`.

TF Serving loads a model folder's numeric subfolders as versions and ignores every other name, which is why exports
and pushes are written under a dot-name first and renamed to their number only when complete. The export, the
serving pusher, the Beam index job, the loaders and the local server all find versions here.
"""

import os


class ExportError(ValueError):
    """An export that cannot be written as asked (bad arguments, or ops stock TF Serving lacks)."""


def check_model_name(model_name):
    """Raises `ExportError` unless `model_name` can name both a folder and a TF Serving model."""
    if not model_name or os.sep in model_name or model_name.startswith(".") or not model_name.replace("-", "_").replace(".", "_").isidentifier():
        raise ExportError(f"model_name={model_name!r}: use letters, digits, '_', '-' or '.' (it names a folder and the TF Serving model).")


def model_versions(base, name=None):
    """The numeric version folders of the model folder `<base>/<name>` (`base` itself when `name` is None), ascending;
    [] when the folder does not exist."""
    model_dir = base if name is None else os.path.join(base, name)
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(entry) for entry in os.listdir(model_dir) if entry.isdigit())


def next_version(model_dir):
    """1 + the largest numeric version folder in `model_dir` (1 when there is none)."""
    return max(model_versions(model_dir), default=0) + 1


def resolve_export(path):
    """A version folder, or a model folder whose largest numeric subfolder is taken."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = model_versions(path)
    if not versions:
        raise FileNotFoundError(f"{path} is neither a SavedModel version folder nor a model folder with numeric versions.")
    return os.path.join(path, str(versions[-1]))
