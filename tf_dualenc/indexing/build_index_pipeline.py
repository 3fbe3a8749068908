"""Beam job: read a corpus, embed every document with an exported document encoder, write sharded embeddings,
then build a searchable index folder from them.

    python -m tf_dualenc.indexing.build_index_pipeline \
        --corpus ../shared/data/scifact/corpus.jsonl --model exports/scifact/1 --output-dir indexes/scifact \
        [--method auto|scann|brute_force] [--queries ../shared/data/scifact/queries.jsonl] \
        [--runner DirectRunner]   (in-process, one worker: the fastest on one machine; docs/serving.md)
        [--runner dask [--dask-address HOST:PORT]]   (Beam's DaskRunner; a local 2-process cluster without an address)

Everything not listed above is a standard Beam pipeline option (Dataflow, Flink, Spark runners take theirs:
`--runner DataflowRunner --project ... --region ... --temp_location gs://...`).

The local corpus files are checked first (`check_corpus`: every line, duplicate ids, an empty corpus), before the
encoder is loaded. A failed build leaves no shards behind; a re-run removes what a killed one left.

Steps: ReadCorpus → EncodeDocuments (RunInference over `KeyedModelHandler(SavedModelEncoderHandler)`, ids kept with
vectors, `BatchElements` batching, the model loaded once per worker) → WriteEmbeddings (TFRecord shards of
`tf.train.Example{id, text, embedding}`). The index build then streams the shards into `build_index`.

On Beam's DaskRunner the same steps take another shape (`dask_build.py`), because that runner drops what a DoFn emits
from `finish_bundle` (BatchElements' last batch, the file sink's write results, so WriteToTFRecord writes nothing),
evaluates only the pipeline's last transform, runs `Reshuffle` as a no-op and keeps the partition count of the first
`Create`: the corpus is read in shares (one partition each), documents are grouped into length buckets and each
bucket is encoded in batches by one DoFn (the export loaded once per worker process), and each shard is written by
one task after a GroupByKey on the shard number.
"""

import argparse
import glob
import json
import os
import shutil

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from tf_dualenc.data.beir import describe_json_error, document_text, read_query_texts
from tf_dualenc.index_config import BUILD_EPILOG, CORPUS_FORMATS, add_build_arguments
from tf_dualenc.indexing import dask_build
from tf_dualenc.indexing.saved_model_encoder_handler import SavedModelEncoderHandler, encodes_in_this_process


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


def _jsonl_documents(path, lines, title_separator=" "):
    """(location "file:line", (id, title + sep + text)) for each line of a JSONL / BEIR corpus.jsonl file, given as
    raw byte lines (`{"_id" or "id", "title"?, "text"}`); every error names the file and the line."""
    for line_number, raw in enumerate(lines, 1):
        where = f"{path}:{line_number}"
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            raise CorpusRecordError(f"{where}: not UTF-8 text (invalid byte at offset {error.start} of the line); "
                                    "a corpus is JSONL or TFRecord (pass --corpus-format if the name does not say)") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusRecordError(f"{where}: malformed JSON ({describe_json_error(error)}): {line[:80]!r}") from None
        if not isinstance(record, dict):
            raise CorpusRecordError(f"{where}: expected a JSON object per line, got: {line[:80]!r}")
        doc_id = record.get("_id", record.get("id"))
        text = record.get("text")
        if doc_id is None or not isinstance(text, str):
            raise CorpusRecordError(f"{where}: a line lacks '_id' (or 'id') or a string 'text': {line[:80]!r}")
        full = document_text(record, title_separator)
        if not full:
            raise CorpusRecordError(f"{where}: document {doc_id!r} has empty text")
        yield where, (str(doc_id), full)


