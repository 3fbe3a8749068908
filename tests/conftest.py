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


def pytest_configure(config):
    import tensorflow as tf  # after tf_dualenc (imported above) has applied its environment shims

    tf.random.set_seed(1234)


@pytest.fixture(autouse=True)
def _seed():
    # What keras.utils.set_random_seed does, except TF's global seed, which pytest_configure sets once:
    # tf.random.set_seed clears TF's kernel cache, which deletes TF Text's kernel-owned SentencePiece resource of
    # every T5 model already built (module-scoped fixtures, served exports); see docs/design.md.
    import random

    import numpy as np
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("global_random_seed", 1234)
    random.seed(1234)
    np.random.seed(1234)
    os.environ.setdefault("PYTHONHASHSEED", "0")
