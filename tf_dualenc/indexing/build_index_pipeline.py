"""Beam job: read a corpus, embed every document with an exported document encoder, write sharded embeddings,
then build a searchable index folder from them.

    python -m tf_dualenc.indexing.build_index_pipeline \
        --corpus ../shared/data/scifact/corpus.jsonl --model exports/scifact/1 --output indexes/scifact \
        [--method auto|scann|brute_force] [--queries ../shared/data/scifact/queries.jsonl] \
        [--runner DirectRunner]   (in-process, one worker: the fastest on one machine; docs/serving.md)

Everything not listed above is a standard Beam pipeline option (Dataflow, Flink, Spark runners take theirs:
`--runner DataflowRunner --project ... --region ... --temp_location gs://...`).

Steps: ReadCorpus → EncodeDocuments (RunInference over `KeyedModelHandler(SavedModelEncoderHandler)`, ids kept with
vectors, `BatchElements` batching, the model loaded once per worker) → WriteEmbeddings (TFRecord shards of
`tf.train.Example{id, text, embedding}`). The index build then streams the shards into `build_index`.
"""

import argparse
import glob
import json
import os

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from tf_dualenc.indexing.saved_model_encoder_handler import SavedModelEncoderHandler

CORPUS_FORMATS = ("auto", "jsonl", "tfrecord")


class CorpusRecordError(ValueError):
    pass


def corpus_format(pattern, data_format="auto"):
    if data_format != "auto":
        if data_format not in CORPUS_FORMATS:
            raise ValueError(f"corpus format {data_format!r}; valid: {list(CORPUS_FORMATS)}.")
        return data_format
    name = pattern.lower()
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    if "tfrecord" in name:
        return "tfrecord"
    raise ValueError(f"Cannot tell the corpus format of {pattern!r} (.jsonl or *.tfrecord*); pass --corpus-format.")


def parse_json_document(filename_and_line, title_separator=" "):
    """A BEIR corpus.jsonl / JSONL line `{"_id" or "id", "title"?, "text"}` → (id, title + sep + text)."""
    filename, line = filename_and_line
    if not line.strip():
        return []
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise CorpusRecordError(f"{filename}: malformed JSON line: {line[:80]!r}") from None
    if not isinstance(record, dict):
        raise CorpusRecordError(f"{filename}: expected a JSON object per line, got: {line[:80]!r}")
    doc_id = record.get("_id", record.get("id"))
    text = record.get("text")
    if doc_id is None or not isinstance(text, str):
        raise CorpusRecordError(f"{filename}: a line lacks '_id' (or 'id') or a string 'text': {line[:80]!r}")
    title = record.get("title") or ""
    full = f"{title}{title_separator}{text}".strip() if title else text.strip()
    if not full:
        raise CorpusRecordError(f"{filename}: document {doc_id!r} has empty text")
    return [(str(doc_id), full)]


def parse_example_document(serialized, title_separator=" "):
    """A `tf.train.Example` with bytes features `id`, `text` and optional `title` → (id, text)."""
    import tensorflow as tf

    example = tf.train.Example.FromString(serialized)
    features = example.features.feature

    def text_of(key):
        values = features[key].bytes_list.value if key in features else []
        return values[0].decode("utf-8") if values else None

    doc_id, text, title = text_of("id"), text_of("text"), text_of("title")
    if doc_id is None or not text:
        raise CorpusRecordError(f"A corpus tf.Example lacks bytes feature 'id' or 'text' (has {sorted(features)}).")
    return (doc_id, f"{title}{title_separator}{text}".strip() if title else text.strip())


class ReadCorpus(beam.PTransform):
    """Reads documents as (id, text) from JSONL / BEIR corpus.jsonl files or TFRecord shards (glob patterns)."""

    def __init__(self, patterns, data_format="auto", title_separator=" "):
        super().__init__()
        self._patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        self._format = data_format
        self._separator = title_separator
        for pattern in self._patterns:
            if not glob.glob(pattern) and "://" not in pattern:
                raise FileNotFoundError(f"No corpus file matches {pattern!r}.")
            corpus_format(pattern, data_format)

    def expand(self, pipeline):
        parts = []
        for i, pattern in enumerate(self._patterns):
            if corpus_format(pattern, self._format) == "jsonl":
                part = (pipeline | f"ReadJsonl{i}" >> beam.io.ReadFromTextWithFilename(pattern)
                        | f"ParseJson{i}" >> beam.FlatMap(parse_json_document, self._separator))
            else:
                part = (pipeline | f"ReadTFRecord{i}" >> beam.io.ReadFromTFRecord(pattern)
                        | f"ParseExample{i}" >> beam.Map(parse_example_document, self._separator))
            parts.append(part)
        return parts[0] if len(parts) == 1 else parts | "MergeCorpora" >> beam.Flatten()


