"""Training: config, deterministic input pipeline, the resumable training loop."""

from tf_dualenc.training.train_config import TrainConfig
from tf_dualenc.training.trainer import train

__all__ = ["TrainConfig", "train"]
