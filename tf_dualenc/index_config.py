"""The searchers a document index can hold, how ScaNN is sized for a corpus, and the options of an index build.

Both the on-disk index (`indexing/`) and the retrieval export (`export/`, a layer below it) build ScaNN searchers, so
the settings live here, below both: an export sized differently from the index it mirrors would search differently.
The index build's options (`add_build_arguments`) are here too, for the Beam job (`indexing/build_index_pipeline.py`)
and `tf-dualenc build-index`, whose parser lists them with the command line's own: no heavy import at module level.
"""

import argparse

from tf_dualenc.precision import PRECISIONS

# The searchers a built index or a retrieval export holds.
INDEX_TYPES = ("brute_force", "scann")
# What an index build may ask for: a searcher, or "auto" (picked by corpus size). Listed in this order by error
# messages and --help since before the two lists shared a home.
INDEX_METHODS = ("auto", *reversed(INDEX_TYPES))
# ScaNN's asymmetric hashing trains 16 centres per block.
MIN_SCANN_DOCUMENTS = 16


def scann_build_config(num_documents, k=10):
    """Tree + asymmetric hashing + exact re-scoring, sized to the corpus: ~√N leaves, a tenth of them searched
    (at least 8), the best `reordering_num_neighbors` re-scored exactly."""
    leaves = max(1, min(num_documents, int(round(num_documents**0.5))))
    return {
        "num_leaves": leaves,
        "num_leaves_to_search": max(min(leaves, 8), int(round(leaves / 10))),
        "training_sample_size": min(num_documents, 250_000),
        "dimensions_per_block": 2,
        "anisotropic_quantization_threshold": 0.2,
        "reordering_num_neighbors": max(100, 10 * k),
    }


# How a corpus file is read: by its name (.jsonl, *tfrecord*), or as told.
CORPUS_FORMATS = ("auto", "jsonl", "tfrecord")

BUILD_DESCRIPTION = "Beam job: embed a corpus with an encoder export and build a ScaNN (or exact) index folder."
BUILD_EPILOG = """Every option not listed above is a standard Beam pipeline option, passed to the Beam job as given:
  --runner DirectRunner   in-process, one worker: the fastest on one machine (docs/serving.md)
  --runner dask           Beam's DaskRunner (a local 2-process cluster unless --dask-address)
  --runner DataflowRunner --project ... --region ... --temp_location gs://...   (Flink and Spark runners take theirs)"""


def add_build_arguments(parser):
    """The index build's options (`tf-dualenc build-index`, `python -m tf_dualenc.indexing.build_index_pipeline`)."""
    parser.add_argument("--corpus", required=True, action="append",
                        help="corpus file or glob (BEIR corpus.jsonl, JSONL, TFRecord shards); repeatable")
    parser.add_argument("--corpus-format", default="auto", choices=CORPUS_FORMATS,
                        help="how to read --corpus; auto: by file name (default: %(default)s)")
    parser.add_argument("--model", required=True, help="an encoder export: a version folder, or a model folder (latest version)")
    # --output-dir, as every command names a folder it writes; --output is its old spelling, hidden.
    output = parser.add_mutually_exclusive_group(required=True)
    output.add_argument("--output-dir", metavar="DIR", help="the index folder to create")
    output.add_argument("--output", dest="output_dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.add_argument("--embeddings", default=None, help="shard prefix for the embeddings (default: <output-dir>-embeddings/part)")
    parser.add_argument("--num-shards", type=int, default=0, help="embedding shards (0: let the runner decide; default: %(default)s)")
    parser.add_argument("--min-batch-size", type=int, default=8, help="fewest documents RunInference batches (default: %(default)s)")
    parser.add_argument("--max-batch-size", type=int, default=64, help="most documents RunInference batches (default: %(default)s)")
    parser.add_argument("--method", default="auto", choices=INDEX_METHODS,
                        help="the index: brute_force (exact), scann, or auto: exact below --brute-force-below documents (default: %(default)s)")
    parser.add_argument("--brute-force-below", type=int, default=20_000,
                        help="'auto' uses exact search below this many documents (default: %(default)s)")
    parser.add_argument("--queries", default=None, help="queries (JSONL with 'text', or one per line) for the build-time recall@10 check")
    parser.add_argument("--title-separator", default=" ",
                        help="between a document's title and text, as evaluate joins them (default: '%(default)s')")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index folder")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="the precision the encoder export computes in, checked against its manifest: an export computes in "
                             "what it was exported with (`tf-dualenc export --precision`); recorded in the index's manifest "
                             "(default: the export's)")
    parser.add_argument("--dask-address", default=None, metavar="HOST:PORT",
                        help="with --runner dask: a dask.distributed scheduler (default: a local cluster of 2 worker processes)")
    return parser
