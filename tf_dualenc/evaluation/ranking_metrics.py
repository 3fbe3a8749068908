"""Ranking metrics over a query × document score matrix with binary relevance.

Ranks sort by descending score; equal scores keep the lower document index first (deterministic).
"""

import numpy as np


def top_k(scores, k):
    """Indices [Nq, k] of the k best documents per query, best first."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"`scores` must be a [num_queries, num_documents] matrix; got shape {scores.shape}.")
    k = min(int(k), scores.shape[1])
    if k < 1:
        raise ValueError(f"`k` must be >= 1 and the matrix must have documents; got k={k}, shape {scores.shape}.")
    # Stable argsort of the negated scores: ties resolve to the lower index.
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def retrieval_metrics(scores, relevant, k=10):
    """P@1, MRR@k and Recall@k averaged over queries.

    Args:
        scores: [Nq, Nd] similarity matrix.
        relevant: a sequence of Nq collections of relevant document indices (each non-empty).
        k: cut-off for MRR and recall.

    Returns:
        {"P@1": float, f"MRR@{k}": float, f"Recall@{k}": float}. P@1 is the fraction of queries whose top
        document is relevant (= Success@1); MRR@k uses the rank of the first relevant document within the
        top k (0 when none); Recall@k is the fraction of a query's relevant documents in its top k.
    """
    scores = np.asarray(scores)
    if len(relevant) != scores.shape[0]:
        raise ValueError(f"`relevant` has {len(relevant)} entries for {scores.shape[0]} queries.")
    ranked = top_k(scores, k)
    p1, rr, recall = [], [], []
    for i, (row, rel) in enumerate(zip(ranked, relevant)):
        rel = set(int(r) for r in rel)
        if not rel:
            raise ValueError(f"Query {i} has no relevant documents.")
        hits = [int(doc) in rel for doc in row]
        p1.append(float(hits[0]))
        rr.append(1.0 / (hits.index(True) + 1) if True in hits else 0.0)
        recall.append(sum(hits) / len(rel))
    return {"P@1": float(np.mean(p1)), f"MRR@{k}": float(np.mean(rr)), f"Recall@{k}": float(np.mean(recall))}
