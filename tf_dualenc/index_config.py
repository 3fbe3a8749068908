"""The searchers a document index can hold and how ScaNN is sized for a corpus.

Both the on-disk index (`indexing/`) and the retrieval export (`export/`, a layer below it) build ScaNN searchers, so
the settings live here, below both: an export sized differently from the index it mirrors would search differently.
"""

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
