"""Deterministic batches of training pairs, tokenised in the graph.

The batch order is a pure function of (seed, epoch), computed on indices in Python, so a resumed run can
skip straight to its data position without touching the text: `batches(..., start_step=k)` yields exactly
what an uninterrupted run yields from step k on.
"""

import numpy as np
import tensorflow as tf


def epoch_batches(num_pairs, batch_size, seed, epoch, query_ids=None, document_ids=None):
    """Full batches of pair indices for one epoch (the remainder is dropped: in-batch negatives need B pairs).

    With ids, a batch never holds two pairs that share a query id or a document id: a pair that would
    repeat one waits for a later batch (kept in shuffled order), and pairs left over at the epoch's end
    are dropped for this epoch.
    """
    order = np.random.default_rng([seed, epoch]).permutation(num_pairs)
    if query_ids is None and document_ids is None:
        full = num_pairs // batch_size
        return [order[i * batch_size : (i + 1) * batch_size] for i in range(full)]
    batches, current, seen_q, seen_d = [], [], set(), set()
    pending = list(order)
    while pending:
        deferred = []
        for index in pending:
            q = query_ids[index] if query_ids is not None else None
            d = document_ids[index] if document_ids is not None else None
            if (q is not None and q in seen_q) or (d is not None and d in seen_d):
                deferred.append(index)
                continue
            current.append(index)
            seen_q.add(q)
            seen_d.add(d)
            if len(current) == batch_size:
                batches.append(np.array(current))
                current, seen_q, seen_d = [], set(), set()
        if len(deferred) == len(pending):
            break  # nothing more fits: every remaining pair repeats an id of the partial batch
        pending = deferred
    return batches


def batches(num_pairs, batch_size, seed, start_step=0, query_ids=None, document_ids=None):
    """Infinite stream of index batches, epoch after epoch, starting at global step `start_step`."""
    epoch, step = 0, 0
    while True:
        epoch_list = epoch_batches(num_pairs, batch_size, seed, epoch, query_ids, document_ids)
        if not epoch_list:
            raise ValueError(
                f"Not one full batch of {batch_size} pairs can be formed from {num_pairs} pairs"
                + (" without repeating a query or document id" if query_ids is not None else "")
                + "; lower batch_size."
            )
        if step + len(epoch_list) <= start_step:
            step += len(epoch_list)
        else:
            for batch in epoch_list[max(start_step - step, 0) :]:
                yield batch
            step = max(step + len(epoch_list), start_step)
        epoch += 1


def make_dataset(pairs, model, batch_size, seed, start_step=0, no_duplicates=True):
    """tf.data of ({"query": token dict, "document": token dict}, query id hashes, document id hashes), global batches."""
    ids_for_batching = (pairs.query_ids, pairs.document_ids) if no_duplicates else (None, None)
    queries = tf.constant(pairs.queries)
    documents = tf.constant(pairs.documents)
    query_ids = tf.constant(pairs.query_ids)
    document_ids = tf.constant(pairs.document_ids)

    dataset = tf.data.Dataset.from_generator(
        lambda: batches(len(pairs), batch_size, seed, start_step, *ids_for_batching),
        output_signature=tf.TensorSpec([batch_size], tf.int64),
    )

    def gather(index):
        features = {
            "query": model.query_preprocessor(tf.gather(queries, index)),
            "document": model.document_preprocessor(tf.gather(documents, index)),
        }
        # Ids as int64 hashes below 2**52: collectives (all_gather across replicas) carry no strings, and the
        # trainer gathers them as float64, exact up to 2**53. Collision odds in a batch of 512: ~3e-11.
        return (
            features,
            tf.strings.to_hash_bucket_fast(tf.gather(query_ids, index), 2**52),
            tf.strings.to_hash_bucket_fast(tf.gather(document_ids, index), 2**52),
        )

    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)
