"""Towers, the dual-encoder model and the cross-encoder re-ranker."""

from tf_dualenc.models.activations import gelu_approximate
from tf_dualenc.models.bert_encoder_tower import BertEncoderTower
from tf_dualenc.models.bert_tokenizer import HuggingFaceBertTokenizer, bert_preprocessor, bert_tokenizer
from tf_dualenc.models.builders import (
    build_bert_cross_encoder,
    build_bert_dual_encoder,
    build_t5_cross_encoder,
    build_t5_dual_encoder,
    minilm_path,
)
from tf_dualenc.models.cross_encoder import CrossEncoder
from tf_dualenc.models.dual_encoder import ARCHITECTURES, DualEncoder
from tf_dualenc.models.hf_t5_converter import t5_tower_from_huggingface
from tf_dualenc.models.masked_mean_pooling import MaskedMeanPooling
from tf_dualenc.models.t5_encoder_tower import T5EncoderTower
from tf_dualenc.models.t5_tower_configs import T5_TOWER_CONFIGS, T5_VOCABULARY_SIZE, t5_tower_config

__all__ = [
    "ARCHITECTURES",
    "BertEncoderTower",
    "HuggingFaceBertTokenizer",
    "bert_preprocessor",
    "bert_tokenizer",
    "CrossEncoder",
    "build_bert_cross_encoder",
    "build_t5_cross_encoder",
    "build_bert_dual_encoder",
    "minilm_path",
    "DualEncoder",
    "MaskedMeanPooling",
    "T5EncoderTower",
    "T5_TOWER_CONFIGS",
    "T5_VOCABULARY_SIZE",
    "build_t5_dual_encoder",
    "gelu_approximate",
    "t5_tower_config",
    "t5_tower_from_huggingface",
]
