"""IR metrics with trec_eval's definitions (what pytrec_eval and BEIR report).

- Ranking: score descending; equal scores by document id descending (trec_eval's tie-break).
- Relevance: a qrels score >= `relevance_level` (default 1) is relevant; NDCG uses the graded score as gain.
- P@k: relevant documents in the top k, divided by k (P@1 = Success@1).
- MRR@k: 1 / rank of the first relevant document within the top k, else 0 (trec_eval `recip_rank` on a run cut at k).
- NDCG@k: Σ_{r≤k} gain_r / log2(r + 1), divided by the same sum over the ideal ordering of all judged gains
  (trec_eval `ndcg_cut_k`, linear gain).
- Recall@k: relevant documents in the top k / all relevant documents of the query.
- MAP@k: Σ over relevant documents in the top k of P@(their rank), / all relevant documents (`map_cut_k`).
Means are over the queries that have qrels; a query with qrels but no results scores 0.
"""

import math
import re

import numpy as np

DEFAULT_MEASURES = ("NDCG@10", "MRR@10", "P@1", "Recall@100", "MAP@100")
_MEASURE = re.compile(r"^(NDCG|MRR|P|Recall|MAP)@([1-9][0-9]*)$")


def parse_measure(name):
    match = _MEASURE.match(name)
    if not match:
        raise ValueError(f"Unknown measure {name!r}; valid forms: NDCG@k, MRR@k, P@k, Recall@k, MAP@k (k >= 1).")
    return match.group(1), int(match.group(2))


def rank(scores):
    """{doc id: score} → doc ids in trec_eval order."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (-item[1], _Reversed(item[0])))]


class _Reversed:
    """Sort key that orders strings descending inside an ascending sort."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        return self.value > other.value

    def __eq__(self, other):
        return self.value == other.value


def _query_measures(ranking, judged, parsed, relevance_level):
    relevant = {d for d, s in judged.items() if s >= relevance_level}
    out = {}
    for name, (kind, k) in parsed.items():
        top = ranking[:k]
        hits = [d in relevant for d in top]
        if kind == "P":
            out[name] = sum(hits) / k
        elif kind == "MRR":
            out[name] = 1.0 / (hits.index(True) + 1) if True in hits else 0.0
        elif kind == "Recall":
            out[name] = sum(hits) / len(relevant) if relevant else 0.0
        elif kind == "MAP":
            found, total = 0, 0.0
            for r, hit in enumerate(hits, 1):
                if hit:
                    found += 1
                    total += found / r
            out[name] = total / len(relevant) if relevant else 0.0
        else:  # NDCG
            gains = [max(judged.get(d, 0), 0) if judged.get(d, 0) >= relevance_level else 0 for d in top]
            dcg = sum(g / math.log2(r + 1) for r, g in enumerate(gains, 1))
            ideal = sorted((s for s in judged.values() if s >= relevance_level), reverse=True)[:k]
            idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, 1))
            out[name] = dcg / idcg if idcg > 0 else 0.0
    return out


def evaluate_run(qrels, run, measures=DEFAULT_MEASURES, relevance_level=1):
    """Scores a run against qrels.

    Args:
        qrels: {query id: {doc id: int relevance}}.
        run: {query id: {doc id: score}} (e.g. the top 100 of each query).
        measures: names like "NDCG@10" (see module docstring).
        relevance_level: minimum relevance that counts as relevant.

    Returns:
        {"aggregate": {measure: mean}, "per_query": {query id: {measure: value}}}.
    """
    parsed = {name: parse_measure(name) for name in measures}
    if not qrels:
        raise ValueError("`qrels` is empty: nothing to evaluate.")
    per_query = {}
    for qid, judged in qrels.items():
        per_query[qid] = _query_measures(rank(run.get(qid, {})), judged, parsed, relevance_level)
    aggregate = {name: float(np.mean([m[name] for m in per_query.values()])) for name in measures}
    return {"aggregate": aggregate, "per_query": per_query}


def write_trec_run(path, run, tag="tf_dualenc"):
    """Writes `qid Q0 docid rank score tag` lines, each query's documents in trec_eval order."""
    import os

    from tf_dualenc.atomic_write import atomic_writer

    if any(c.isspace() for c in tag):
        raise ValueError(f"TREC run tag must not contain whitespace; got {tag!r}.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_writer(path) as f:
        for qid in sorted(run):
            for r, doc in enumerate(rank(run[qid]), 1):
                f.write(f"{qid} Q0 {doc} {r} {run[qid][doc]:.6f} {tag}\n")
    return path


def read_trec_run(path):
    """A run written by `write_trec_run` (any `qid Q0 docid rank score tag` file): {qid: {doc id: score}}; a line of
    another shape is an error naming the file and line."""
    run = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) != 6:
                    raise ValueError
                run.setdefault(fields[0], {})[fields[2]] = float(fields[4])
            except ValueError:
                raise ValueError(f"{path}:{number}: not a TREC run line (qid Q0 docid rank score tag): {line.strip()[:80]!r}") from None
    return run
