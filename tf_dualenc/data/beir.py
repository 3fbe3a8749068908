"""Readers for the BEIR layout: `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`.

Every problem with the input is an error naming the file and line (`DataError`, a ValueError). With
`lenient=True` a bad record is skipped instead, counted by reason in `BeirDataset.skipped`, and the loader
says how many it dropped — never a silently different dataset.
"""

import collections
import dataclasses
import json
import os


class DataError(ValueError):
    """Bad retrieval data; the message names the file and the line."""


def document_text(record, title_separator=" "):
    """A document's text as every model input gets it: title + separator + text, just the text when there is no title
    (BEIR's convention), title and text stripped. Training, evaluation and the index job all call this, so an index
    holds the very texts the model was trained and evaluated on.

    Args:
        record: a mapping with "text" and an optional "title" (a BEIR corpus record, a JSONL corpus line).
    """
    # str(): a JSONL corpus may hold a number as a title; the index job has always read it as its text.
    title = str(record.get("title") or "").strip()
    text = str(record.get("text") or "").strip()
    return f"{title}{title_separator}{text}" if title else text


@dataclasses.dataclass
class BeirDataset:
    """One split of a BEIR-layout data set.

    Attributes:
        corpus: document id → {"title": str, "text": str}.
        queries: query id → text, restricted to queries that have qrels in this split.
        qrels: query id → {document id → graded relevance (int)}, all rows of the split (scores ≤ 0 included,
            as trec_eval reads them).
        path, split: where it came from.
        skipped: reason → count of records dropped in lenient mode (empty when strict).
    """

    corpus: dict
    queries: dict
    qrels: dict
    path: str
    split: str
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def document_text(self, doc_id, title_separator=" "):
        """The text the model sees for document `doc_id` (`document_text`)."""
        return document_text(self.corpus[doc_id], title_separator)

    def training_pairs(self, title_separator=" "):
        """(query id, query text, document id, document text) for every qrels row with score > 0."""
        for qid, docs in self.qrels.items():
            for doc_id, score in docs.items():
                if score > 0:
                    yield qid, self.queries[qid], doc_id, self.document_text(doc_id, title_separator)


class _Reporter:
    def __init__(self, lenient, skipped):
        self.lenient = lenient
        self.skipped = skipped

    def bad(self, path, line_number, reason, detail):
        if not self.lenient:
            raise DataError(f"{path}:{line_number}: {detail}")
        self.skipped[f"{os.path.basename(path)}: {reason}"] += 1


def describe_json_error(error):
    """'<reason> at column N' for a `json.JSONDecodeError`. Some reasons already end in "at" ("Unterminated string
    starting at", "Invalid control character at"), which would read "at at column"."""
    return f"{error.msg.removesuffix(' at')} at column {error.colno}"


