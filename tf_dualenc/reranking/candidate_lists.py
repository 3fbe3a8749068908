"""Per-query candidate lists (one positive, then negatives) for listwise training of re-rankers and joint training."""

import dataclasses
import json
import os

import numpy as np


@dataclasses.dataclass
class CandidateList:
    """One training list: `documents[0]` is the positive, the rest negatives (mined, possibly denoised)."""

    query_id: str
    query: str
    document_ids: list
    documents: list


def build_candidate_lists(pairs, negatives_by_query, list_size, *, seed=0, drop_short=True):
    """Lists of `list_size` (positive + list_size − 1 negatives) from training pairs and mined negatives.

    Args:
        pairs: iterable of (query_id, query, document_id, document).
        negatives_by_query: query id → [(document id, text), ...] in preference order (already excluding positives).
        list_size: candidates per list (>= 2).
        drop_short: drop queries with too few negatives (else raise, naming the query).
    """
    if not isinstance(list_size, int) or list_size < 2:
        raise ValueError(f"list_size={list_size!r} must be an integer >= 2 (a positive and at least one negative).")
    rng = np.random.default_rng(seed)
    lists = []
    for query_id, query, document_id, document in pairs:
        negatives = [(i, t) for i, t in negatives_by_query.get(query_id, []) if i != document_id]
        if len(negatives) < list_size - 1:
            if drop_short:
                continue
            raise ValueError(f"query {query_id!r} has {len(negatives)} negatives; list_size={list_size} needs {list_size - 1}.")
        chosen = [negatives[i] for i in sorted(rng.choice(len(negatives), list_size - 1, replace=False))]
        lists.append(CandidateList(query_id, query, [document_id] + [i for i, _ in chosen], [document] + [t for _, t in chosen]))
    return lists


def write_candidate_lists(lists, path):
    """JSONL in the training-pair format with negatives (`tf-dualenc train` reads it with `num_negatives`)."""
    tmp = f"{path}.tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
        for item in lists:
            f.write(json.dumps({"query_id": item.query_id, "query": item.query, "document_id": item.document_ids[0],
                                "document": item.documents[0], "negatives": item.documents[1:]}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
