"""Training-pair files read record by record: JSONL, TSV and TFRecord `tf.Example` shards.

Nothing here holds a whole file: `iter_pair_records` yields one `PairRecord` at a time, so training sets far
larger than memory stream through `tf_dualenc.training.input_pipeline.stream_batches`.

Formats (one pair per record; hard negatives optional):

- JSONL: `{"query": str, "document": str, "negatives"?: [str], "query_id"?: str, "document_id"?: str,
  "teacher_scores"?: [number]}`.
- TSV: `query<TAB>document[<TAB>negative ...]`, UTF-8, no quoting; a first line starting `query<TAB>` is a
  header and is skipped.
- TFRecord: `tf.train.Example` with bytes features `query`, `document`, and optional `negatives` (a list),
  `query_id`, `document_id`, and an optional float feature `teacher_scores`. `write_pair_tfrecords` writes them.

`teacher_scores` (optional) are a cross-encoder's scores of the record's positive and each of its negatives, in that
order (1 + len(negatives) numbers): what `TrainConfig.distillation` trains toward (`tf_dualenc.training.teacher_scores`).

Missing ids default to the text itself, so no-duplicate batching still catches repeated texts.
"""

import collections
import dataclasses
import glob
import json
import math
import os

from tf_dualenc.data.beir import DataError

PAIR_FORMATS = ("jsonl", "tsv", "tfrecord")
_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".tfrecord": "tfrecord", ".tfrecords": "tfrecord"}


@dataclasses.dataclass(frozen=True)
class PairRecord:
    query_id: str
    query: str
    document_id: str
    document: str
    negatives: tuple = ()
    teacher_scores: tuple = ()


def resolve_pair_files(data):
    """A file, a comma-separated list, or glob patterns (`shards/train-*.tfrecord`) → sorted existing files."""
    files = []
    for part in (p.strip() for p in str(data).split(",")):
        if not part:
            continue
        matches = sorted(glob.glob(part)) if glob.has_magic(part) else ([part] if os.path.isfile(part) else [])
        if not matches:
            raise FileNotFoundError(f"No training pair file matches {part!r}.")
        files.extend(m for m in matches if m not in files)
    if not files:
        raise FileNotFoundError(f"No training pair files given: {data!r}.")
    return files


def infer_pair_format(path):
    """The format of a pair file from its name (`train.jsonl`, `pairs.tsv`, `train-00000-of-00004.tfrecord`)."""
    name = os.path.basename(path)
    for suffix in (".gz",):
        if name.endswith(suffix):
            raise ValueError(f"{path}: compressed pair files are not supported; decompress it first.")
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if "tfrecord" in name:
        return "tfrecord"
    raise ValueError(f"Cannot tell the format of {path} from its name (known suffixes: {sorted(_SUFFIXES)}); set data_format to one of {list(PAIR_FORMATS)}.")


def _record(query, document, negatives=(), query_id=None, document_id=None, teacher_scores=None):
    if not isinstance(query, str) or not query.strip():
        raise DataError("empty or non-string query")
    if not isinstance(document, str) or not document.strip():
        raise DataError("empty or non-string document")
    if not isinstance(negatives, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in negatives):
        raise DataError("negatives must be a list of non-empty strings")
    query, document = query.strip(), document.strip()
    return PairRecord(
        str(query if query_id is None else query_id),
        query,
        str(document if document_id is None else document_id),
        document,
        tuple(n.strip() for n in negatives),
        _teacher_scores(teacher_scores, len(negatives)),
    )


def _teacher_scores(scores, num_negatives):
    if scores is None:
        return ()
    if (not isinstance(scores, (list, tuple)) or len(scores) != 1 + num_negatives
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) for s in scores)):
        raise DataError(f"teacher_scores must be a list of 1 + {num_negatives} finite numbers (the positive's score, then "
                        f"each negative's); got {scores!r}"[:300])
    return tuple(float(s) for s in scores)


def _jsonl_records(path):
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, 1):
            def parse(raw=raw):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError("invalid UTF-8") from None
                if not line.strip():
                    return None
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    raise DataError("malformed JSON") from None
                if not isinstance(value, dict):
                    raise DataError(f"expected a JSON object, got {type(value).__name__}")
                missing = [k for k in ("query", "document") if k not in value]
                if missing:
                    raise DataError(f"missing field(s) {missing}")
                return _record(value["query"], value["document"], value.get("negatives", ()), value.get("query_id"), value.get("document_id"),
                               value.get("teacher_scores"))

            yield f"{path}:{line_number}", parse


def _tsv_records(path):
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, 1):
            def parse(raw=raw, line_number=line_number):
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise DataError("invalid UTF-8") from None
                if not line.strip() or (line_number == 1 and line.split("\t")[0].strip().lower() == "query"):
                    return None
                fields = line.split("\t")
                if len(fields) < 2:
                    raise DataError(f"expected query<TAB>document[<TAB>negative ...], got {len(fields)} field(s)")
                return _record(fields[0], fields[1], fields[2:])

            yield f"{path}:{line_number}", parse


