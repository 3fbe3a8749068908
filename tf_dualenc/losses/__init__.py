"""Dual-encoder losses (functional forms, Keras loss classes and the registry that names them) and the listwise losses
of re-rankers and distillation."""

from tf_dualenc.losses.checks import SAME_TOWER_OPTIONS, check_alpha, check_flag, check_same_tower, check_temperature
from tf_dualenc.losses.dual_encoder_loss import DualEncoderLoss
from tf_dualenc.losses.functional import contrastive_loss, pair_loss
from tf_dualenc.losses.in_batch_softmax_loss import InBatchSoftmaxLoss
from tf_dualenc.losses.listwise import (KL_DIRECTIONS, listwise_distillation_loss, listwise_kl_divergence, listwise_softmax_loss,
                                       reranker_loss)
from tf_dualenc.losses.passage_centric_pair_loss import PairLoss
from tf_dualenc.losses.registry import get, names, settings
from tf_dualenc.losses.samtone_loss import SamToNeLoss

__all__ = [
    "SAME_TOWER_OPTIONS",
    "DualEncoderLoss",
    "InBatchSoftmaxLoss",
    "KL_DIRECTIONS",
    "PairLoss",
    "SamToNeLoss",
    "check_alpha",
    "check_flag",
    "check_same_tower",
    "check_temperature",
    "contrastive_loss",
    "get",
    "listwise_distillation_loss",
    "listwise_kl_divergence",
    "listwise_softmax_loss",
    "names",
    "pair_loss",
    "reranker_loss",
    "settings",
]
