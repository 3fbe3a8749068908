"""How many texts a dual encoder's token budgets cut.

A model keeps the budgets it was trained with (`query_length: 64` in the SciFact example) for evaluation and export,
and the preprocessors cut every longer text without a word. On a held-out set whose queries are whole paragraphs, a
SamToNe model scored NDCG@10 0.445 at its trained 64 query tokens and 0.505 at 256: the cut is worth knowing about.
`evaluate` reports it and warns past `WARN_FRACTION`; `--query-length` / `--document-length` change the budgets.

A text counts as cut when its tokens (special tokens included) fill the whole budget: that is every text that was
cut, plus the rare one that fits exactly.
"""

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
    """{"query": {...}, "document": {...}} with each side's `texts`, `cut`, `fraction` and token `budget`, or None for a
    model whose preprocessors are out of reach (a SavedModel export carries its budgets inside its graph)."""
    sides = {"query": (getattr(model, "query_preprocessor", None), queries),
             "document": (getattr(model, "document_preprocessor", None), documents)}
    if any(preprocessor is None or not hasattr(preprocessor, "sequence_length") for preprocessor, _ in sides.values()):
        return None
    report = {}
    for side, (preprocessor, texts) in sides.items():
        cut, budget = count_at_budget(preprocessor, texts)
        report[side] = {"texts": len(texts), "cut": cut, "fraction": round(cut / max(len(texts), 1), 4), "budget": budget}
    return report


def truncation_warnings(report, threshold=WARN_FRACTION):
    """One line per side that cuts more than `threshold` of its texts, naming the flag that raises the budget."""
    if not report:
        return []
    return [f"WARNING: {entry['cut']} of {entry['texts']} {PLURAL[side]} ({entry['fraction']:.1%}) fill the {entry['budget']}-token "
            f"{side} budget and were cut; raise it with --{side}-length."
            for side, entry in report.items() if entry["fraction"] > threshold]
