"""Re-ranking: two-stage retrieval (dual encoder → cross-encoder), hard-negative mining and RocketQA's denoising,
and RocketQAv2-style joint training of a retriever and a re-ranker."""

# The miner and its lists live in `tf_dualenc.mining` (layer 3, so training mines with them too); re-exported here.
from tf_dualenc.mining import (CandidateList, build_candidate_lists, denoise_candidates, hybrid_negatives, mine_candidate_lists,
                               mine_hard_negatives, read_candidate_lists, write_candidate_lists)
from tf_dualenc.reranking.serving_reranker import serving_reranker
from tf_dualenc.reranking.two_stage import TwoStageRetriever, recorded_reranker, rerank_hits, rerank_recorded_search

__all__ = ["CandidateList", "TwoStageRetriever", "build_candidate_lists", "denoise_candidates", "hybrid_negatives", "mine_candidate_lists",
           "mine_hard_negatives", "read_candidate_lists", "recorded_reranker", "rerank_hits", "rerank_recorded_search", "serving_reranker", "write_candidate_lists"]
