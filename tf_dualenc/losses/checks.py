"""The loss settings' checks, one function per setting.

The Keras loss classes run them when they are built (a bad setting fails before any training), the functional losses
when they are called, and `TrainConfig.validate` collects their messages. Every message reads
`name must be <what is valid> (got name=value)`, so it stands alone in an exception and inside the config's list
of problems.
"""

import numbers

import numpy as np
import tensorflow as tf

SAME_TOWER_OPTIONS = ("none", "query", "document", "both")


def _invalid(name, value, requirement):
    return ValueError(f"{name} must be {requirement} (got {name}={value!r})")


def check_temperature(temperature, name="temperature"):
    """Returns `temperature` unchanged; raises ValueError unless it is a finite number > 0.

    A tensor or variable passes unchecked: its value is known only when the graph runs (a learned τ).

    Args:
        temperature: τ, which divides every logit.
        name: the setting's name in the message (e.g. "student_temperature").

    Example:
    ```python
    check_temperature(0.0)  # ValueError: temperature must be a finite number > 0 (got temperature=0.0)
    ```
    """
    if isinstance(temperature, (tf.Tensor, tf.Variable)):
        return temperature
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not np.isfinite(temperature)
            or temperature <= 0):
        raise _invalid(name, temperature, "a finite number > 0")
    return temperature


def check_alpha(alpha):
    """Returns PAIR's `alpha` unchanged; raises ValueError unless it is a number in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
        raise _invalid("alpha", alpha, "a number in [0, 1]")
    return alpha


def check_same_tower(same_tower):
    """Returns `same_tower` unchanged; raises ValueError unless it is one of `SAME_TOWER_OPTIONS`."""
    if same_tower not in SAME_TOWER_OPTIONS:
        raise _invalid("same_tower", same_tower, f"one of {list(SAME_TOWER_OPTIONS)}")
    return same_tower


def check_flag(name, value):
    """Returns `value` unchanged; raises ValueError unless it is True or False (1, "yes" and None are refused)."""
    if not isinstance(value, bool):
        raise _invalid(name, value, "True or False")
    return value
