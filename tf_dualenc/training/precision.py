"""Mixed-precision training, as `TrainConfig.mixed_precision` says: the pieces live in `tf_dualenc.precision`, the one
home of a model's compute precision, which training and inference share; the trainer and the benchmarks import them
from here as well.
"""

from tf_dualenc.precision import (PRECISION_POLICIES, float32_compute, restore_compute_policy,  # noqa: F401
                                  set_compute_policy, training_precision)
