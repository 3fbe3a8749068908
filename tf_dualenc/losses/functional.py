"""The dual-encoder contrastive losses as plain TensorFlow functions.

Notation: a batch of B pairs (q_i, p_i); s(a, b) = cos(a, b) / τ. All math runs in float32 whatever the
input dtype (mixed precision safe), and every softmax goes through log-sum-exp, since with τ = 0.01 the
logits reach ±100.
"""

import numpy as np
import tensorflow as tf

from tf_dualenc.losses.checks import SAME_TOWER_OPTIONS, check_alpha, check_flag, check_same_tower, check_temperature

__all__ = ["SAME_TOWER_OPTIONS", "contrastive_loss", "duplicate_mask", "pair_loss"]


def _check_embeddings(name, x, expected_rank=2):
    x = tf.convert_to_tensor(x)
    if not (x.dtype.is_floating):
        raise ValueError(f"`{name}` must be a floating-point tensor; got dtype {x.dtype.name}.")
    if x.shape.rank is not None and x.shape.rank != expected_rank:
        raise ValueError(
            f"`{name}` must have rank {expected_rank} "
            f"({'[batch, dim]' if expected_rank == 2 else '[batch, num_negatives, dim]'}); "
            f"got shape {x.shape}."
        )
    if tf.executing_eagerly():
        bad = int(np.size(x) - np.isfinite(x.numpy()).sum())
        if bad:
            raise ValueError(f"`{name}` contains {bad} non-finite values (NaN or Inf).")
    else:
        x = tf.debugging.assert_all_finite(x, f"`{name}` contains non-finite values (NaN or Inf).")
    return tf.cast(x, tf.float32)


def _temperature_tensor(temperature):
    temperature = check_temperature(temperature)
    if isinstance(temperature, (tf.Tensor, tf.Variable)):
        return tf.cast(temperature, tf.float32)
    return tf.constant(float(temperature), tf.float32)


def _check_pair(query_embeddings, document_embeddings):
    q = _check_embeddings("query_embeddings", query_embeddings)
    p = _check_embeddings("document_embeddings", document_embeddings)
    if q.shape[-1] is not None and p.shape[-1] is not None and q.shape[-1] != p.shape[-1]:
        raise ValueError(
            "`query_embeddings` and `document_embeddings` must have the same embedding size; "
            f"got {q.shape} and {p.shape}."
        )
    if q.shape[0] is not None and p.shape[0] is not None:
        if q.shape[0] != p.shape[0]:
            raise ValueError(
                "`query_embeddings` and `document_embeddings` must have the same batch size; "
                f"got {q.shape[0]} and {p.shape[0]}."
            )
        if q.shape[0] < 2:
            raise ValueError(
                f"In-batch losses need a batch of at least 2 pairs; `query_embeddings` has batch size {q.shape[0]}."
            )
    else:
        batch = tf.shape(q)[0]
        checks = [
            tf.debugging.assert_equal(
                batch, tf.shape(p)[0], "`query_embeddings` and `document_embeddings` batch sizes differ."
            ),
            tf.debugging.assert_greater_equal(batch, 2, "In-batch losses need a batch of at least 2 pairs."),
        ]
        with tf.control_dependencies(checks):
            q = tf.identity(q)
    return tf.math.l2_normalize(q, axis=-1), tf.math.l2_normalize(p, axis=-1)


def _check_ids(name, ids, batch_size_tensor, static_batch):
    ids = tf.convert_to_tensor(ids)
    if ids.shape.rank is not None and ids.shape.rank != 1:
        raise ValueError(f"`{name}` must have shape [batch]; got shape {ids.shape}.")
    if not (ids.dtype.is_integer or ids.dtype == tf.string):
        raise ValueError(f"`{name}` must be an integer or string tensor; got dtype {ids.dtype.name}.")
    if ids.shape[0] is not None and static_batch is not None:
        if ids.shape[0] != static_batch:
            raise ValueError(
                f"`{name}` must have one id per pair (batch size {static_batch}); got {ids.shape[0]} ids."
            )
    else:
        with tf.control_dependencies(
            [tf.debugging.assert_equal(tf.shape(ids)[0], batch_size_tensor, f"`{name}` length != batch size.")]
        ):
            ids = tf.identity(ids)
    return ids


def duplicate_mask(batch_size, query_ids=None, document_ids=None):
    """[B, B] bool: True where pair j≠i shares the query id or the document id of pair i."""
    mask = tf.zeros([batch_size, batch_size], tf.bool)
    for ids in (query_ids, document_ids):
        if ids is not None:
            mask = tf.logical_or(mask, tf.equal(ids[:, None], ids[None, :]))
    return tf.logical_and(mask, tf.logical_not(tf.eye(batch_size, dtype=tf.bool)))


def _masked(logits, mask):
    return tf.where(mask, tf.constant(-np.inf, logits.dtype), logits)


def _softmax_nll(positive_logits, negative_blocks):
    """mean_i [ logsumexp(all logits of row i) - positive_i ].

    Each block is [B, n] and already holds the positive wherever it belongs in the denominator.
    """
    all_logits = tf.concat(negative_blocks, axis=1)
    return tf.reduce_mean(tf.reduce_logsumexp(all_logits, axis=1) - positive_logits)


