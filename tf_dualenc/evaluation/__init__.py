"""Retrieval evaluation."""

from tf_dualenc.evaluation.ranking_metrics import retrieval_metrics, top_k

__all__ = ["retrieval_metrics", "top_k"]
