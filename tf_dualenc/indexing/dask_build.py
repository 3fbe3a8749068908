"""`tf-dualenc build-index --runner dask`: the encoding job on Apache Beam's DaskRunner (a dask.distributed cluster).

Beam 2.77's DaskRunner translates only Create, ParDo, GroupByKey and Flatten into dask bags, and:
- drops whatever a DoFn emits from `finish_bundle` (it collects a bundle's outputs before calling it). `BatchElements`
  (inside RunInference) emits its last, partial batch there, and Beam's file sinks (`WriteToTFRecord`) emit their write
  results there: on Dask the stock job loses documents and writes no shard at all.
- computes only the last transform of the pipeline (other branches run only as its side inputs, recomputed);
- runs `Reshuffle` as a no-op, and every GroupByKey keeps the partition count of the `Create` upstream (one partition
  for fewer than 128 elements unless `--dask_npartitions` says otherwise), so nothing spreads over the workers unless
  the first `Create` does.

So on Dask the job is one chain with no side input and nothing emitted from `finish_bundle`:
Create(shares: each corpus file × N, one partition each) → ReadShares (share i of N keeps every N-th document of its
file) → KeyByLength → GroupByLength → EncodeBuckets (a bucket's documents sorted by length, encoded in batches of
`max_batch_size`, the export loaded once per worker process) → KeyByShard → GroupByShard → WriteShards (one task
writes each `<prefix>-SSSSS-of-NNNNN.tfrecord` to a temporary name and renames it). The records are the ones the
DirectRunner job writes (same ids, texts, embeddings; batches differ, the vectors do not by more than float noise).
"""

import contextlib
import math
import os
import threading
import uuid
import zlib

import apache_beam as beam

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
LOCAL_WORKERS = 2
# Read shares (= dask partitions) per job when --dask_npartitions is not given: enough to keep a few workers busy.
DEFAULT_PARTITIONS = 8


def is_dask_runner(runner):
    return type(runner).__name__ == "DaskRunner"


@contextlib.contextmanager
def dask_cluster(pipeline, workers=LOCAL_WORKERS):
    """Around a DaskRunner pipeline's run (nothing for other runners): without a scheduler address
    (`--dask_client_address` / `--dask_scheduler_file`), a `LocalCluster` of `workers` processes, one thread each,
    instead of Beam's default `Client()` (a cluster as large as the machine); on exit, whether the run failed or not,
    the client Beam's DaskRunner opened (it never closes it), then that cluster."""
    if not is_dask_runner(pipeline.runner):
        yield
        return
    from apache_beam.runners.dask.dask_runner import DaskOptions

    options = pipeline.options.view_as(DaskOptions)
    with contextlib.ExitStack() as stack:
        if not options.address and not options.scheduler_file:
            from tf_dualenc.extras import require

            LocalCluster = require("dask.distributed", feature="build-index --runner dask").LocalCluster
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None))
            options.address = cluster.scheduler_address
        try:
            yield
        finally:
            client = getattr(getattr(pipeline, "result", None), "client", None)
            if client is not None:
                client.close()


def read_shares(files, partitions):
    """(path, format, share, shares) work units: each file split into enough shares for `partitions` in all."""
    shares = max(1, math.ceil(partitions / len(files)))
    return [(path, data_format, share, shares) for path, data_format in files for share in range(shares)]


def read_share(unit, title_separator=" "):
    """Every `shares`-th document of a file, from the `share`-th on (the whole file is read, so errors name the line)."""
    from tf_dualenc.indexing.build_index_pipeline import read_corpus_file

    path, data_format, share, shares = unit
    for number, document in enumerate(read_corpus_file((path, data_format), title_separator)):
        if number % shares == share:
            yield document


_ENCODERS = {}
_ENCODERS_LOCK = threading.Lock()


def process_encoder(saved_model_dir, signature, progress=False):
    """The export's signature, loaded once per process (a dask worker runs every bundle's DoFn setup anew); with
    `progress`, the process writes progress lines (what it encodes: no total, no ETA)."""
    from tf_dualenc.indexing.saved_model_encoder_handler import _LoadedSignature, worker_progress

    with _ENCODERS_LOCK:
        key = (saved_model_dir, signature, progress)
        if key not in _ENCODERS:
            _ENCODERS[key] = _LoadedSignature(saved_model_dir, signature, worker_progress(signature, progress))
        return _ENCODERS[key]


