"""A tf_dualenc `.keras` file (or a preset folder holding one) read back into its model: the one place that calls
Keras' `load_model`.

A `.keras` file names the classes it holds (towers, pooling, the dual encoder or cross-encoder) and, when it was saved
after `model.compile(loss=SamToNeLoss(...))`, its loss; Keras finds them only once the modules that register them are
imported, which `load_model_file` does. `tf_dualenc.load_model` (`tf_dualenc/loading.py`, the loader of the command
line, the pipeline and Python users) and `from_preset` (a `save_to_preset` folder) both read files through it, so it
lives here, in `models` (layer 2), below both.
"""

import os

from tf_dualenc.models.presets import PRESET_MODEL_FILE, is_preset_folder


def load_model_file(path):
    """The `DualEncoder` or `CrossEncoder` (compiled or not) of a `.keras` file or a `save_to_preset` folder; a missing
    or unreadable file is an error naming it."""
    import keras

    import tf_dualenc.losses  # noqa: F401  (registers the loss classes a compiled model's file names)
    import tf_dualenc.models  # noqa: F401  (registers the model classes)

    path = os.fspath(path)
    if os.path.isdir(path) and is_preset_folder(path):
        path = os.path.join(path, PRESET_MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Model file not found: {path}")
    try:
        return keras.saving.load_model(path)
    except (ValueError, TypeError, OSError, KeyError) as error:
        raise ValueError(f"{path}: cannot be loaded as a tf_dualenc model ({type(error).__name__}: {error})") from error