LENGTH_BUCKET_CHARS = 64


def length_bucket(document, bucket_chars=LENGTH_BUCKET_CHARS):
    """The length bucket of an (id, text) pair: texts of similar length share a bucket."""
    return len(document[1]) // bucket_chars


def ordered_by_length(bucket_and_documents):
    """A bucket's documents, shortest first, so consecutive documents (one batch) have similar lengths."""
    _, documents = bucket_and_documents
    return sorted(documents, key=lambda document: (len(document[1]), document[0]))


class EncodeDocuments(beam.PTransform):
    """(id, text) → (id, text, embedding) with the export's `encode_document` signature.

    With `group_by_length` (default), documents are grouped into length buckets first: a batch is padded to its
    longest text, so batches of similar lengths waste less compute (the in-process `encode_documents` sorts the same
    way). Batches are still formed by `BatchElements` inside RunInference.
    """

    def __init__(self, saved_model_dir, min_batch_size=8, max_batch_size=64, signature="encode_document", group_by_length=True):
        super().__init__()
        self._handler = KeyedModelHandler(SavedModelEncoderHandler(saved_model_dir, signature, min_batch_size, max_batch_size))
        self._group_by_length = group_by_length

    def expand(self, documents):
        if self._group_by_length:
            documents = (documents
                         | "KeyByLength" >> beam.WithKeys(length_bucket)
                         | "GroupByLength" >> beam.GroupByKey()
                         | "OrderByLength" >> beam.FlatMap(ordered_by_length))
        return (documents
                | "RunInference" >> RunInference(self._handler)
                | "KeepText" >> beam.Map(lambda keyed: (keyed[0], keyed[1].example, keyed[1].inference)))


def serialize_embedding(record):
    import tensorflow as tf

    doc_id, text, vector = record
    return tf.train.Example(features=tf.train.Features(feature={
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[doc_id.encode("utf-8")])),
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])),
        "embedding": tf.train.Feature(float_list=tf.train.FloatList(value=[float(x) for x in vector])),
    })).SerializeToString()


class WriteEmbeddings(beam.PTransform):
    """(id, text, embedding) → TFRecord shards `<prefix>-SSSSS-of-NNNNN.tfrecord` of tf.Example{id, text, embedding}."""

    def __init__(self, prefix, num_shards=0):
        super().__init__()
        self._prefix = prefix
        self._num_shards = num_shards

    def expand(self, records):
        return (records
                | "Serialize" >> beam.Map(serialize_embedding)
                | "WriteTFRecords" >> beam.io.WriteToTFRecord(self._prefix, file_name_suffix=".tfrecord", num_shards=self._num_shards))


def read_embedding_shards(pattern):
    """Streams (id, text, embedding) from the shards, one record at a time; returns (iterator factory, count, dim)."""
    import numpy as np
    import tensorflow as tf

    files = sorted(glob.glob(pattern))
    if not files:
        raise FileNotFoundError(f"No embedding shards match {pattern!r}.")

    def records():
        for serialized in tf.data.TFRecordDataset(files).as_numpy_iterator():
            features = tf.train.Example.FromString(serialized).features.feature
            yield (features["id"].bytes_list.value[0].decode("utf-8"), features["text"].bytes_list.value[0].decode("utf-8"),
                   np.asarray(features["embedding"].float_list.value, np.float32))

    count, dimension = 0, None
    for _, _, vector in records():
        count += 1
        dimension = dimension or len(vector)
    return records, count, dimension