class EncodeBuckets(beam.DoFn):
    """(bucket, [(id, text)]) → (id, text, embedding), the bucket's documents shortest first, `max_batch_size` a batch."""

    def __init__(self, saved_model_dir, max_batch_size=64, signature="encode_document", progress=False):
        super().__init__()
        self._saved_model_dir = saved_model_dir
        self._max_batch_size = max_batch_size
        self._signature = signature
        self._progress = progress

    def process(self, bucket_and_documents):
        from tf_dualenc.indexing.build_index_pipeline import ordered_by_length

        documents = ordered_by_length(bucket_and_documents)
        encode = process_encoder(self._saved_model_dir, self._signature, self._progress)
        for start in range(0, len(documents), self._max_batch_size):
            batch = documents[start:start + self._max_batch_size]
            for (doc_id, text), vector in zip(batch, encode([text for _, text in batch])):
                yield doc_id, text, vector


def shard_of(record, num_shards):
    return zlib.crc32(record[0].encode("utf-8")) % num_shards


def write_shard(shard_and_records, prefix, num_shards):
    """Writes one shard (records sorted by id) under a temporary name, then renames it; returns its path."""
    import tensorflow as tf

    from tf_dualenc.indexing.build_index_pipeline import serialize_embedding

    shard, records = shard_and_records
    final = f"{prefix}-{shard:05d}-of-{num_shards:05d}.tfrecord"
    shard_dir, name = os.path.split(prefix)
    # Named like Beam's own sink temp folders, so `_remove_shards` clears what a killed job left.
    temp_dir = os.path.join(shard_dir, f"beam-temp-{name}-{uuid.uuid4().hex}")
    tf.io.gfile.makedirs(temp_dir)
    temp = os.path.join(temp_dir, os.path.basename(final))
    with tf.io.TFRecordWriter(temp) as writer:
        for record in sorted(records, key=lambda record: record[0]):
            writer.write(serialize_embedding(record))
    tf.io.gfile.rename(temp, final, overwrite=True)
    tf.io.gfile.rmtree(temp_dir)
    return final


def build(pipeline, files, *, model_dir, prefix, num_shards=0, max_batch_size=64, title_separator=" ", progress=False):
    """Adds the Dask-shaped job to `pipeline` (whose runner is a DaskRunner); `files` are (path, format) pairs. With
    `progress`, each worker process writes progress lines for what it encodes."""
    from apache_beam.runners.dask.dask_runner import DaskOptions

    from tf_dualenc.indexing.build_index_pipeline import length_bucket

    options = pipeline.options.view_as(DaskOptions)
    units = read_shares(files, options.npartitions or DEFAULT_PARTITIONS)
    if not options.partition_size:  # --dask_partition_size, if given, is the user's choice
        options.npartitions = len(units)  # one share per partition
    num_shards = num_shards or len(units)
    _ = (pipeline
         | "CorpusShares" >> beam.Create(units)
         | "ReadShares" >> beam.FlatMap(read_share, title_separator)
         | "KeyByLength" >> beam.WithKeys(length_bucket)
         | "GroupByLength" >> beam.GroupByKey()
         | "EncodeBuckets" >> beam.ParDo(EncodeBuckets(model_dir, max_batch_size, progress=progress))
         | "KeyByShard" >> beam.WithKeys(lambda record: shard_of(record, num_shards))
         | "GroupByShard" >> beam.GroupByKey()
         | "WriteShards" >> beam.Map(write_shard, prefix, num_shards))


def runner_args(pipeline_args):
    """(Beam arguments with `--runner dask` spelled as Beam's DaskRunner class path, whether the runner is Dask)."""
    args, dask = list(pipeline_args), False
    for i, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name != "--runner":
            continue
        if not equals and i + 1 < len(args):
            value = args[i + 1]
        if value.lower() in ("dask", "daskrunner", DASK_RUNNER.lower()):
            dask = True
            if equals:
                args[i] = f"--runner={DASK_RUNNER}"
            else:
                args[i + 1] = DASK_RUNNER
    return args, dask