def parse_example_document(serialized, title_separator=" "):
    """A `tf.train.Example` with bytes features `id`, `text` and optional `title` → (id, text)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        example = tf.train.Example.FromString(serialized)
    except DecodeError:
        raise CorpusRecordError("not a tf.train.Example") from None
    features = example.features.feature

    def text_of(key):
        values = features[key].bytes_list.value if key in features else []
        try:
            return values[0].decode("utf-8") if values else None
        except UnicodeDecodeError as error:
            raise CorpusRecordError(f"feature {key!r} is not UTF-8 text (invalid byte at offset {error.start})") from None

    doc_id, text, title = text_of("id"), text_of("text"), text_of("title")
    if doc_id is None or not text:
        raise CorpusRecordError(f"a corpus tf.Example lacks bytes feature 'id' or 'text' (has {sorted(features)})")
    return (doc_id, document_text({"title": title, "text": text}, title_separator))


def _tfrecord_documents(path, title_separator=" "):
    """(location "file: record N", (id, text)) for each tf.Example of a TFRecord file; every error names the file and the record."""
    import tensorflow as tf

    number = 0
    records = tf.data.TFRecordDataset(path, compression_type="GZIP" if path.endswith(".gz") else "")
    try:
        for number, serialized in enumerate(records.as_numpy_iterator(), 1):
            try:
                document = parse_example_document(serialized, title_separator)
            except CorpusRecordError as error:
                raise CorpusRecordError(f"{path}: record {number}: {error}") from None
            yield f"{path}: record {number}", document
    except tf.errors.OpError as error:
        raise CorpusRecordError(f"{path}: record {number + 1}: not a readable TFRecord ({error.message})") from None


def _file_documents(path, data_format, title_separator=" "):
    if data_format == "tfrecord":
        return _tfrecord_documents(path, title_separator)
    from apache_beam.io.filesystems import FileSystems

    def lines():
        with FileSystems.open(path) as handle:  # local or remote; .gz/.bz2 decompressed by their extension
            yield from iter(handle.readline, b"")

    return _jsonl_documents(path, lines(), title_separator)


def read_corpus_file(path_and_format, title_separator=" "):
    """(id, text) for every document of one corpus file (read whole by one worker, so errors can name the line)."""
    path, data_format = path_and_format
    for _, document in _file_documents(path, data_format, title_separator):
        yield document


def _matching_files(pattern_and_format):
    from apache_beam.io.filesystems import FileSystems

    pattern, data_format = pattern_and_format
    files = sorted(metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list)
    if not files:
        raise FileNotFoundError(f"No corpus file matches {pattern!r}.")
    return [(path, data_format) for path in files]


def check_corpus(patterns, data_format="auto", title_separator=" "):
    """Reads every local corpus file once, before any model is loaded: a bad line fails here in seconds, naming the
    file and line, rather than inside the Beam job after the encoder was loaded; so do an empty corpus and a duplicate
    id. Remote patterns (gs://...) are left to the Beam job, which names the file and line as well.

    Returns:
        The number of documents in the local files (None when every pattern is remote).
    """
    local = [pattern for pattern in patterns if "://" not in pattern]
    if not local:
        return None
    first_seen, files = {}, []
    for pattern in local:
        for path in sorted(glob.glob(pattern)):
            files.append(path)
            for where, (doc_id, _) in _file_documents(path, corpus_format(pattern, data_format), title_separator):
                if doc_id in first_seen:
                    raise CorpusRecordError(f"{where}: duplicate document id {doc_id!r} (first at {first_seen[doc_id]})")
                first_seen[doc_id] = where
    if not first_seen:
        raise CorpusRecordError(f"The corpus has no documents: {', '.join(files)} (empty, or blank lines only).")
    return len(first_seen)


class ReadCorpus(beam.PTransform):
    """Reads documents as (id, text) from JSONL / BEIR corpus.jsonl files or TFRecord shards (glob patterns).

    Each file is read whole by one worker (files are spread over workers): that is what lets an error name the line.
    """

    def __init__(self, patterns, data_format="auto", title_separator=" "):
        super().__init__()
        self._patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        self._format = data_format
        self._separator = title_separator
        for pattern in self._patterns:
            if not glob.glob(pattern) and "://" not in pattern:
                raise FileNotFoundError(f"No corpus file matches {pattern!r}.")
            corpus_format(pattern, data_format)

    def files(self):
        """(path, format) of every file the patterns match, as the job's MatchFiles step finds them."""
        return [unit for pattern in self._patterns for unit in _matching_files((pattern, corpus_format(pattern, self._format)))]

    def expand(self, pipeline):
        return (pipeline
                | "CorpusPatterns" >> beam.Create([(pattern, corpus_format(pattern, self._format)) for pattern in self._patterns])
                | "MatchFiles" >> beam.FlatMap(_matching_files)
                | "SpreadFiles" >> beam.Reshuffle()
                | "ReadFiles" >> beam.FlatMap(read_corpus_file, self._separator))


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
    way). Batches are still formed by `BatchElements` inside RunInference. With `progress`, each worker writes progress
    lines to stderr, against `total` documents when one worker encodes them all.
    """

    def __init__(self, saved_model_dir, min_batch_size=8, max_batch_size=64, signature="encode_document", group_by_length=True, *,
                 progress=False, total=None):
        super().__init__()
        self._handler = KeyedModelHandler(SavedModelEncoderHandler(saved_model_dir, signature, min_batch_size, max_batch_size,
                                                                   progress=progress, total=total))
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


def build_parser():
    """The job's own options (`index_config.add_build_arguments`, which `tf-dualenc build-index` lists too); Beam's
    pipeline options pass through."""
    parser = argparse.ArgumentParser(prog="python -m tf_dualenc.indexing.build_index_pipeline", description=__doc__.split("\n\n")[0],
                                     epilog=BUILD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_build_arguments(parser)


def parse_args(argv=None):
    parser = build_parser()
    args, pipeline_args = parser.parse_known_args(argv)
    try:
        return args, runner_args(args, pipeline_args)
    except ValueError as error:
        parser.error(str(error))


def runner_args(args, pipeline_args):
    """Beam's options for the job of parsed `args` (`--runner dask` spelled as Beam's class path; `args.dask` set)."""
    pipeline_args, args.dask = dask_build.runner_args(pipeline_args)
    if args.dask_address and not args.dask:
        raise ValueError("--dask-address needs --runner dask")
    return pipeline_args


def index_corpus(model, corpus, output, *, pipeline_options=None, make_pipeline=None, corpus_format="auto", title_separator=" ",
                 embeddings=None, num_shards=0, min_batch_size=8, max_batch_size=64, method="auto", brute_force_below=20_000,
                 queries=None, overwrite=False, precision=None, print_fn=print, progress=False):
    """Encodes `corpus` with an encoder export in a Beam job, then builds the index folder `output`.

    Args:
        model: an encoder export (version folder, or model folder: latest version).
        corpus: a list of files or globs (BEIR corpus.jsonl, JSONL, TFRecord shards).
        pipeline_options: Beam `PipelineOptions` for a new pipeline; or
        make_pipeline: a callable returning a `beam.Pipeline` (a TFX Beam executor's `_make_beam_pipeline`).
        embeddings: shard prefix for the embeddings (default `<output>-embeddings/part`).
        queries: texts for the build-time recall@10 check against exact search.
        precision: "float32" or "bfloat16": fail unless the export computes in it (None: whatever it computes in).
        progress: progress lines on stderr while the corpus is encoded (`tf_dualenc.progress`): documents done of the
            corpus's, documents/s and time left on a runner whose one worker encodes in this process (DirectRunner's
            default), each worker's own count elsewhere.
    Returns:
        The index manifest.
    """
    model_dir, export_manifest = _encoder_export(model, precision)
    output = _output_folder(output, overwrite)
    corpus = [corpus] if isinstance(corpus, str) else list(corpus)
    reader = ReadCorpus(corpus, corpus_format, title_separator)
    count = check_corpus(corpus, corpus_format, title_separator)
    prefix = embeddings or os.path.join(f"{output}-embeddings", "part")
    shard_dir = os.path.dirname(prefix)
    local_shards = "://" not in prefix
    # The default shard folder is this build's; a given one may hold other files, so only this build's are removed.
    owns_shard_dir = embeddings is None or (local_shards and not os.path.exists(shard_dir))
    if local_shards:
        _remove_shards(prefix)  # a previous run's shards must not mix with this run's
    try:
        pipeline = make_pipeline() if make_pipeline is not None else beam.Pipeline(options=pipeline_options or PipelineOptions([]))
        with dask_build.dask_cluster(pipeline), pipeline:
            if dask_build.is_dask_runner(pipeline.runner):  # the same records, in a shape Beam's DaskRunner runs
                dask_build.build(pipeline, reader.files(), model_dir=model_dir, prefix=prefix, num_shards=num_shards,
                                 max_batch_size=max_batch_size, title_separator=title_separator, progress=progress)
            else:
                total = count if encodes_in_this_process(pipeline) else None
                _ = (pipeline
                     | "ReadCorpus" >> reader
                     | "EncodeDocuments" >> EncodeDocuments(model_dir, min_batch_size, max_batch_size, progress=progress, total=total)
                     | "WriteEmbeddings" >> WriteEmbeddings(prefix, num_shards))
        records, count, dimension = read_embedding_shards(f"{prefix}-*.tfrecord")
        if not count:
            raise CorpusRecordError(f"The corpus has no documents: {', '.join(corpus)}.")
        return _write_index(model_dir, export_manifest, records(), count, dimension, output, method=method,
                            brute_force_below=brute_force_below, queries=queries, overwrite=overwrite, print_fn=print_fn,
                            texts=[text for _, text, _ in records()])
    except BaseException:
        # Shards of a failed build are useless to a re-run (it removes them first), so none are left behind.
        if local_shards:
            if owns_shard_dir:
                shutil.rmtree(shard_dir, ignore_errors=True)
            else:
                _remove_shards(prefix)
        raise


def _encoder_export(model, precision=None):
    from tf_dualenc.export import export_precision, read_manifest, resolve_export

    model_dir = resolve_export(model)
    export_manifest = read_manifest(model_dir)
    if export_manifest.get("kind") != "encoder":
        raise ValueError(f"{model_dir} is a {export_manifest.get('kind')!r} export; the index needs an encoder export (export_encoder).")
    if precision is not None and precision != export_precision(export_manifest):
        raise ValueError(f"--precision {precision}: {model_dir} computes in {export_precision(export_manifest)} (its manifest); an "
                         f"export computes in what it was exported with: export again with `tf-dualenc export --precision {precision}`.")
    return model_dir, export_manifest


def _output_folder(output, overwrite):
    output = os.path.abspath(output)
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} already exists; pass --overwrite to replace it.")
    return output


def _write_index(model_dir, export_manifest, records, count, dimension, output, *, method, brute_force_below, queries,
                 overwrite, print_fn, texts):
    """The one way both builds (encoded here, or precomputed) turn (id, text, embedding) records into an index folder.
    `texts`: the documents' texts, whose count cut at the export's token budget is reported and recorded."""
    from tf_dualenc.export import ExportedDualEncoder, export_precision
    from tf_dualenc.indexing.retrieval_index import build_index
    from tf_dualenc.models.token_budget import print_truncation, truncation_report

    if dimension != export_manifest["embedding_dim"]:
        raise ValueError(f"Embeddings of size {dimension}; the export says {export_manifest['embedding_dim']}.")
    encoder = ExportedDualEncoder(model_dir)
    # None for an export written before exports carried their padding masks: it cannot tell.
    truncation = truncation_report(encoder, None, texts)
    print_truncation(truncation, indent="", print_fn=print_fn, remedy="export the model again with --{side}-length")
    recall_queries = encoder.encode_queries(list(queries)[:1000], batch_size=256) if queries else None
    model_info = {"export": os.path.abspath(model_dir), "model_name": export_manifest.get("model_name"),
                  "version": export_manifest.get("version"), "architecture": export_manifest.get("architecture"),
                  "precision": export_precision(export_manifest), "truncation": truncation}
    return build_index(records, output, dimension=dimension, count=count, model_info=model_info, method=method,
                       brute_force_below=brute_force_below, recall_queries=recall_queries, overwrite=overwrite, print_fn=print_fn)


def read_documents(corpus, data_format="auto", title_separator=" "):
    """Every (id, text) of `corpus` (files or globs, local or remote), read as the Beam job reads them."""
    corpus = [corpus] if isinstance(corpus, str) else list(corpus)
    return [document for pattern in corpus for path_and_format in _matching_files((pattern, corpus_format(pattern, data_format)))
            for document in read_corpus_file(path_and_format, title_separator)]


def index_embeddings(model, documents, embeddings, output, *, method="auto", brute_force_below=20_000, queries=None,
                     overwrite=False, print_fn=print):
    """Builds the index folder `output` from documents already encoded by `model`, with no Beam job: what
    `index_corpus` would build from the same vectors (see `corpus_embeddings.reusable_embeddings`).

    Args:
        model: the encoder export the vectors came from (recorded in the manifest; encodes the recall check's queries).
        documents: (id, text) pairs; embeddings: [N, D] float32, row i for documents[i].
    Returns:
        The index manifest.
    """
    import numpy as np

    model_dir, export_manifest = _encoder_export(model)
    output = _output_folder(output, overwrite)
    documents = list(documents)
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(documents) or not documents:
        raise ValueError(f"{len(documents)} documents but embeddings of shape {embeddings.shape}.")
    records = ((doc_id, text, vector) for (doc_id, text), vector in zip(documents, embeddings))
    return _write_index(model_dir, export_manifest, records, len(documents), embeddings.shape[1], output, method=method,
                        brute_force_below=brute_force_below, queries=queries, overwrite=overwrite, print_fn=print_fn,
                        texts=[text for _, text in documents])


def _remove_shards(prefix):
    """Removes the shards under `prefix` and the temporary folders Beam's file sink keeps next to them
    (`beam-temp-<name>-<uuid>`, left behind by a killed or failed job)."""
    shard_dir, name = os.path.split(prefix)
    for shard in glob.glob(f"{prefix}-*.tfrecord"):
        os.remove(shard)
    for temp in glob.glob(os.path.join(glob.escape(shard_dir), f"beam-temp-{glob.escape(name)}-*")):
        shutil.rmtree(temp, ignore_errors=True)


def run(argv=None, print_fn=print, progress=True):
    """Runs the encoding pipeline, then builds the index; returns the index manifest. `progress`: see `index_corpus`."""
    return run_parsed(*parse_args(argv), print_fn=print_fn, progress=progress)


def run_parsed(args, pipeline_args, print_fn=print, progress=True):
    """`run` with the job's options already parsed (`tf-dualenc build-index` parses them with its own) and Beam's
    (`runner_args`)."""
    if args.dask_address:
        pipeline_args = [*pipeline_args, "--dask_client_address", args.dask_address]
    return index_corpus(
        args.model, args.corpus, args.output_dir, pipeline_options=PipelineOptions(pipeline_args), corpus_format=args.corpus_format,
        title_separator=args.title_separator, embeddings=args.embeddings, num_shards=args.num_shards,
        min_batch_size=args.min_batch_size, max_batch_size=args.max_batch_size, method=args.method,
        brute_force_below=args.brute_force_below, queries=read_query_texts(args.queries) if args.queries else None,
        overwrite=args.overwrite, precision=args.precision, print_fn=print_fn, progress=progress,
    )


if __name__ == "__main__":
    run()
