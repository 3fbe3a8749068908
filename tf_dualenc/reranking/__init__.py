"""Re-ranking: two-stage retrieval (dual encoder → cross-encoder), hard-negative mining and RocketQA's denoising,
and RocketQAv2-style joint training of a retriever and a re-ranker."""

from tf_dualenc.reranking.candidate_lists import CandidateList, build_candidate_lists
from tf_dualenc.reranking.hard_negatives import denoise_candidates, mine_hard_negatives
from tf_dualenc.reranking.two_stage import TwoStageRetriever, rerank_hits

__all__ = ["CandidateList", "TwoStageRetriever", "build_candidate_lists", "denoise_candidates", "mine_hard_negatives", "rerank_hits"]
