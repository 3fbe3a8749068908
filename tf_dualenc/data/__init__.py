"""Retrieval data: BEIR-layout readers, training-pair files (JSONL / TSV / TFRecord, streamed), and the demo's
built-in sample (`sample_pairs.jsonl`)."""

from tf_dualenc.data.beir import (BeirDataset, DataError, document_text, load_beir, read_corpus, read_qrels, read_queries,
                                  read_query_texts)
from tf_dualenc.data.pair_records import PAIR_FORMATS, PairRecord, iter_pair_records, resolve_pair_files, write_pair_tfrecords
from tf_dualenc.data.pairs import PairStream, TrainingPairs, load_training_pairs, open_pair_stream, read_pair_file

__all__ = [
    "BeirDataset", "DataError", "PAIR_FORMATS", "document_text", "PairRecord", "PairStream", "TrainingPairs", "iter_pair_records",
    "load_beir", "load_training_pairs", "open_pair_stream", "read_corpus", "read_pair_file", "read_qrels", "read_queries",
    "read_query_texts", "resolve_pair_files", "write_pair_tfrecords",
]
