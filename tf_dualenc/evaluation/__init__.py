"""Retrieval evaluation: exact search, trec_eval metrics, BM25 baseline, reports."""

from tf_dualenc.evaluation.evaluate import dense_run, evaluate_retrieval
from tf_dualenc.evaluation.rerank_evaluation import evaluate_reranking, rerank_run
from tf_dualenc.evaluation.exact_search import SEARCH_METHODS, brute_force_top_k, exact_top_k
from tf_dualenc.evaluation.trec_metrics import DEFAULT_MEASURES, evaluate_run, parse_measure, write_trec_run

__all__ = [
    "evaluate_reranking",
    "rerank_run",
    "DEFAULT_MEASURES",
    "SEARCH_METHODS",
    "brute_force_top_k",
    "dense_run",
    "evaluate_retrieval",
    "evaluate_run",
    "exact_top_k",
    "parse_measure",
    "write_trec_run",
]
