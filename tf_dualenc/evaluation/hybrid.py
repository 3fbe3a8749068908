"""Hybrid retrieval: lexical (BM25) and dense runs fused into one ranking.

Two fusions, both on runs `{query id: {document id: score}}`:

- Reciprocal rank fusion (Cormack et al. 2009): score(d) = Σ_runs 1 / (k + rank_run(d)), rank from 1; a document
  missing from a run adds nothing from it. No weight to choose; k = 60 as in the paper.
- Normalised score interpolation: per query, each run's scores are min-max scaled to [0, 1] over its own top list
  (a document missing from a run gets 0 there), then score(d) = w · dense(d) + (1 − w) · lexical(d). The weight w is
  chosen on a validation split (`choose_interpolation_weight`), never on the test split.
"""

import os

import numpy as np

FUSIONS = ("rrf", "interpolate")
DEFAULT_WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 21))


def _ranked(scores):
    from tf_dualenc.evaluation.trec_metrics import rank

    return rank(scores)


def reciprocal_rank_fusion(runs, k=60, depth=None):
    """Fuses several runs by reciprocal rank; returns a run with each query's top `depth` (all when None)."""
    if not runs:
        raise ValueError("reciprocal_rank_fusion needs at least one run.")
    if isinstance(k, bool) or not isinstance(k, (int, float)) or k < 0:
        raise ValueError(f"k={k!r} must be a non-negative number.")
    fused = {}
    for qid in set().union(*runs):
        scores = {}
        for run in runs:
            for position, doc_id in enumerate(_ranked(run.get(qid, {})), 1):
                scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + position)
        fused[qid] = _top(scores, depth)
    return fused


def _min_max(scores):
    if not scores:
        return {}
    values = np.fromiter(scores.values(), np.float64, len(scores))
    low, span = values.min(), values.max() - values.min()
    if span <= 0:
        return {d: 1.0 for d in scores}
    return {d: (s - low) / span for d, s in scores.items()}


def interpolate_runs(dense, lexical, weight, depth=None):
    """w · minmax(dense) + (1 − w) · minmax(lexical), per query; returns the fused run (top `depth` per query)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight={weight!r} must be in [0, 1] (the dense run's share).")
    fused = {}
    for qid in set(dense) | set(lexical):
        d, l = _min_max(dense.get(qid, {})), _min_max(lexical.get(qid, {}))
        fused[qid] = _top({doc: weight * d.get(doc, 0.0) + (1.0 - weight) * l.get(doc, 0.0) for doc in set(d) | set(l)}, depth)
    return fused


def _top(scores, depth):
    if depth is None or len(scores) <= depth:
        return scores
    return {d: scores[d] for d in _ranked(scores)[:depth]}


def choose_interpolation_weight(qrels, dense, lexical, *, metric="NDCG@10", weights=DEFAULT_WEIGHTS):
    """The weight of `weights` whose interpolation scores best on `qrels` (a validation split); ties go to the
    weight nearest 0.5. Returns (weight, {weight: metric value})."""
    from tf_dualenc.evaluation.trec_metrics import evaluate_run

    if not weights:
        raise ValueError("weights is empty.")
    curve = {float(w): evaluate_run(qrels, interpolate_runs(dense, lexical, float(w)), measures=(metric,))["aggregate"][metric]
             for w in weights}
    best = max(curve, key=lambda w: (curve[w], -abs(w - 0.5)))
    return best, curve


def fuse_runs(dense, lexical, fusion, *, weight=None, depth=None):
    """One entry point for callers that take the fusion by name: "rrf" or "interpolate" (needs `weight`)."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion={fusion!r} (valid: {list(FUSIONS)}).")
    if fusion == "rrf":
        return reciprocal_rank_fusion([dense, lexical], depth=depth)
    if weight is None:
        raise ValueError("fusion='interpolate' needs a weight (choose it on a validation split with choose_interpolation_weight).")
    return interpolate_runs(dense, lexical, weight, depth=depth)


