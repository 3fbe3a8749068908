"""Two-stage evaluation: metrics of the dual encoder's run, then of the same run with its top-k re-ranked by a
cross-encoder, and the latency each stage adds per query."""

import json
import os
import time

import numpy as np

from tf_dualenc.evaluation.evaluate import dense_run
from tf_dualenc.evaluation.trec_metrics import DEFAULT_MEASURES, evaluate_run, write_trec_run


def rerank_run(run, queries, document_text, scorer, rerank_k, batch_size=32):
    """Re-ranks each query's top `rerank_k` of `run` ({qid: {doc: score}}) with `scorer(queries, documents)`.

    The re-ranked documents come first in re-ranker order, then the rest of the first-stage run in its order; scores
    in the returned run are rank-based (higher is better), so trec_eval sees exactly that order.
    """
    reranked = {}
    for qid, docs in run.items():
        ranked = sorted(docs, key=lambda d: -docs[d])
        head, tail = ranked[:rerank_k], ranked[rerank_k:]
        if head:
            scores = np.asarray(scorer([queries[qid]] * len(head), [document_text(d) for d in head]), np.float32)
            head = [head[i] for i in np.argsort(-scores, kind="stable")]
        order = head + tail
        reranked[qid] = {doc: float(len(order) - rank) for rank, doc in enumerate(order)}
    return reranked


def evaluate_reranking(dataset, *, model, scorer, k=100, rerank_k=100, measures=DEFAULT_MEASURES, batch_size=64, title_separator=" ",
                       output_dir=None, description=None, max_queries=None):
    """Dual-encoder retrieval then cross-encoder re-ranking on a `BeirDataset` split.

    Args:
        model: the first stage (`encode_queries` / `encode_documents`: DualEncoder or ExportedDualEncoder).
        scorer: (queries, documents) → scores (`CrossEncoder.score_pairs`, `ExportedCrossEncoder.score_pairs`).
        k: first-stage depth; rerank_k: how many of those are re-ranked (<= k).
        max_queries: evaluate the first N queries only (re-ranking costs one forward pass per pair).

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
    run, timings = dense_run(model, dataset, k=k, batch_size=batch_size, title_separator=title_separator)
    queries = len(dataset.queries)
    start = time.perf_counter()
    reranked = rerank_run(run, dataset.queries, lambda d: dataset.document_text(d, title_separator), scorer, rerank_k)
    rerank_seconds = time.perf_counter() - start
    report = {
        "retrieval": evaluate_run(dataset.qrels, run, measures=measures)["aggregate"],
        "reranked": evaluate_run(dataset.qrels, reranked, measures=measures)["aggregate"],
        "latency_ms_per_query": {
            # Query encoding (batched) and search; the corpus is encoded offline.
            "retrieval": round(1000 * (timings["encode_queries_seconds"] + timings["search_seconds"]) / queries, 3),
            "rerank": round(1000 * rerank_seconds / queries, 3),
        },
        "config": {"k": k, "rerank_k": rerank_k, "queries": queries, "documents": len(dataset.corpus), "measures": list(measures)},
        "model": description,
        "dataset": {"path": os.path.abspath(dataset.path), "split": dataset.split},
    }
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        write_trec_run(os.path.join(output_dir, "run.retrieval.trec"), run, tag="retrieval")
        write_trec_run(os.path.join(output_dir, "run.reranked.trec"), reranked, tag="reranked")
        with open(os.path.join(output_dir, "report.json.tmp"), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.replace(os.path.join(output_dir, "report.json.tmp"), os.path.join(output_dir, "report.json"))
    return report


class RerankerRegression(ValueError):
    """A re-ranker lowers the validation metric of the run it re-ranks; the message gives both values."""


def check_reranker(validation, *, model, scorer, k=100, rerank_k=100, metric="NDCG@10", max_queries=200, batch_size=64,
                   title_separator=" "):
    """Re-ranks `model`'s run on a validation split and refuses a re-ranker that makes it worse.

    Re-ranking can hurt: an under-trained cross-encoder lowered SciFact NDCG@10 from 0.67 to 0.46 here. This is the
    check to run before a re-ranker is used (`tf-dualenc evaluate --rerank` runs it).

    Args:
        validation: a `BeirDataset` validation split (`tf_dualenc.data.validation_split.load_validation`), not test.
        max_queries: validation queries used (re-ranking costs one cross-encoder pass per pair).

    Returns:
        {"metric", "retrieval", "reranked", "queries"} when re-ranking does not lower `metric`.

    Raises:
        RerankerRegression: re-ranking lowers `metric` on the validation split.
    """
    report = evaluate_reranking(validation, model=model, scorer=scorer, k=k, rerank_k=rerank_k, measures=(metric,),
                                batch_size=batch_size, title_separator=title_separator, max_queries=max_queries)
    result = {"metric": metric, "retrieval": report["retrieval"][metric], "reranked": report["reranked"][metric],
              "queries": report["config"]["queries"], "split": validation.split}
    if result["reranked"] < result["retrieval"]:
        raise RerankerRegression(
            f"re-ranking lowers validation {metric} from {result['retrieval']:.4f} to {result['reranked']:.4f} "
            f"({result['queries']} queries of {validation.split}); this re-ranker would make retrieval worse")
    return result
