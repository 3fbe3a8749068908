"""A validation split carved from training queries, so that checkpoints, hyperparameters, blessing and fusion
weights are chosen without ever looking at the test split.

A query belongs to the validation split when a salted SHA-1 of its id, read as a number in [0, 1), falls below
`fraction`. That is deterministic (the same ids give the same split on every machine, in every process and in every
run), independent of file order, and stable as data grows: adding queries never moves an existing one between splits.
All qrels rows of a validation query go to validation, so no training pair shares a query with it.

If the BEIR folder ships a `dev` split, that is the validation split and the training split is used whole.
"""

import dataclasses
import hashlib
import os

from tf_dualenc.data.beir import load_beir

VALIDATION_SPLIT = "validation"
_SALT = "tf_dualenc-validation"


def _unit_hash(query_id, seed):
    digest = hashlib.sha1(f"{_SALT}:{seed}:{query_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _check_fraction(fraction):
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction={fraction!r} must be a number in [0, 1).")


def is_validation_query(query_id, fraction, seed=0):
    """Whether `query_id` falls in the validation split carved with `fraction` and `seed`."""
    _check_fraction(fraction)
    return _unit_hash(str(query_id), seed) < fraction


def validation_query_ids(query_ids, fraction, seed=0):
    """The subset of `query_ids` in the validation split, as a set."""
    _check_fraction(fraction)
    return {q for q in query_ids if _unit_hash(str(q), seed) < fraction}


def sample_query_ids(query_ids, count, seed=0):
    """A deterministic sample of `count` ids from `query_ids` (all of them when there are fewer): those with the
    lowest salted hash, so the sample does not depend on file order and is independent of the validation split."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r} must be a positive integer.")
    return set(sorted(query_ids, key=lambda q: _unit_hash(str(q), f"sample-{seed}"))[:count])


def carve_validation(dataset, fraction, seed=0):
    """Splits a `BeirDataset` by query into (train, validation); both keep the whole corpus.

    Raises a ValueError naming the data set when either side would be empty.
    """
    held_out = validation_query_ids(dataset.qrels, fraction, seed)
    if not held_out or len(held_out) == len(dataset.qrels):
        side = "validation" if not held_out else "training"
        raise ValueError(
            f"validation_fraction={fraction} leaves no {side} query among the {len(dataset.qrels)} queries of "
            f"{dataset.path} ({dataset.split}); choose a fraction in (0, 1) that leaves both sides non-empty."
        )

    def part(keep, split):
        qrels = {q: docs for q, docs in dataset.qrels.items() if (q in held_out) == keep}
        return dataclasses.replace(dataset, qrels=qrels, queries={q: dataset.queries[q] for q in qrels}, split=split)

    return part(False, dataset.split), part(True, f"{dataset.split}[{VALIDATION_SPLIT} {fraction:g}]")


def has_dev_split(path):
    return os.path.isfile(os.path.join(os.fspath(path), "qrels", "dev.tsv"))


def _check_not_dev(path, split):
    if split == "dev" and has_dev_split(path):
        raise ValueError(f"{path}: its dev split is the validation split, so it cannot also be the training split; "
                         "train on another split (or move dev aside).")


def check_disjoint(validation, evaluated):
    """Raises a ValueError when the split being evaluated shares a query with the validation split that choices are
    made on (e.g. evaluating a folder's dev split while dev is its validation split)."""
    shared = set(validation.qrels) & set(evaluated.qrels)
    if shared:
        raise ValueError(f"{evaluated.path} ({evaluated.split}) shares {len(shared)} queries (e.g. {sorted(shared)[:3]}) with the "
                         f"validation split {validation.split!r} that choices are made on; evaluate another split.")


def load_validation(path, *, fraction, split="train", seed=0, lenient=False):
    """The validation split of a BEIR folder: its `dev` split when it has one, else the queries of `split` carved
    off with `fraction` (the same ones `load_training_split` leaves out)."""
    _check_not_dev(path, split)
    if has_dev_split(path):
        return load_beir(path, "dev", lenient=lenient)
    return carve_validation(load_beir(path, split, lenient=lenient), fraction, seed)[1]


def load_training_split(path, *, fraction, split="train", seed=0, lenient=False):
    """`split` of a BEIR folder without its validation queries (whole when the folder has a `dev` split or
    `fraction` is 0)."""
    if fraction:
        _check_not_dev(path, split)
    dataset = load_beir(path, split, lenient=lenient)
    if fraction == 0 or has_dev_split(path):
        return dataset
    return carve_validation(dataset, fraction, seed)[0]