def dense_runs(model, splits, *, k=100, batch_size=64, title_separator=" ", on_documents=None, progress=False,
               ignore_identical_ids=False):
    """Dense runs for several `BeirDataset` splits, encoding each distinct corpus once (a validation split carved
    from SciFact's training queries shares the test split's corpus). Query ids must be unique across splits that
    share a corpus. `on_documents(split names, documents, embeddings)` is called once per distinct corpus (see
    `dense_run`; `progress` and `ignore_identical_ids` too). Returns ({split name: run}, timings)."""
    import dataclasses

    from tf_dualenc.evaluation.evaluate import dense_run

    runs, timings, groups = {}, {}, []
    for name, split in splits.items():
        # Same corpus: the same folder, or equal contents (a pipeline's validation and test artifacts are copies).
        group = next((g for g in groups if os.path.abspath(splits[g[0]].path) == os.path.abspath(split.path)
                      or splits[g[0]].corpus == split.corpus), None)
        if group is None:
            groups.append([name])
        else:
            group.append(name)
    for names in groups:
        queries = {}
        for name in names:
            for q, text in splits[name].queries.items():
                if queries.get(q, text) != text:
                    raise ValueError(f"query id {q!r} names different texts in splits {names} over the same corpus; "
                                     "query ids must be unique across them.")
                queries[q] = text
        merged = dataclasses.replace(splits[names[0]], queries=queries, qrels={q: {} for q in queries})
        keep = None if on_documents is None else (lambda documents, embeddings, names=names: on_documents(names, documents, embeddings))
        run, timing = dense_run(model, merged, k=k, batch_size=batch_size, title_separator=title_separator, on_documents=keep,
                                progress=progress, ignore_identical_ids=ignore_identical_ids)
        for name in names:
            runs[name] = {q: run[q] for q in splits[name].queries}
        timings[",".join(names)] = {key: round(value, 3) for key, value in timing.items()}
    return runs, timings


def lexical_run(split, *, k=100, title_separator=" ", ignore_identical_ids=False):
    """BM25 over `split`'s corpus for its queries (the lexical side of a hybrid); `ignore_identical_ids` as
    `dense_run`."""
    from tf_dualenc.evaluation.evaluate import bm25_dataset_run

    return bm25_dataset_run(split, k=k, ignore_identical_ids=ignore_identical_ids, title_separator=title_separator)


