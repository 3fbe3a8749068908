"""Dual-encoder losses (functional forms and Keras loss classes) and the listwise losses of re-rankers and distillation."""

from tf_dualenc.losses.dual_encoder_loss import DualEncoderLoss
from tf_dualenc.losses.functional import SAME_TOWER_OPTIONS, contrastive_loss, pair_loss
from tf_dualenc.losses.in_batch_softmax_loss import InBatchSoftmaxLoss
from tf_dualenc.losses.listwise import KL_DIRECTIONS, listwise_kl_divergence, listwise_softmax_loss
from tf_dualenc.losses.passage_centric_pair_loss import PairLoss
from tf_dualenc.losses.samtone_loss import SamToNeLoss

__all__ = [
    "SAME_TOWER_OPTIONS",
    "DualEncoderLoss",
    "InBatchSoftmaxLoss",
    "KL_DIRECTIONS",
    "PairLoss",
    "SamToNeLoss",
    "contrastive_loss",
    "listwise_kl_divergence",
    "listwise_softmax_loss",
    "pair_loss",
]
