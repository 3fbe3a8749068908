"""Evaluate a retriever on a BEIR-layout split: encode, exact top-k, trec_eval metrics, report and run file."""

import os
import platform
import time

from tf_dualenc.atomic_write import write_json_atomic
from tf_dualenc.evaluation.exact_search import SEARCH_METHODS, brute_force_top_k, exact_top_k
from tf_dualenc.evaluation.trec_metrics import DEFAULT_MEASURES, evaluate_run, parse_measure, write_trec_run
from tf_dualenc.precision import model_precision
from tf_dualenc.threads import available_cpus, tensorflow_threads


def drop_identical(run, k=None):
    """BEIR's `ignore_identical_ids`: each query's run without the hit whose document id is the query id, cut to its
    best `k` (runs are fetched one deeper so that k remain). The one place every run under that rule goes through."""
    from tf_dualenc.evaluation.trec_metrics import rank

    kept = {}
    for qid, docs in run.items():
        order = [d for d in rank(docs) if d != qid]
        kept[qid] = {d: docs[d] for d in (order if k is None else order[:k])}
    return kept


def dense_run(model, dataset, *, k=100, batch_size=64, ignore_identical_ids=False, title_separator=" ", search="exact",
              on_documents=None, progress=False):
    """Encodes the corpus and the split's queries with `model` and returns ({qid: {doc: score}}, timings).

    search: "exact" (chunked NumPy matmul, any corpus size) or "brute_force" (tfrs BruteForce, in memory).
    on_documents: called with ([(id, text)], [N, D] embeddings) once the corpus is encoded, so a caller can keep the
        vectors (the pipeline's indexer reuses them) instead of encoding the corpus again.
    progress: progress lines on stderr while the corpus and the queries are encoded (the model's `verbose=1`,
        `tf_dualenc.progress`); off, a model need not take `verbose`.
    """
    if search not in SEARCH_METHODS:
        raise ValueError(f"`search` must be one of {list(SEARCH_METHODS)}; got {search!r}.")
    doc_ids = list(dataset.corpus)
    query_ids = list(dataset.queries)
    timings = {}
    start = time.perf_counter()
    texts = [dataset.document_text(d, title_separator) for d in doc_ids]
    verbose = {"verbose": 1} if progress else {}
    documents = model.encode_documents(texts, batch_size=batch_size, **verbose)
    timings["encode_corpus_seconds"] = time.perf_counter() - start
    if on_documents is not None:
        on_documents(list(zip(doc_ids, texts)), documents)
    timings["documents_per_second"] = len(doc_ids) / max(timings["encode_corpus_seconds"], 1e-9)
    start = time.perf_counter()
    queries = model.encode_queries([dataset.queries[q] for q in query_ids], batch_size=batch_size, **verbose)
    timings["encode_queries_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    # One extra hit per query so dropping the query's own id still leaves k.
    top_k = exact_top_k if search == "exact" else brute_force_top_k
    indices, scores = top_k(queries, documents, k + int(ignore_identical_ids))
    timings["search_seconds"] = time.perf_counter() - start
    run = {
        qid: {doc_ids[int(i)]: float(s) for i, s in zip(row_idx, row_scores)}
        for qid, row_idx, row_scores in zip(query_ids, indices, scores)
    }
    if ignore_identical_ids:
        run = drop_identical(run, k)
    return run, timings


def evaluate_retrieval(
    dataset,
    *,
    model=None,
    method="dense",
    k=100,
    measures=DEFAULT_MEASURES,
    batch_size=64,
    ignore_identical_ids=False,
    output_dir=None,
    model_description=None,
    title_separator=" ",
    search="exact",
    progress=False,
    rules=None,
):
    """Runs one retriever on a `BeirDataset` split and scores it.

    Args:
        dataset: a `tf_dualenc.data.BeirDataset`.
        model: a `DualEncoder` (for method="dense").
        method: "dense" or "bm25".
        k: depth of the run (at least the largest cut-off in `measures`).
        measures: trec_eval-style measure names.
        ignore_identical_ids: BEIR's option: drop a hit whose document id equals the query id.
        output_dir: when given, writes `report.json` and `run.trec` there.
        model_description: what to record as the model in the report.
        search: "exact" or "brute_force" (see `dense_run`).
        progress: progress lines on stderr while a dense model encodes (see `dense_run`).
        rules: the data set's evaluation rules (`EvaluationRules.to_dict()`), recorded in the report as "rules".

    Returns:
        The report dict (metrics, dataset, model, config, timings, truncation, machine[, rules]).
    """
    _check_evaluation_request(method, model, k, measures, search)
    start = time.perf_counter()
    if method == "bm25":
        run, timings = bm25_dataset_run(dataset, k=k, ignore_identical_ids=ignore_identical_ids, title_separator=title_separator), {}
    else:
        run, timings = dense_run(
            model, dataset, k=k, batch_size=batch_size, ignore_identical_ids=ignore_identical_ids, title_separator=title_separator,
            search=search, progress=progress,
        )
    scores = evaluate_run(dataset.qrels, run, measures=measures)
    timings["total_seconds"] = time.perf_counter() - start
    truncation = None
    if method == "dense":
        from tf_dualenc.models.token_budget import truncation_report

        truncation = truncation_report(model, list(dataset.queries.values()),
                                       [dataset.document_text(d, title_separator) for d in dataset.corpus])
    report = {
        "metrics": scores["aggregate"],
        "dataset": _dataset_summary(dataset),
        "model": model_description or ("bm25 (bm25s, lucene, k1=1.5, b=0.75, English stopwords + Snowball)" if method == "bm25" else type(model).__name__),
        # What the dense model computed in (`tf_dualenc.precision`); None for BM25.
        "precision": model_precision(model) if method == "dense" else None,
        "config": {"method": method, "k": k, "measures": list(measures), "ignore_identical_ids": ignore_identical_ids, "batch_size": batch_size,
                   "search": search if method == "dense" else None},
        "timings": {key: round(value, 3) for key, value in timings.items()},
        # Texts that filled the token budget (None when the model cannot tell, e.g. a SavedModel export).
        "truncation": truncation,
        "machine": _machine_summary(),
    }
    if rules is not None:
        report["rules"] = dict(rules)
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        write_trec_run(os.path.join(output_dir, "run.trec"), run, tag=method)
        write_json_atomic(os.path.join(output_dir, "report.json"), report)
    return report


def _check_evaluation_request(method, model, k, measures, search):
    """Refuses a request `evaluate_retrieval` cannot answer before any encoding starts."""
    if method not in ("dense", "bm25"):
        raise ValueError(f"`method` must be 'dense' or 'bm25'; got {method!r}.")
    deepest = max(parse_measure(m)[1] for m in measures)
    if k < deepest:
        raise ValueError(f"`k`={k} is smaller than the deepest cut-off in {list(measures)} ({deepest}).")
    if search not in SEARCH_METHODS:
        raise ValueError(f"`search` must be one of {list(SEARCH_METHODS)}; got {search!r}.")
    if method == "dense" and model is None:
        raise ValueError("method='dense' needs a `model`.")


def bm25_dataset_run(dataset, *, k, ignore_identical_ids=False, title_separator=" "):
    """BM25 over a `BeirDataset` split's corpus for its queries: {qid: {doc: score}} (`ignore_identical_ids` as
    `dense_run`)."""
    from tf_dualenc.evaluation.bm25_baseline import bm25_run

    doc_ids = list(dataset.corpus)
    run = bm25_run(
        doc_ids,
        [dataset.document_text(d, title_separator) for d in doc_ids],
        list(dataset.queries),
        list(dataset.queries.values()),
        # One extra hit per query so dropping the query's own id still leaves k.
        k=k + int(ignore_identical_ids),
    )
    return drop_identical(run, k) if ignore_identical_ids else run


def _dataset_summary(dataset):
    return {
        "path": os.path.abspath(dataset.path),
        "split": dataset.split,
        "documents": len(dataset.corpus),
        "queries": len(dataset.queries),
        "qrels": sum(len(v) for v in dataset.qrels.values()),
        "skipped": dict(dataset.skipped),
    }


def _machine_summary():
    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "available_cpus": available_cpus(), "threads": tensorflow_threads()}
