import os
import pathlib

import pytest

import tf_dualenc  # noqa: F401  (applies the environment shims before TensorFlow loads)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
T5_VOCABULARY = SHARED / "models" / "t5" / "spiece.model"


@pytest.fixture(scope="session")
def t5_vocabulary():
    if not T5_VOCABULARY.exists():
        pytest.skip(f"{T5_VOCABULARY} not present")
    return str(T5_VOCABULARY)


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    os.environ.setdefault("PYTHONHASHSEED", "0")
