"""Training pairs: from a BEIR split or a JSONL pair file, as parallel id/text lists."""

import collections
import dataclasses
import json
import os

from tf_dualenc.data.beir import DataError, load_beir


@dataclasses.dataclass
class TrainingPairs:
    query_ids: list
    queries: list
    document_ids: list
    documents: list
    source: str
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def __len__(self):
        return len(self.queries)


def read_pair_file(path, *, lenient=False):
    """JSONL lines `{"query": str, "document": str, "query_id"?: str, "document_id"?: str}`.

    Missing ids default to the text itself, so duplicate detection still works on repeated texts.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Pair file not found: {path}")
    pairs = TrainingPairs([], [], [], [], source=os.path.abspath(path))
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise DataError(f"expected a JSON object, got {type(record).__name__}")
                missing = [k for k in ("query", "document") if k not in record]
                if missing:
                    raise DataError(f"missing field(s) {missing}")
                query, document = record["query"], record["document"]
                if not isinstance(query, str) or not query.strip() or not isinstance(document, str) or not document.strip():
                    raise DataError("empty or non-string query/document")
            except (UnicodeDecodeError, json.JSONDecodeError, DataError) as error:
                reason = {UnicodeDecodeError: "invalid UTF-8", json.JSONDecodeError: "malformed JSON"}.get(type(error), str(error))
                if not lenient:
                    raise DataError(f"{path}:{line_number}: {reason if not isinstance(error, DataError) else error}") from error
                pairs.skipped[reason.split(" [")[0]] += 1
                continue
            pairs.queries.append(query.strip())
            pairs.documents.append(document.strip())
            pairs.query_ids.append(str(record.get("query_id", query.strip())))
            pairs.document_ids.append(str(record.get("document_id", document.strip())))
    if not pairs.queries:
        raise DataError(f"{path}: no training pairs")
    return pairs


def load_training_pairs(path, *, data_format="auto", split="train", title_separator=" ", lenient=False):
    """Pairs from a BEIR folder (qrels rows with score > 0) or a JSONL pair file."""
    if data_format == "auto":
        data_format = "beir" if os.path.isdir(path) else "pairs"
    if data_format == "pairs":
        return read_pair_file(path, lenient=lenient)
    dataset = load_beir(path, split, lenient=lenient)
    pairs = TrainingPairs([], [], [], [], source=f"{os.path.abspath(path)} ({split})", skipped=dataset.skipped)
    for qid, query, doc_id, document in dataset.training_pairs(title_separator):
        pairs.query_ids.append(qid)
        pairs.queries.append(query)
        pairs.document_ids.append(doc_id)
        pairs.documents.append(document)
    if not pairs.queries:
        raise DataError(f"{path}: split {split!r} has no qrels rows with score > 0")
    return pairs
