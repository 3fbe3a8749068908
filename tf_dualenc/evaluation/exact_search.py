"""Exact maximum-inner-product top-k by chunked matrix multiplication."""

import numpy as np


def _checked(query_embeddings, document_embeddings, k):
    q = np.asarray(query_embeddings, np.float32)
    d = np.asarray(document_embeddings, np.float32)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"Need [Nq, D] queries and [Nd, D] documents with the same D; got {q.shape} and {d.shape}.")
    if d.shape[0] == 0:
        raise ValueError("The document embedding matrix is empty.")
    k = min(int(k), d.shape[0])
    if k < 1:
        raise ValueError(f"`k` must be >= 1; got {k}.")
    return q, d, k


_SLACK = 16


def _sorted_top_k(scores, idx, k):
    # lexsort: primary key last → score descending, then index ascending.
    order = np.lexsort((idx, -scores), axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(idx, order, axis=1)


def _chunk_top_k(scores, offset, k):
    """Top-k of one [q, c] score block (global indices offset + column), score descending then index ascending.

    Only a partitioned head of m = k + slack columns per row is sorted; no index matrix is built for the block.
    """
    width = scores.shape[1]
    m = k + _SLACK
    if width <= m:
        return _sorted_top_k(scores, np.broadcast_to(np.arange(offset, offset + width), scores.shape), k)
    head = np.argpartition(scores, width - m, axis=1)[:, width - m :]
    head_scores = np.take_along_axis(scores, head, axis=1)
    top_scores, top_idx = _sorted_top_k(head_scores, head + offset, k)
    # The head holds the m best scores; if its smallest equals the k-th best, equal scores may also lie outside
    # it, and the lower-index rule needs every one of them: redo those (rare) rows in full.
    tied = np.nonzero(head_scores.min(axis=1) >= top_scores[:, -1])[0]
    if tied.size:
        top_scores[tied], top_idx[tied] = _sorted_top_k(scores[tied], np.broadcast_to(np.arange(offset, offset + width), (tied.size, width)), k)
    return top_scores, top_idx


def exact_top_k(query_embeddings, document_embeddings, k, *, document_chunk=65536, query_chunk=256):
    """Top-k documents per query by inner product (cosine for unit vectors), exactly.

    Memory stays at query_chunk × (document_chunk + k) scores whatever the corpus size.

    Args:
        query_embeddings: [Nq, D].
        document_embeddings: [Nd, D].
        k: results per query (capped at Nd).

    Returns:
        (indices [Nq, k] int64, scores [Nq, k] float32), best first; equal scores keep the lower index first.
    """
    q, d, k = _checked(query_embeddings, document_embeddings, k)
    all_idx = np.empty((q.shape[0], k), np.int64)
    all_scores = np.empty((q.shape[0], k), np.float32)
    for qs in range(0, q.shape[0], query_chunk):
        block = q[qs : qs + query_chunk]
        best_idx = np.empty((block.shape[0], 0), np.int64)
        best_scores = np.empty((block.shape[0], 0), np.float32)
        for ds in range(0, d.shape[0], document_chunk):
            chunk_scores, chunk_idx = _chunk_top_k(block @ d[ds : ds + document_chunk].T, ds, k)
            # Merging two sorted k-lists: earlier chunks hold lower indices, so ties still resolve lower-first.
            best_scores, best_idx = _sorted_top_k(
                np.concatenate([best_scores, chunk_scores], axis=1), np.concatenate([best_idx, chunk_idx], axis=1), k
            )
        all_idx[qs : qs + block.shape[0]] = best_idx
        all_scores[qs : qs + block.shape[0]] = best_scores
    return all_idx, all_scores


SEARCH_METHODS = ("exact", "brute_force")


def brute_force_top_k(query_embeddings, document_embeddings, k, *, query_chunk=256):
    """The same exact top-k through `tfrs.layers.factorized_top_k.BruteForce` (the index the serving export uses).

    Holds the whole [Nd, D] candidate matrix and a [query_chunk, Nd] score block: for corpora that fit in
    memory. Same return layout and tie order (lower index first) as `exact_top_k`.
    """
    import tensorflow as tf

    from tf_dualenc.extras import require

    tfrs = require("tensorflow_recommenders", feature="the tfrs brute-force search")

    q, d, k = _checked(query_embeddings, document_embeddings, k)
    index = tfrs.layers.factorized_top_k.BruteForce(k=k)
    index.index(tf.constant(d), identifiers=tf.range(d.shape[0], dtype=tf.int64))
    all_idx = np.empty((q.shape[0], k), np.int64)
    all_scores = np.empty((q.shape[0], k), np.float32)
    for qs in range(0, q.shape[0], query_chunk):
        scores, ids = index(tf.constant(q[qs : qs + query_chunk]), k=k)
        all_idx[qs : qs + query_chunk] = ids.numpy()
        all_scores[qs : qs + query_chunk] = scores.numpy()
    return all_idx, all_scores
