import numpy as np
import pytest

from tf_dualenc.evaluation.exact_search import brute_force_top_k, exact_top_k
from tf_dualenc.evaluation.trec_metrics import evaluate_run, parse_measure, rank, write_trec_run

pytrec_eval = pytest.importorskip("pytrec_eval")

PYTREC_NAMES = {"NDCG@10": "ndcg_cut_10", "P@1": "P_1", "Recall@100": "recall_100", "MAP@100": "map_cut_100"}


def _random_case(seed, num_queries=40, num_docs=150):
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for q in range(num_queries):
        qid = f"q{q}"
        judged = rng.choice(num_docs, size=rng.integers(1, 6), replace=False)
        qrels[qid] = {f"d{d}": int(rng.integers(0, 4)) for d in judged}
        if all(v == 0 for v in qrels[qid].values()):
            qrels[qid][f"d{judged[0]}"] = 2
        retrieved = rng.choice(num_docs, size=120, replace=False)
        # Coarse scores produce many ties, which trec_eval breaks by document id.
        run[qid] = {f"d{d}": float(rng.integers(0, 20)) / 4 for d in retrieved}
    return qrels, run


@pytest.mark.parametrize("seed", range(4))
def test_metrics_agree_with_pytrec_eval(seed):
    qrels, run = _random_case(seed)
    ours = evaluate_run(qrels, run)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(PYTREC_NAMES.values()))
    theirs = evaluator.evaluate(run)
    for qid in qrels:
        for name, trec_name in PYTREC_NAMES.items():
            assert ours["per_query"][qid][name] == pytest.approx(theirs[qid][trec_name], abs=1e-9), (qid, name)
    # MRR@10 = trec_eval's recip_rank on the run cut at the top 10.
    cut = {qid: {d: run[qid][d] for d in rank(run[qid])[:10]} for qid in run}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    for qid in qrels:
        assert ours["per_query"][qid]["MRR@10"] == pytest.approx(rr[qid]["recip_rank"], abs=1e-9)


def test_metrics_hand_computed_graded_case():
    qrels = {"q": {"a": 2, "b": 1, "z": 1}}
    run = {"q": {"b": 0.9, "x": 0.8, "a": 0.7}}
    got = evaluate_run(qrels, run, measures=("NDCG@3", "P@1", "MRR@10", "Recall@2", "MAP@3"))["aggregate"]
    dcg = 1 / np.log2(2) + 2 / np.log2(4)
    idcg = 2 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)
    assert got["NDCG@3"] == pytest.approx(dcg / idcg)
    assert got["P@1"] == 1.0 and got["MRR@10"] == 1.0
    assert got["Recall@2"] == pytest.approx(1 / 3)
    assert got["MAP@3"] == pytest.approx((1 / 1 + 2 / 3) / 3)


def test_ties_break_by_document_id_descending():
    assert rank({"a": 1.0, "c": 1.0, "b": 2.0}) == ["b", "c", "a"]


def test_query_without_results_scores_zero_and_counts():
    got = evaluate_run({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": {"a": 1.0}}, measures=("P@1",))
    assert got["aggregate"]["P@1"] == 0.5


def test_bad_measure_names_list_valid_forms():
    with pytest.raises(ValueError, match=r"'nDCG10'.*NDCG@k, MRR@k"):
        parse_measure("nDCG10")
    with pytest.raises(ValueError, match=r"qrels.*empty"):
        evaluate_run({}, {})


def test_trec_run_file(tmp_path):
    path = write_trec_run(tmp_path / "run.trec", {"q1": {"a": 0.5, "b": 0.9}}, tag="test")
    assert open(path).read().splitlines() == ["q1 Q0 b 1 0.900000 test", "q1 Q0 a 2 0.500000 test"]
    with pytest.raises(ValueError, match="whitespace"):
        write_trec_run(tmp_path / "x", {}, tag="a b")


@pytest.mark.parametrize("search", ["exact_chunk_7", "exact_chunk_1000", "tfrs_brute_force"])
def test_top_k_search_matches_numpy_sort(search):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(13, 8)).astype(np.float32)
    d = rng.normal(size=(50, 8)).astype(np.float32)
    d[10] = d[3]  # an exact tie
    if search == "tfrs_brute_force":
        idx, scores = brute_force_top_k(q, d, 5, query_chunk=4)
    else:
        idx, scores = exact_top_k(q, d, 5, document_chunk=int(search.rsplit("_", 1)[1]), query_chunk=4)
    full = q @ d.T
    for i in range(13):
        want = sorted(range(50), key=lambda j: (-full[i, j], j))[:5]
        assert idx[i].tolist() == want
        np.testing.assert_allclose(scores[i], full[i, want], rtol=1e-6)
    top_k = brute_force_top_k if search == "tfrs_brute_force" else exact_top_k
    with pytest.raises(ValueError, match=r"same D"):
        top_k(q, d[:, :4], 3)
    assert top_k(q, d, 500)[0].shape == (13, 50)  # k is capped at the corpus size


def test_exact_top_k_keeps_the_lower_index_first_among_many_ties():
    # Small integer vectors: most scores tie, also across the partitioned head's boundary.
    rng = np.random.default_rng(1)
    for _ in range(100):
        n, k = int(rng.integers(1, 300)), int(rng.integers(1, 40))
        q = rng.integers(-2, 3, size=(7, 4)).astype(np.float32)
        d = rng.integers(-2, 3, size=(n, 4)).astype(np.float32)
        idx, scores = exact_top_k(q, d, k, document_chunk=int(rng.integers(5, 100)), query_chunk=3)
        full = q @ d.T
        for i in range(7):
            want = sorted(range(n), key=lambda j: (-full[i, j], j))[: min(k, n)]
            assert idx[i].tolist() == want
            np.testing.assert_array_equal(scores[i], full[i, want])
