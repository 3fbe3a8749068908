"""Two-stage evaluation: metrics of the dual encoder's run, then of the same run with its top-k re-ranked by a
cross-encoder, and the latency each stage adds per query."""

import os
import time

import numpy as np

from tf_dualenc.atomic_write import write_json_atomic
from tf_dualenc.evaluation.evaluate import dense_run
from tf_dualenc.evaluation.trec_metrics import DEFAULT_MEASURES, evaluate_run, rank, write_trec_run


def cross_encoder_scores(run, queries, document_text, scorer, rerank_k):
    """The cross-encoder's score of each query's top `rerank_k` documents of `run`: {qid: {doc: score}}."""
    scores = {}
    for qid, docs in run.items():
        head = rank(docs)[:rerank_k]
        if head:
            values = np.asarray(scorer([queries[qid]] * len(head), [document_text(d) for d in head]), np.float32)
            scores[qid] = dict(zip(head, values.tolist()))
    return scores


def _min_max(values):
    values = np.asarray(values, np.float64)
    span = values.max() - values.min()
    return np.ones_like(values) if span <= 0 else (values - values.min()) / span


def combine_reranking(run, cross_scores, weight=1.0):
    """Orders each query's re-ranked head by w · minmax(cross-encoder) + (1 − w) · minmax(first stage) (w = 1: the
    cross-encoder alone; w = 0: the first stage's order), then the rest of the run in its order. Scores in the
    returned run are rank-based (higher is better), so trec_eval sees exactly that order."""
    _check_share(weight)
    reranked = {}
    for qid, docs in run.items():
        order = [doc for doc, _ in reranked_order(docs, cross_scores.get(qid, {}), weight)]
        reranked[qid] = {doc: float(len(order) - rank) for rank, doc in enumerate(order)}
    return reranked


def _check_share(weight, auto=False):
    if auto and weight == "auto":
        return
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        allowed = "'auto' or in [0, 1]" if auto else "in [0, 1]"
        raise ValueError(f"weight={weight!r} must be {allowed} (the cross-encoder's share).")


def reranked_order(first_stage, cross_scores, weight):
    """One query's documents in the cascade's order: [(doc, mixed score or None)]. `first_stage` is {doc: score};
    the documents `cross_scores` ({doc: score}) holds come first, by w · minmax(cross) + (1 − w) · minmax(first stage),
    ties in first-stage order, then the rest (mixed score None) in first-stage order. The one formula that evaluation
    (`combine_reranking`) and a served cascade (`tf_dualenc.reranking.two_stage.rerank_recorded_search`) apply."""
    ranked = rank(first_stage)
    head, tail = [d for d in ranked if d in cross_scores], [d for d in ranked if d not in cross_scores]
    if not head:
        return [(d, None) for d in tail]
    mixed = (weight * _min_max([cross_scores[d] for d in head]) if weight > 0 else 0.0) + (
        (1.0 - weight) * _min_max([first_stage[d] for d in head]) if weight < 1 else 0.0)
    mixed = np.broadcast_to(np.asarray(mixed, np.float64), (len(head),))
    order = np.argsort(-mixed, kind="stable")
    return [(head[i], float(mixed[i])) for i in order] + [(d, None) for d in tail]


def rerank_run(run, queries, document_text, scorer, rerank_k, batch_size=32, weight=1.0):
    """Re-ranks each query's top `rerank_k` of `run` ({qid: {doc: score}}) with `scorer(queries, documents)`.

    The re-ranked documents come first, ordered by the cross-encoder (or, with `weight` < 1, by its interpolation with
    the first-stage score: `combine_reranking`), then the rest of the first-stage run in its order; scores in the
    returned run are rank-based (higher is better), so trec_eval sees exactly that order.
    """
    return combine_reranking(run, cross_encoder_scores(run, queries, document_text, scorer, rerank_k), weight)


RERANK_WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))


def choose_rerank_weight(qrels, run, cross_scores, metric="NDCG@10", weights=RERANK_WEIGHTS):
    """The cross-encoder share of `weights` that scores best on `qrels` (a validation split); ties go to the smaller
    share, so the cross-encoder is trusted only as far as it improves validation. Returns (weight, {weight: value})."""
    curve = {float(w): evaluate_run(qrels, combine_reranking(run, cross_scores, float(w)), measures=(metric,))["aggregate"][metric]
             for w in weights}
    return max(curve, key=lambda w: (curve[w], -w)), curve


