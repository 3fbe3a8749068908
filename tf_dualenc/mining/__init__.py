"""Hard-negative mining: per-query candidate lists (a positive, then negatives), mined from BM25 or a dense model,
denoised by a cross-encoder's scores and mixed as RocketQA and RocketQAv2 do, and written as training-pair files.

Layer 3 (docs/design.md): the miner needs only `data` and `evaluation`, so `train` (`hard_negatives: bm25 | dense`)
mines with the same code as `tf-dualenc mine-negatives`. `tf_dualenc.reranking` re-exports these names.
"""

from tf_dualenc.mining.candidate_lists import CandidateList, build_candidate_lists, read_candidate_lists, write_candidate_lists
from tf_dualenc.mining.hard_negatives import MINERS, denoise_candidates, hybrid_negatives, mine_candidate_lists, mine_hard_negatives

__all__ = ["CandidateList", "MINERS", "build_candidate_lists", "denoise_candidates", "hybrid_negatives", "mine_candidate_lists",
           "mine_hard_negatives", "read_candidate_lists", "write_candidate_lists"]
