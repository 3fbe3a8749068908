"""Corpus indexing: the Beam encoding job, the Beam ModelHandler over exports, and the on-disk retrieval index."""

from tf_dualenc.indexing.retrieval_index import INDEX_METHODS, RetrievalIndex, RetrievalIndexError, build_index, scann_build_config

__all__ = ["INDEX_METHODS", "RetrievalIndex", "RetrievalIndexError", "build_index", "scann_build_config"]