def _read_queries(path):
    texts = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            if path.endswith(".jsonl"):
                try:
                    texts.append(json.loads(line)["text"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise CorpusRecordError(f"{path}:{line_number}: expected a JSON object with 'text'") from None
            else:
                texts.append(line.strip())
    return texts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="tf-dualenc build-index", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, action="append", help="corpus file or glob (BEIR corpus.jsonl, JSONL, TFRecord shards); repeatable")
    parser.add_argument("--corpus-format", default="auto", choices=CORPUS_FORMATS)
    parser.add_argument("--model", required=True, help="an encoder export: a version folder, or a model folder (latest version)")
    parser.add_argument("--output", required=True, help="index folder to create")
    parser.add_argument("--embeddings", default=None, help="shard prefix for the embeddings (default: <output>-embeddings/part)")
    parser.add_argument("--num-shards", type=int, default=0, help="embedding shards (0: let the runner decide)")
    parser.add_argument("--min-batch-size", type=int, default=8)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--method", default="auto", choices=["auto", "scann", "brute_force"])
    parser.add_argument("--brute-force-below", type=int, default=20_000, help="'auto' uses exact search below this many documents")
    parser.add_argument("--queries", default=None, help="queries (JSONL with 'text', or one per line) for the build-time recall@10 check")
    parser.add_argument("--title-separator", default=" ")
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_known_args(argv)


def resolve_export(path):
    """A version folder, or a model folder whose largest numeric subfolder is taken."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = sorted((int(n) for n in os.listdir(path) if n.isdigit()), reverse=True) if os.path.isdir(path) else []
    if not versions:
        raise FileNotFoundError(f"{path} is neither a SavedModel version folder nor a model folder with numeric versions.")
    return os.path.join(path, str(versions[0]))


def index_corpus(model, corpus, output, *, pipeline_options=None, make_pipeline=None, corpus_format="auto", title_separator=" ",
                 embeddings=None, num_shards=0, min_batch_size=8, max_batch_size=64, method="auto", brute_force_below=20_000,
                 queries=None, overwrite=False, print_fn=print):
    """Encodes `corpus` with an encoder export in a Beam job, then builds the index folder `output`.

    Args:
        model: an encoder export (version folder, or model folder: latest version).
        corpus: a list of files or globs (BEIR corpus.jsonl, JSONL, TFRecord shards).
        pipeline_options: Beam `PipelineOptions` for a new pipeline; or
        make_pipeline: a callable returning a `beam.Pipeline` (a TFX Beam executor's `_make_beam_pipeline`).
        embeddings: shard prefix for the embeddings (default `<output>-embeddings/part`).
        queries: texts for the build-time recall@10 check against exact search.
    Returns:
        The index manifest.
    """
    from tf_dualenc.export import read_manifest
    from tf_dualenc.indexing.retrieval_index import build_index

    model_dir = resolve_export(model)
    export_manifest = read_manifest(model_dir)
    if export_manifest.get("kind") != "encoder":
        raise ValueError(f"{model_dir} is a {export_manifest.get('kind')!r} export; the index needs an encoder export (export_encoder).")
    output = os.path.abspath(output)
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} already exists; pass --overwrite to replace it.")
    prefix = embeddings or os.path.join(f"{output}-embeddings", "part")
    for stale in glob.glob(f"{prefix}-*.tfrecord"):
        os.remove(stale)  # a previous run's shards must not mix with this run's
    pipeline = make_pipeline() if make_pipeline is not None else beam.Pipeline(options=pipeline_options or PipelineOptions([]))
    with pipeline:
        _ = (pipeline
             | "ReadCorpus" >> ReadCorpus(corpus, corpus_format, title_separator)
             | "EncodeDocuments" >> EncodeDocuments(model_dir, min_batch_size, max_batch_size)
             | "WriteEmbeddings" >> WriteEmbeddings(prefix, num_shards))
    records, count, dimension = read_embedding_shards(f"{prefix}-*.tfrecord")
    if dimension != export_manifest["embedding_dim"]:
        raise ValueError(f"Embeddings of size {dimension}; the export says {export_manifest['embedding_dim']}.")
    recall_queries = None
    if queries:
        from tf_dualenc.indexing.query_encoders import local_query_encoder

        recall_queries = local_query_encoder(model_dir)(list(queries)[:1000])
    model_info = {"export": os.path.abspath(model_dir), "model_name": export_manifest.get("model_name"),
                  "version": export_manifest.get("version"), "architecture": export_manifest.get("architecture")}
    return build_index(records(), output, dimension=dimension, count=count, model_info=model_info, method=method,
                       brute_force_below=brute_force_below, recall_queries=recall_queries, overwrite=overwrite, print_fn=print_fn)


def run(argv=None, print_fn=print):
    """Runs the encoding pipeline, then builds the index; returns the index manifest."""
    args, pipeline_args = parse_args(argv)
    return index_corpus(
        args.model, args.corpus, args.output, pipeline_options=PipelineOptions(pipeline_args), corpus_format=args.corpus_format,
        title_separator=args.title_separator, embeddings=args.embeddings, num_shards=args.num_shards,
        min_batch_size=args.min_batch_size, max_batch_size=args.max_batch_size, method=args.method,
        brute_force_below=args.brute_force_below, queries=_read_queries(args.queries) if args.queries else None,
        overwrite=args.overwrite, print_fn=print_fn,
    )


if __name__ == "__main__":
    run()