def evaluate_hybrid(dataset, *, model, fusion, validation=None, weight=None, k=100, measures=None, batch_size=64,
                    title_separator=" ", scorer=None, rerank_k=20, rerank_weight=1.0, rerank_check=True, progress=False,
                    ignore_identical_ids=False):
    """Scores dense, BM25 and their fusion on `dataset` — and, with a cross-encoder `scorer`, the full cascade: the
    fused run's top `rerank_k` re-ranked (`tf_dualenc.evaluation.rerank_evaluation.combine_reranking`).

    Everything chosen is chosen on `validation` (a `BeirDataset`, e.g. `load_validation(...)`), never on `dataset`:
    the interpolation weight when `weight` is None, the re-ranker's share when `rerank_weight="auto"`, and, with
    `rerank_check`, the refusal (`RerankerRegression`) of a re-ranker that lowers the first measure on validation.
    `progress`: progress lines on stderr while corpora and queries are encoded (`tf_dualenc.progress`).
    `ignore_identical_ids`: BEIR's rule, applied to the dense and BM25 runs of every split (so to the fusion, the
    weights chosen on validation and the cascade too).

    Returns a report: {"metrics": of the final run, "components": {"dense", "bm25"[, "hybrid"]}, "hybrid": {fusion,
    weight, chosen_on, validation_curve}, ["rerank": {k, weight, validation}], "run": the final run, "timings"}.
    """
    from tf_dualenc.evaluation.rerank_evaluation import (RerankerRegression, choose_rerank_weight, combine_reranking,
                                                         cross_encoder_scores)
    from tf_dualenc.evaluation.trec_metrics import DEFAULT_MEASURES, evaluate_run

    measures = tuple(measures or DEFAULT_MEASURES)
    if fusion not in FUSIONS:
        raise ValueError(f"fusion={fusion!r} (valid: {list(FUSIONS)}).")
    needs_validation = (fusion == "interpolate" and weight is None) or (scorer is not None and (rerank_check or rerank_weight == "auto"))
    if needs_validation and validation is None:
        raise ValueError("a validation split is needed to choose the interpolation weight and to check or weigh the re-ranker; "
                         "give `validation`, or a `weight` (and rerank_check=False with a numeric rerank_weight).")
    if needs_validation:
        from tf_dualenc.data.validation_split import check_disjoint

        check_disjoint(validation, dataset)
    splits = {"evaluated": dataset, **({"validation": validation} if needs_validation else {})}
    dense, timings = dense_runs(model, splits, k=k, batch_size=batch_size, title_separator=title_separator, progress=progress,
                                ignore_identical_ids=ignore_identical_ids)
    lexical = {name: lexical_run(split, k=k, title_separator=title_separator, ignore_identical_ids=ignore_identical_ids)
               for name, split in splits.items()}
    hybrid = {"fusion": fusion, "weight": weight, "chosen_on": None, "validation_curve": None}
    if fusion == "interpolate" and weight is None:
        hybrid["weight"], hybrid["validation_curve"] = choose_interpolation_weight(validation.qrels, dense["validation"], lexical["validation"])
        hybrid["chosen_on"] = {"path": os.path.abspath(validation.path), "split": validation.split, "queries": len(validation.queries)}
    fused = {name: fuse_runs(dense[name], lexical[name], fusion, weight=hybrid["weight"], depth=k) for name in splits}
    components = {name: evaluate_run(dataset.qrels, run["evaluated"], measures=measures)["aggregate"]
                  for name, run in (("dense", dense), ("bm25", lexical))}
    final, report = fused["evaluated"], {"hybrid": hybrid}
    if scorer is not None:
        def cross(name):
            split = splits[name]
            return cross_encoder_scores(fused[name], split.queries, lambda d: split.document_text(d, title_separator), scorer, rerank_k)

        rerank = {"k": rerank_k, "weight": rerank_weight, "validation": None}
        if "validation" in splits:
            metric = measures[0]
            scores = cross("validation")
            if rerank_weight == "auto":
                rerank["weight"], rerank["weight_curve"] = choose_rerank_weight(validation.qrels, fused["validation"], scores, metric)
            before = evaluate_run(validation.qrels, fused["validation"], measures=(metric,))["aggregate"][metric]
            after = evaluate_run(validation.qrels, combine_reranking(fused["validation"], scores, rerank["weight"]),
                                 measures=(metric,))["aggregate"][metric]
            rerank["validation"] = {"metric": metric, "hybrid": before, "reranked": after, "split": validation.split}
            if rerank_check and (after < before or rerank["weight"] == 0):
                raise RerankerRegression(
                    f"re-ranking the hybrid run lowers validation {metric} from {before:.4f} to {after:.4f} (cross-encoder "
                    f"weight {rerank['weight']}, {len(validation.queries)} queries of {validation.split}); leave the re-ranker out"
                    if after < before else f"the best cross-encoder weight on validation is 0 ({validation.split}): the re-ranker "
                    "does not help; leave it out")
        components["hybrid"] = evaluate_run(dataset.qrels, final, measures=measures)["aggregate"]
        final = combine_reranking(final, cross("evaluated"), rerank["weight"])
        report["rerank"] = rerank
    return {
        "metrics": evaluate_run(dataset.qrels, final, measures=measures)["aggregate"],
        "components": components,
        **report,
        "run": final,
        "timings": timings,
    }