def evaluate_reranking(dataset, *, model, scorer, k=100, rerank_k=100, measures=DEFAULT_MEASURES, batch_size=64, title_separator=" ",
                       output_dir=None, description=None, max_queries=None, weight=1.0, progress=False, ignore_identical_ids=False):
    """Dual-encoder retrieval then cross-encoder re-ranking on a `BeirDataset` split.

    Args:
        model: the first stage (`encode_queries` / `encode_documents`: DualEncoder or ExportedDualEncoder).
        scorer: (queries, documents) → scores (`CrossEncoder.score_pairs`, `ExportedCrossEncoder.score_pairs`).
        k: first-stage depth; rerank_k: how many of those are re-ranked (<= k).
        weight: the cross-encoder's share of the final score (`combine_reranking`; 1 = the cross-encoder alone).
        max_queries: evaluate the first N queries only (re-ranking costs one forward pass per pair).
        progress: progress lines on stderr while the corpus and queries are encoded (`tf_dualenc.progress`).
        ignore_identical_ids: BEIR's rule (`dense_run`), so both runs are scored under it.

    Returns:
        {"retrieval": metrics, "reranked": metrics, "latency_ms_per_query": {"retrieval", "rerank"}, ...}; with
        `output_dir`, also report.json and both TREC runs.
    """
    if not 1 <= rerank_k <= k:
        raise ValueError(f"rerank_k={rerank_k} must be in [1, k={k}].")
    if max_queries is not None:
        import dataclasses

        kept = list(dataset.queries)[:max_queries]
        dataset = dataclasses.replace(dataset, queries={q: dataset.queries[q] for q in kept},
                                      qrels={q: dataset.qrels[q] for q in kept if q in dataset.qrels})
    run, timings = dense_run(model, dataset, k=k, batch_size=batch_size, title_separator=title_separator, progress=progress,
                             ignore_identical_ids=ignore_identical_ids)
    queries = len(dataset.queries)
    start = time.perf_counter()
    reranked = rerank_run(run, dataset.queries, lambda d: dataset.document_text(d, title_separator), scorer, rerank_k, weight=weight)
    rerank_seconds = time.perf_counter() - start
    report = {
        "retrieval": evaluate_run(dataset.qrels, run, measures=measures)["aggregate"],
        "reranked": evaluate_run(dataset.qrels, reranked, measures=measures)["aggregate"],
        "latency_ms_per_query": {
            # Query encoding (batched) and search; the corpus is encoded offline.
            "retrieval": round(1000 * (timings["encode_queries_seconds"] + timings["search_seconds"]) / queries, 3),
            "rerank": round(1000 * rerank_seconds / queries, 3),
        },
        "config": {"k": k, "rerank_k": rerank_k, "weight": weight, "queries": queries, "documents": len(dataset.corpus), "measures": list(measures),
                   "ignore_identical_ids": ignore_identical_ids},
        "model": description,
        "dataset": {"path": os.path.abspath(dataset.path), "split": dataset.split},
    }
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        write_trec_run(os.path.join(output_dir, "run.retrieval.trec"), run, tag="retrieval")
        write_trec_run(os.path.join(output_dir, "run.reranked.trec"), reranked, tag="reranked")
        write_json_atomic(os.path.join(output_dir, "report.json"), report)
    return report


class RerankerRegression(ValueError):
    """A re-ranker lowers the validation metric of the run it re-ranks; the message gives both values."""


def check_reranker(validation, *, model, scorer, k=100, rerank_k=100, metric="NDCG@10", weight=1.0, max_queries=200, batch_size=64,
                   title_separator=" ", progress=False, ignore_identical_ids=False):
    """Re-ranks `model`'s run on a validation split and refuses a re-ranker that makes it worse.

    Re-ranking can hurt: an under-trained cross-encoder lowered SciFact NDCG@10 from 0.67 to 0.46 here. This is the
    check to run before a re-ranker is used (`tf-dualenc evaluate --rerank` runs it).

    Args:
        validation: a `BeirDataset` validation split (`tf_dualenc.data.validation_split.load_validation`), not test.
        weight: the cross-encoder's share of the final score, or "auto": the share (0, 0.1, ..., 1) that scores best
            on this validation split (`choose_rerank_weight`).
        max_queries: validation queries used (re-ranking costs one cross-encoder pass per pair).
        progress: progress lines on stderr while the validation corpus is encoded (`tf_dualenc.progress`).

    Returns:
        {"metric", "retrieval", "reranked", "weight", "queries", "split"[, "weight_curve"]} when re-ranking does not
        lower `metric`.

    Raises:
        RerankerRegression: re-ranking lowers `metric` on the validation split, or helps only with weight 0 (unused).
    """
    import dataclasses

    _check_share(weight, auto=True)
    kept = list(validation.queries)[:max_queries]
    validation = dataclasses.replace(validation, queries={q: validation.queries[q] for q in kept},
                                     qrels={q: validation.qrels[q] for q in kept if q in validation.qrels})
    run, _ = dense_run(model, validation, k=k, batch_size=batch_size, title_separator=title_separator, progress=progress,
                       ignore_identical_ids=ignore_identical_ids)
    cross = cross_encoder_scores(run, validation.queries, lambda d: validation.document_text(d, title_separator), scorer, rerank_k)
    return check_reranked_run(validation.qrels, run, cross, metric=metric, weight=weight, split=validation.split)


def check_reranked_run(qrels, run, cross_scores, *, metric="NDCG@10", weight="auto", split="validation"):
    """The decision of `check_reranker` for any first-stage `run` (dense, or a fused search) of validation queries
    and the cross-encoder's scores of its heads (`cross_encoder_scores`): the re-ranked run must not lower `metric`
    on `qrels`, and with `weight` "auto" the chosen cross-encoder share must be above 0.

    Returns {"metric", "retrieval", "reranked", "weight", "queries", "split"[, "weight_curve"]}; raises
    `RerankerRegression` otherwise.
    """
    _check_share(weight, auto=True)
    result = {"metric": metric, "queries": len(run), "split": split,
              "retrieval": evaluate_run(qrels, run, measures=(metric,))["aggregate"][metric]}
    if weight == "auto":
        weight, result["weight_curve"] = choose_rerank_weight(qrels, run, cross_scores, metric)
    result["weight"] = weight
    result["reranked"] = evaluate_run(qrels, combine_reranking(run, cross_scores, weight), measures=(metric,))["aggregate"][metric]
    if result["reranked"] < result["retrieval"] or weight == 0:
        raise RerankerRegression(
            f"re-ranking lowers validation {metric} from {result['retrieval']:.4f} to {result['reranked']:.4f} "
            f"({result['queries']} queries of {split}, cross-encoder weight {weight}); this re-ranker would make "
            "retrieval worse" if weight != 0 else
            f"the best cross-encoder weight on validation is 0 ({result['queries']} queries of {split}): the "
            "re-ranker does not help; leave it out")
    return result
