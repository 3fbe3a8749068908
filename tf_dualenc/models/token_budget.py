"""How many texts a dual encoder's token budgets cut.

A model keeps the budgets it was trained with (`query_length: 64` in the SciFact example) for evaluation and export,
and the preprocessors cut every longer text without a word. On a held-out set whose queries are whole paragraphs, a
SamToNe model scored NDCG@10 0.445 at its trained 64 query tokens and 0.505 at 256: the cut is worth knowing about.
`evaluate` and `build-index` report it (`print_truncation`) and warn past `WARN_FRACTION`; `export` states the budgets
it bakes in (`budget_summary`); `--query-length` / `--document-length` change the budgets.

A text counts as cut when its tokens (special tokens included) fill the whole budget: that is every text that was
cut, plus the rare one that fits exactly.
"""

import sys

import numpy as np

WARN_FRACTION = 0.05
PLURAL = {"query": "queries", "document": "documents"}


def count_at_budget(preprocessor, texts, batch_size=512):
    """(texts that fill `preprocessor`'s whole token budget, the budget) for a keras-hub style preprocessor that maps
    strings to features with a `padding_mask` and has a `sequence_length`."""
    import tensorflow as tf

    budget = int(preprocessor.sequence_length)
    cut = 0
    for start in range(0, len(texts), batch_size):
        mask = preprocessor(tf.constant(list(texts[start : start + batch_size]), tf.string))["padding_mask"]
        cut += int(np.sum(np.sum(np.asarray(mask, np.int64), axis=-1) >= budget))
    return cut, budget


def truncation_report(model, queries, documents):
    """{"query": {...}, "document": {...}} with each side's `texts`, `cut`, `fraction` and token `budget` (a side whose
    texts are None is left out), or None for a model whose preprocessors are out of reach (an export written before
    exports counted tokens)."""
    sides = {side: (getattr(model, f"{side}_preprocessor", None), texts)
             for side, texts in (("query", queries), ("document", documents)) if texts is not None}
    if any(preprocessor is None or not hasattr(preprocessor, "sequence_length") for preprocessor, _ in sides.values()):
        return None
    report = {}
    for side, (preprocessor, texts) in sides.items():
        cut, budget = count_at_budget(preprocessor, texts)
        report[side] = {"texts": len(texts), "cut": cut, "fraction": round(cut / max(len(texts), 1), 4), "budget": budget}
    return report


RAISE_BUDGET = "raise it with --{side}-length"


def truncation_warnings(report, threshold=WARN_FRACTION, remedy=RAISE_BUDGET):
    """One line per side that cuts more than `threshold` of its texts, ending with `remedy` (how to raise the budget;
    `{side}` is the side)."""
    if not report:
        return []
    return [f"WARNING: {entry['cut']} of {entry['texts']} {PLURAL[side]} ({entry['fraction']:.1%}) fill the {entry['budget']}-token "
            f"{side} budget and were cut; {remedy.format(side=side)}."
            for side, entry in report.items() if entry["fraction"] > threshold]


def truncation_summary(report):
    """'cut at the token budget: 3/300 queries at 64 tokens, 812/5183 documents at 256 tokens' (the sides `report` holds)."""
    return "cut at the token budget: " + ", ".join(f"{e['cut']}/{e['texts']} {PLURAL[side]} at {e['budget']} tokens"
                                                   for side, e in report.items())


def print_truncation(report, indent="  ", print_fn=print, remedy=RAISE_BUDGET):
    """What every command that encodes texts says about a `truncation_report`: the summary (`print_fn`), and on stderr a
    warning per side that cuts more than `WARN_FRACTION` of its texts (see `truncation_warnings`). Nothing for None."""
    if not report:
        return
    print_fn(indent + truncation_summary(report))
    for warning in truncation_warnings(report, remedy=remedy):
        print(warning, file=sys.stderr)


def budget_summary(budgets):
    """'token budgets baked in: queries 64 tokens, documents 256 tokens' for {"query": 64, "document": 256} (an
    export's; a cross-encoder's side is "pair")."""
    return "token budgets baked in: " + ", ".join(f"{PLURAL.get(side, side + 's')} {budget} tokens" for side, budget in budgets.items())


def export_budgets(manifest):
    """The token budgets an export (its manifest) cuts its inputs at: a cross-encoder's pair; a retrieval export's
    queries (its documents were embedded when the index was built); an encoder's queries and documents."""
    if manifest["kind"] == "cross_encoder":
        return {"pair": manifest["sequence_length"]}
    sides = ("query",) if manifest["kind"] == "retrieval" else ("query", "document")
    return {side: manifest[f"{side}_sequence_length"] for side in sides}
