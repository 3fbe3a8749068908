"""A data set's evaluation rules, in one place: every consumer of a split (training's validation and best-model
choice, `evaluate` on test and validation, the hybrid weight, the re-ranker check, hard-negative mining and the
pipeline) reads them from here, so a rule given once holds everywhere.

- `ignore_identical_ids` (BEIR's option): a hit whose document id equals the query id is dropped from every run
  before it is scored (sets where each query is also a document of the corpus, e.g. ArguAna, Quora), and mining
  never returns a query's own document as a negative.
- `lenient`: bad records (qrels rows pointing at missing documents, malformed lines) are skipped and counted instead
  of failing, on every split read, the validation split included.
- `title_separator`: joins a document's title and text.

A BEIR folder may carry them in `beir.json` beside `corpus.jsonl` (`{"ignore_identical_ids": true, "lenient": true}`),
so a user need not repeat them per command; a flag or config key that is given wins over the file.
"""

import dataclasses
import json
import os

RULES_FILE = "beir.json"


@dataclasses.dataclass(frozen=True)
class EvaluationRules:
    """The rules one data set is evaluated under (see the module docstring)."""

    ignore_identical_ids: bool = False
    lenient: bool = False
    title_separator: str = " "

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self):
        return dataclasses.asdict(self)


def read_rules(folder):
    """The rules a BEIR folder's `beir.json` sets ({} when it has none); a bad file is an error naming it."""
    path = os.path.join(folder, RULES_FILE) if folder and os.path.isdir(folder) else None
    if path is None or not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except ValueError as error:
        raise ValueError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected an object of {EvaluationRules.field_names()}.")
    unknown = sorted(set(values) - set(EvaluationRules.field_names()))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; valid keys: {EvaluationRules.field_names()}.")
    for name, value in values.items():
        expected = str if name == "title_separator" else bool
        if not isinstance(value, expected):
            raise ValueError(f"{path}: {name}={value!r} must be {'a string' if expected is str else 'true or false'}.")
    return values


def resolve_rules(folder, **given):
    """The rules for `folder`: its `beir.json`, overridden by each of `given` (ignore_identical_ids, lenient,
    title_separator) that is not None."""
    unknown = sorted(set(given) - set(EvaluationRules.field_names()))
    if unknown:
        raise TypeError(f"unknown rule(s) {unknown}; valid: {EvaluationRules.field_names()}")
    values = dict(read_rules(folder), **{name: value for name, value in given.items() if value is not None})
    return EvaluationRules(**values)


def write_rules(folder, rules):
    """Writes `rules` as `folder`/beir.json (what the pipeline's ingest does, so its artifacts carry the rules)."""
    from tf_dualenc.atomic_write import write_json_atomic

    write_json_atomic(os.path.join(folder, RULES_FILE), rules.to_dict())