def _lines(path):
    """Yields (line_number, decoded line) and reports invalid UTF-8 with its line number."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Data file not found: {path}")
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, 1):
            try:
                yield line_number, raw.decode("utf-8"), None
            except UnicodeDecodeError as error:
                yield line_number, None, f"invalid UTF-8 at byte {error.start}"


def _read_jsonl(path, required, reporter):
    for line_number, line, decode_error in _lines(path):
        if decode_error:
            reporter.bad(path, line_number, "invalid UTF-8", decode_error)
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            reporter.bad(path, line_number, "malformed JSON", f"malformed JSON ({describe_json_error(error)})")
            continue
        if not isinstance(record, dict):
            reporter.bad(path, line_number, "not an object", f"expected a JSON object, got {type(record).__name__}")
            continue
        missing = [field for field in required if field not in record]
        if missing:
            reporter.bad(path, line_number, "missing field", f"missing field(s) {missing}")
            continue
        yield line_number, record


def read_corpus(path, *, lenient=False, skipped=None):
    """`corpus.jsonl` → {id: {"title", "text"}}. Ids are strings; a document needs a non-empty title or text."""
    reporter = _Reporter(lenient, skipped if skipped is not None else collections.Counter())
    corpus = {}
    for line_number, record in _read_jsonl(path, ("_id", "text"), reporter):
        doc_id = str(record["_id"])
        title = record.get("title") or ""
        text = record["text"] or ""
        if not isinstance(title, str) or not isinstance(text, str):
            reporter.bad(path, line_number, "non-string text", f"document {doc_id!r}: title/text must be strings")
        elif not (title.strip() or text.strip()):
            reporter.bad(path, line_number, "empty text", f"document {doc_id!r} has empty title and text")
        elif doc_id in corpus:
            reporter.bad(path, line_number, "duplicate id", f"duplicate document id {doc_id!r}")
        else:
            corpus[doc_id] = {"title": title.strip(), "text": text.strip()}
    return corpus


def read_queries(path, *, lenient=False, skipped=None):
    """`queries.jsonl` → {id: text}."""
    reporter = _Reporter(lenient, skipped if skipped is not None else collections.Counter())
    queries = {}
    for line_number, record in _read_jsonl(path, ("_id", "text"), reporter):
        qid = str(record["_id"])
        text = record["text"]
        if not isinstance(text, str) or not text.strip():
            reporter.bad(path, line_number, "empty text", f"query {qid!r} has empty text")
        elif qid in queries:
            reporter.bad(path, line_number, "duplicate id", f"duplicate query id {qid!r}")
        else:
            queries[qid] = text.strip()
    return queries


def read_query_texts(path):
    """Query texts in file order: from a `.jsonl` file, each line's "text" (a BEIR `queries.jsonl`, or any JSONL with
    "text"; no id needed); from any other file, one query per line, stripped. Blank lines are skipped. A missing file,
    invalid UTF-8 or a bad JSONL line is an error naming the file (and the line).

    Unlike `read_queries`, ids are neither needed nor checked: the index build's recall check and `tf-dualenc search
    --queries-file` want only texts.
    """
    path = os.fspath(path)
    texts = []
    for line_number, line, decode_error in _lines(path):
        if decode_error:
            raise DataError(f"{path}:{line_number}: {decode_error}")
        if not line.strip():
            continue
        if path.endswith(".jsonl"):
            try:
                text = json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{path}:{line_number}: expected a JSON object with 'text'") from None
            if not isinstance(text, str):
                raise DataError(f"{path}:{line_number}: 'text' must be a string, got {type(text).__name__}")
            texts.append(text)
        else:
            texts.append(line.strip())
    return texts


def read_qrels(path, *, lenient=False, skipped=None):
    """`qrels/<split>.tsv` (header `query-id corpus-id score`) → {query id: {doc id: int score}}."""
    reporter = _Reporter(lenient, skipped if skipped is not None else collections.Counter())
    qrels = collections.defaultdict(dict)
    for line_number, line, decode_error in _lines(path):
        if decode_error:
            reporter.bad(path, line_number, "invalid UTF-8", decode_error)
            continue
        fields = line.rstrip("\r\n").split("\t")
        if line_number == 1:
            if [f.strip() for f in fields] != ["query-id", "corpus-id", "score"]:
                raise DataError(f"{path}:1: expected the header 'query-id<TAB>corpus-id<TAB>score'; got {line.strip()!r}")
            continue
        if not line.strip():
            continue
        if len(fields) != 3:
            reporter.bad(path, line_number, "wrong column count", f"expected 3 tab-separated columns, got {len(fields)}")
            continue
        qid, doc_id, score = (f.strip() for f in fields)
        try:
            score = int(float(score)) if float(score).is_integer() else None
        except ValueError:
            score = None
        if score is None or not qid or not doc_id:
            reporter.bad(path, line_number, "bad row", f"bad qrels row {line.strip()!r} (need ids and an integer score)")
            continue
        qrels[qid][doc_id] = score
    return dict(qrels)


def load_beir(path, split="test", *, lenient=False):
    """Loads one split of a BEIR-layout folder and checks that the qrels point at known ids.

    Args:
        path: folder with `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`.
        split: qrels split name ("train", "dev", "test", ...).
        lenient: skip and count bad records (and qrels rows with unknown ids) instead of raising.

    Returns:
        A `BeirDataset` whose `queries` are those of the split.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"BEIR data folder not found: {path} (expected a folder with corpus.jsonl, queries.jsonl and qrels/<split>.tsv).")
    qrels_path = os.path.join(path, "qrels", f"{split}.tsv")
    if not os.path.isfile(qrels_path):
        available = sorted(f[:-4] for f in os.listdir(os.path.join(path, "qrels"))) if os.path.isdir(os.path.join(path, "qrels")) else []
        raise FileNotFoundError(f"No qrels for split {split!r}: {qrels_path} does not exist (splits here: {available}).")
    skipped = collections.Counter()
    corpus = read_corpus(os.path.join(path, "corpus.jsonl"), lenient=lenient, skipped=skipped)
    queries = read_queries(os.path.join(path, "queries.jsonl"), lenient=lenient, skipped=skipped)
    raw_qrels = read_qrels(qrels_path, lenient=lenient, skipped=skipped)
    qrels = {}
    for qid, docs in raw_qrels.items():
        if qid not in queries:
            if not lenient:
                raise DataError(f"{qrels_path}: query id {qid!r} is not in {os.path.join(path, 'queries.jsonl')}")
            skipped["qrels: unknown query id"] += len(docs)
            continue
        unknown = [d for d in docs if d not in corpus]
        if unknown and not lenient:
            raise DataError(
                f"{qrels_path}: query {qid!r} points at document id(s) {unknown[:5]} not in {os.path.join(path, 'corpus.jsonl')}"
            )
        skipped["qrels: unknown document id"] += len(unknown)
        kept = {d: s for d, s in docs.items() if d in corpus}
        if kept:
            qrels[qid] = kept
    skipped = collections.Counter({k: v for k, v in skipped.items() if v})
    split_queries = {qid: queries[qid] for qid in qrels}
    return BeirDataset(corpus=corpus, queries=split_queries, qrels=qrels, path=path, split=split, skipped=skipped)
