"""Retrieval data: BEIR-layout readers (and the demo's built-in sample, `sample_pairs.jsonl`)."""

from tf_dualenc.data.beir import BeirDataset, DataError, load_beir, read_corpus, read_qrels, read_queries

__all__ = ["BeirDataset", "DataError", "load_beir", "read_corpus", "read_qrels", "read_queries"]
