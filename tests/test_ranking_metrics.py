import numpy as np
import pytest

from tf_dualenc.evaluation import retrieval_metrics, top_k


def brute_force(scores, relevant, k):
    p1, rr, rec = [], [], []
    for i in range(scores.shape[0]):
        order = sorted(range(scores.shape[1]), key=lambda j: (-scores[i, j], j))[:k]
        p1.append(1.0 if order[0] in relevant[i] else 0.0)
        first = next((r for r, j in enumerate(order, 1) if j in relevant[i]), None)
        rr.append(1.0 / first if first else 0.0)
        rec.append(len(set(order) & set(relevant[i])) / len(relevant[i]))
    return {"P@1": np.mean(p1), f"MRR@{k}": np.mean(rr), f"Recall@{k}": np.mean(rec)}


@pytest.mark.parametrize("k", [1, 3, 10])
def test_retrieval_metrics_match_brute_force(k):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 4, size=(20, 15)).astype(np.float32)  # many ties
    relevant = [set(rng.choice(15, size=rng.integers(1, 4), replace=False).tolist()) for _ in range(20)]
    got = retrieval_metrics(scores, relevant, k=k)
    want = brute_force(scores, relevant, k)
    assert got.keys() == want.keys()
    for key in got:
        assert got[key] == pytest.approx(want[key])


def test_retrieval_metrics_hand_computed():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8]])
    got = retrieval_metrics(scores, [[2], [0]], k=2)
    # q0: ranking 0,2 -> first relevant at rank 2; q1: ranking 2,1 -> relevant doc 0 not in top 2.
    assert got == {"P@1": 0.0, "MRR@2": 0.25, "Recall@2": 0.5}


def test_top_k_breaks_ties_by_lower_index():
    assert top_k(np.array([[1.0, 2.0, 2.0, 0.0]]), 3).tolist() == [[1, 2, 0]]


def test_retrieval_metrics_reject_bad_input():
    with pytest.raises(ValueError, match=r"2 entries for 3 queries"):
        retrieval_metrics(np.zeros((3, 4)), [[0], [1]])
    with pytest.raises(ValueError, match=r"Query 1 has no relevant"):
        retrieval_metrics(np.zeros((2, 4)), [[0], []])
    with pytest.raises(ValueError, match=r"matrix.*\(4,\)"):
        top_k(np.zeros(4), 2)