def _tfrecord_records(path):
    import tensorflow as tf

    try:
        for record_number, serialized in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator(), 1):
            def parse(serialized=serialized):
                try:
                    example = tf.train.Example.FromString(serialized)
                except Exception:  # protobuf's DecodeError
                    raise DataError("not a tf.train.Example") from None
                features = example.features.feature

                def texts(key):
                    if key not in features:
                        return None
                    try:
                        return [v.decode("utf-8") for v in features[key].bytes_list.value]
                    except UnicodeDecodeError:
                        raise DataError(f"invalid UTF-8 in feature {key!r}") from None

                query, document = texts("query"), texts("document")
                missing = [k for k, v in (("query", query), ("document", document)) if not v]
                if missing:
                    raise DataError(f"missing bytes feature(s) {missing}")
                query_id, document_id = texts("query_id"), texts("document_id")
                scores = list(features["teacher_scores"].float_list.value) if "teacher_scores" in features else None
                return _record(query[0], document[0], texts("negatives") or (), query_id[0] if query_id else None,
                               document_id[0] if document_id else None, scores)

            yield f"{path}:record {record_number}", parse
    except tf.errors.DataLossError as error:
        raise DataError(f"{path}: corrupt TFRecord file ({error.message.splitlines()[0]})") from None


_READERS = {"jsonl": _jsonl_records, "tsv": _tsv_records, "tfrecord": _tfrecord_records}


def iter_pair_records(files, data_format="auto", *, lenient=False, skipped=None, num_negatives=None, teacher_scores=False):
    """Yields `PairRecord`s from `files` in order, one at a time.

    Args:
        files: paths (see `resolve_pair_files`).
        data_format: "auto" (from each file name) or one of PAIR_FORMATS.
        lenient: skip bad records and count them in `skipped` by reason, instead of raising
            `DataError("<file>:<line>: <reason>")`.
        skipped: a `collections.Counter` to count skips in.
        num_negatives: None keeps every record's hard negatives as they are; an integer N requires at least N
            and keeps the first N (0 drops them), and the teacher scores of those.
        teacher_scores: require `teacher_scores` on every record (distillation).
    """
    if data_format not in ("auto",) + PAIR_FORMATS:
        raise ValueError(f"data_format={data_format!r}; valid: {['auto', *PAIR_FORMATS]}.")
    skipped = collections.Counter() if skipped is None else skipped
    for path in files:
        reader = _READERS[infer_pair_format(path) if data_format == "auto" else data_format]
        for where, parse in reader(path):
            try:
                record = parse()
                if record is not None and num_negatives is not None and len(record.negatives) < num_negatives:
                    raise DataError(f"too few hard negatives ({len(record.negatives)}; num_negatives={num_negatives})")
                if record is not None and teacher_scores and not record.teacher_scores:
                    raise DataError("missing teacher_scores (distillation needs the cross-encoder's score of the positive "
                                    "and of each negative; see tf_dualenc.training.teacher_scores)")
            except DataError as error:
                if not lenient:
                    raise DataError(f"{where}: {error}") from None
                # Count by reason, without the per-record details.
                skipped[str(error).split(" [")[0].split(" (")[0]] += 1
                continue
            if record is not None:
                yield record if num_negatives is None else dataclasses.replace(
                    record, negatives=record.negatives[:num_negatives], teacher_scores=record.teacher_scores[: 1 + num_negatives])


def write_pair_tfrecords(records, path_prefix, num_shards=1):
    """Writes `PairRecord`s round-robin into `<path_prefix>-0000k-of-0000n.tfrecord` shards; returns the paths.

    Each shard is written under a temporary name and renamed when complete, so a crash leaves no shard that
    looks whole.
    """
    import tensorflow as tf

    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1; got {num_shards}.")
    paths = [f"{path_prefix}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    os.makedirs(os.path.dirname(os.path.abspath(path_prefix)), exist_ok=True)
    writers = [tf.io.TFRecordWriter(p + ".tmp") for p in paths]

    def feature(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in values]))

    complete = False
    try:
        for i, record in enumerate(records):
            example = tf.train.Example(features=tf.train.Features(feature={
                "query": feature([record.query]),
                "document": feature([record.document]),
                "query_id": feature([record.query_id]),
                "document_id": feature([record.document_id]),
                "negatives": feature(record.negatives),
                **({"teacher_scores": tf.train.Feature(float_list=tf.train.FloatList(value=record.teacher_scores))}
                   if record.teacher_scores else {}),
            }))
            writers[i % num_shards].write(example.SerializeToString())
        complete = True
    finally:
        for writer in writers:
            writer.close()
        for p in paths:
            if complete:
                os.replace(p + ".tmp", p)
            elif os.path.exists(p + ".tmp"):
                os.remove(p + ".tmp")
    return paths