def contrastive_loss(
    query_embeddings,
    document_embeddings,
    *,
    temperature=0.01,
    bidirectional=True,
    same_tower="query",
    hard_negative_embeddings=None,
    query_ids=None,
    document_ids=None,
):
    """In-batch sampled softmax with optional same-tower negatives (SamToNe).

    With s(a, b) = cos(a, b) / τ over a batch of B pairs (q_i, p_i):

        ℓ_i^q = −log( e^{s(q_i,p_i)} / ( Σ_j e^{s(q_i,p_j)} + Σ_{j,n} e^{s(q_i,h_{j,n})}
                                         + [same_tower ∈ {query, both}] Σ_{j≠i} e^{s(q_i,q_j)} ) )
        ℓ_i^p = −log( e^{s(p_i,q_i)} / ( Σ_j e^{s(p_i,q_j)} + [same_tower ∈ {document, both}] Σ_{j≠i} e^{s(p_i,p_j)} ) )
        loss  = mean_i ℓ_i^q + [bidirectional] mean_i ℓ_i^p

    `same_tower="none"` is the standard bidirectional in-batch softmax; `same_tower="query"` with
    `bidirectional=True` is the paper's SamToNe setting.

    When `query_ids` and/or `document_ids` are given, a pair j≠i that shares pair i's query id or document id
    is a duplicate: its terms are removed from every denominator of example i (cross-tower and same-tower,
    both directions). Hard negatives carry no ids and are never masked.

    Args:
        query_embeddings: [B, D] float tensor. L2-normalised here (cosine similarity).
        document_embeddings: [B, D] float tensor, the positive document of each query.
        temperature: τ > 0.
        bidirectional: add the document→query term.
        same_tower: one of "none", "query", "document", "both".
        hard_negative_embeddings: optional [B, N, D]; every example's hard negatives are extra negatives
            for every query in the query→document denominator.
        query_ids: optional [B] integer or string ids.
        document_ids: optional [B] integer or string ids.

    Returns:
        A float32 scalar.

    Example:
    ```python
    loss = tf_dualenc.losses.contrastive_loss(q, p, same_tower="query")
    ```

    Reference: Moiseev et al., "Improving Contrastive Loss for Dual Encoder Retrieval Models with Same Tower
    Negatives", Findings of ACL 2023.
    """
    check_same_tower(same_tower)
    check_flag("bidirectional", bidirectional)
    tau = _temperature_tensor(temperature)
    q, p = _check_pair(query_embeddings, document_embeddings)
    static_batch = q.shape[0]
    batch = tf.shape(q)[0]

    if query_ids is not None:
        query_ids = _check_ids("query_ids", query_ids, batch, static_batch)
    if document_ids is not None:
        document_ids = _check_ids("document_ids", document_ids, batch, static_batch)
    dup = duplicate_mask(batch, query_ids, document_ids)
    self_or_dup = tf.logical_or(dup, tf.eye(batch, dtype=tf.bool))

    s_qp = tf.matmul(q, p, transpose_b=True) / tau
    positives = tf.linalg.diag_part(s_qp)

    blocks = [_masked(s_qp, dup)]
    if same_tower in ("query", "both"):
        blocks.append(_masked(tf.matmul(q, q, transpose_b=True) / tau, self_or_dup))
    if hard_negative_embeddings is not None:
        h = _check_embeddings("hard_negative_embeddings", hard_negative_embeddings, expected_rank=3)
        if h.shape[-1] is not None and q.shape[-1] is not None and h.shape[-1] != q.shape[-1]:
            raise ValueError(
                "`hard_negative_embeddings` must have the same embedding size as `query_embeddings`; "
                f"got {h.shape} and {q.shape}."
            )
        if h.shape[0] is not None and static_batch is not None and h.shape[0] != static_batch:
            raise ValueError(
                f"`hard_negative_embeddings` must have batch size {static_batch}; got shape {h.shape}."
            )
        h = tf.math.l2_normalize(tf.reshape(h, [-1, tf.shape(h)[-1]]), axis=-1)
        blocks.append(tf.matmul(q, h, transpose_b=True) / tau)
    loss = _softmax_nll(positives, blocks)

    if bidirectional:
        s_pq = tf.transpose(s_qp)
        blocks = [_masked(s_pq, dup)]
        if same_tower in ("document", "both"):
            blocks.append(_masked(tf.matmul(p, p, transpose_b=True) / tau, self_or_dup))
        loss = loss + _softmax_nll(positives, blocks)
    return loss


def pair_loss(query_embeddings, document_embeddings, *, temperature=0.01, alpha=0.1):
    """PAIR: query-centric softmax plus a weighted passage-centric term (Ren et al., 2021).

        loss = (1−α) · mean_i ℓ_i^std + α · mean_i ℓ_i^pair
        ℓ_i^std  = −log( e^{s(q_i,p_i)} / Σ_j e^{s(q_i,p_j)} )
        ℓ_i^pair = −log( e^{s(q_i,p_i)} / ( e^{s(q_i,p_i)} + Σ_{j≠i} e^{s(p_i,p_j)} ) )

    Args:
        query_embeddings: [B, D] float tensor (L2-normalised here).
        document_embeddings: [B, D] float tensor.
        temperature: τ > 0.
        alpha: weight of the passage-centric term, in [0, 1]; the paper's comparison uses 0.1.

    Returns:
        A float32 scalar.

    Reference: Ren et al., "PAIR: Leveraging Passage-Centric Similarity Relation for Improving Dense
    Passage Retrieval", Findings of ACL 2021.
    """
    check_alpha(alpha)
    tau = _temperature_tensor(temperature)
    q, p = _check_pair(query_embeddings, document_embeddings)
    batch = tf.shape(q)[0]
    s_qp = tf.matmul(q, p, transpose_b=True) / tau
    positives = tf.linalg.diag_part(s_qp)
    standard = _softmax_nll(positives, [s_qp])
    s_pp = _masked(tf.matmul(p, p, transpose_b=True) / tau, tf.eye(batch, dtype=tf.bool))
    passage_centric = _softmax_nll(positives, [positives[:, None], s_pp])
    return (1.0 - alpha) * standard + alpha * passage_centric
