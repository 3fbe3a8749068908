"""Per-query candidate lists (one positive, then negatives) for listwise training of re-rankers and joint training."""

import collections
import dataclasses
import json
import os

import numpy as np

from tf_dualenc.atomic_write import atomic_writer


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
    """JSONL in the training-pair format with negatives (`tf-dualenc train` reads it with `num_negatives`; the
    negatives' ids go in `negative_ids`, which the pair reader ignores). Written to a temporary file and renamed, so a
    crash leaves no half-written file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_writer(path) as f:
        for item in lists:
            f.write(json.dumps({"query_id": item.query_id, "query": item.query, "document_id": item.document_ids[0],
                                "document": item.documents[0], "negatives": item.documents[1:],
                                "negative_ids": item.document_ids[1:]}, ensure_ascii=False) + "\n")
    return path


def read_candidate_lists(path, list_size, *, seed=None, lenient=False):
    """Candidate lists of `list_size` from a training-pair file with negatives (`write_candidate_lists`,
    `tf-dualenc mine-negatives`): each record's positive and list_size − 1 of its negatives — the first ones (the
    hardest, in mined order) when `seed` is None, else a seeded random choice (more varied lists).

    Records are validated as `tf-dualenc train` validates them; one with too few negatives is an error naming the
    file and line (with `lenient`, it is skipped and counted in the returned `skipped`).

    Returns:
        (lists, skipped): `CandidateList`s and {reason: count} of skipped records.
    """
    from tf_dualenc.data.pair_records import iter_pair_records

    if not isinstance(list_size, int) or list_size < 2:
        raise ValueError(f"list_size={list_size!r} must be an integer >= 2 (a positive and at least one negative).")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"candidate-list file not found: {path}")
    # The pair reader validates records but keeps no extra fields: negative ids are matched back by content.
    ids = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue  # iter_pair_records reports it with its line number
            if isinstance(value, dict) and isinstance(value.get("negative_ids"), list) and isinstance(value.get("negatives"), list):
                key = (value.get("query_id"), value.get("document_id"), tuple(str(n).strip() for n in value["negatives"]))
                ids[key] = value["negative_ids"]
    rng = None if seed is None else np.random.default_rng(seed)
    skipped = collections.Counter()
    lists = []
    for record in iter_pair_records([path], "jsonl", lenient=lenient, skipped=skipped):
        if len(record.negatives) < list_size - 1:
            if not lenient:
                raise ValueError(f"{path}: query {record.query_id or record.query[:60]!r} has {len(record.negatives)} negatives; "
                                 f"list_size={list_size} needs {list_size - 1}.")
            skipped["too few negatives"] += 1
            continue
        negative_ids = ids.get((record.query_id, record.document_id, record.negatives)) or [None] * len(record.negatives)
        chosen = range(list_size - 1) if rng is None else sorted(rng.choice(len(record.negatives), list_size - 1, replace=False))
        lists.append(CandidateList(record.query_id, record.query, [record.document_id] + [negative_ids[i] for i in chosen],
                                   [record.document] + [record.negatives[i] for i in chosen]))
    return lists, dict(skipped)
