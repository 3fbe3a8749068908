"""Deterministic batches of training pairs, tokenised in the graph.

Two sources, one dataset layout:

- in memory (`TrainingPairs`, e.g. a BEIR split): the batch order is a pure function of (seed, epoch),
  computed on indices, so a resumed run skips straight to its data position: `batches(..., start_step=k)`
  yields exactly what an uninterrupted run yields from step k on;
- streamed pair files (JSONL / TSV / TFRecord shards, `stream_batches`): files are read record by record
  through a seeded shuffle buffer, so memory holds `shuffle_buffer` records, never the data set. The order is
  again a pure function of (seed, epoch); resuming re-reads (without tokenising) the batches before step k.
"""

import collections

import numpy as np
import tensorflow as tf

from tf_dualenc.data.pair_records import iter_pair_records


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


def _shuffled(records, buffer_size, rng):
    buffer = []
    for record in records:
        if len(buffer) < buffer_size:
            buffer.append(record)
            continue
        j = int(rng.integers(buffer_size))
        yield buffer[j]
        buffer[j] = record
    for j in rng.permutation(len(buffer)):
        yield buffer[j]


def _full_batches(records, batch_size, no_duplicates, max_deferred):
    # Streaming twin of `epoch_batches`: a record that would repeat an id of the batch being filled waits for
    # a later batch (at most `max_deferred` wait; the oldest is dropped for this epoch beyond that).
    current, seen_q, seen_d = [], set(), set()
    deferred = collections.deque()

    def take(record):
        if no_duplicates and (record.query_id in seen_q or record.document_id in seen_d):
            return False
        current.append(record)
        seen_q.add(record.query_id)
        seen_d.add(record.document_id)
        return True

    for record in records:
        if not take(record):
            deferred.append(record)
            if len(deferred) > max_deferred:
                deferred.popleft()
        while len(current) == batch_size:
            yield list(current)
            current.clear()
            seen_q.clear()
            seen_d.clear()
            for _ in range(len(deferred)):
                waiting = deferred.popleft()
                if not take(waiting):
                    deferred.append(waiting)
                if len(current) == batch_size:
                    break


def stream_batches(files, batch_size, seed, *, data_format="auto", start_step=0, no_duplicates=True,
                   shuffle_buffer=10_000, num_negatives=0, lenient=False, skipped=None, teacher_scores=False):
    """Infinite stream of full batches (lists of `PairRecord`) read from pair files, epoch after epoch.

    Each epoch visits the files in a seeded order through a shuffle buffer of `shuffle_buffer` records;
    the first `start_step` batches are read but not yielded (the data position of a resumed run).
    """
    epoch, step = 0, 0
    while True:
        rng = np.random.default_rng([seed, epoch])
        ordered = [files[i] for i in rng.permutation(len(files))]
        # Skips are counted once, in the first epoch.
        records = iter_pair_records(ordered, data_format, lenient=lenient, skipped=skipped if epoch == 0 else collections.Counter(),
                                    num_negatives=num_negatives, teacher_scores=teacher_scores)
        made = 0
        for batch in _full_batches(_shuffled(records, shuffle_buffer, rng), batch_size, no_duplicates, max(shuffle_buffer, batch_size)):
            made += 1
            if step >= start_step:
                yield batch
            step += 1
        if not made:
            raise ValueError(
                f"Not one full batch of {batch_size} pairs can be formed from {', '.join(files)}"
                + (" without repeating a query or document id" if no_duplicates else "") + "; lower batch_size."
            )
        epoch += 1


def _string_batches_in_memory(pairs, batch_size, seed, start_step, no_duplicates):
    ids_for_batching = (pairs.query_ids, pairs.document_ids) if no_duplicates else (None, None)
    for index in batches(len(pairs), batch_size, seed, start_step, *ids_for_batching):
        yield {
            "query": np.array([pairs.queries[i] for i in index], object),
            "document": np.array([pairs.documents[i] for i in index], object),
            "query_id": np.array([pairs.query_ids[i] for i in index], object),
            "document_id": np.array([pairs.document_ids[i] for i in index], object),
            "negatives": np.zeros((len(index), 0), object),
            "teacher_scores": np.zeros((len(index), 0), np.float32),
        }


def _string_batches_streamed(stream, batch_size, seed, start_step, no_duplicates):
    for batch in stream_batches(stream.files, batch_size, seed, data_format=stream.data_format, start_step=start_step,
                                no_duplicates=no_duplicates, shuffle_buffer=stream.shuffle_buffer,
                                num_negatives=stream.num_negatives, lenient=stream.lenient, skipped=stream.skipped,
                                teacher_scores=stream.teacher_scores):
        yield {
            "query": np.array([r.query for r in batch], object),
            "document": np.array([r.document for r in batch], object),
            "query_id": np.array([r.query_id for r in batch], object),
            "document_id": np.array([r.document_id for r in batch], object),
            "negatives": np.array([list(r.negatives) for r in batch], object).reshape(len(batch), stream.num_negatives),
            "teacher_scores": np.array([r.teacher_scores for r in batch], np.float32).reshape(
                len(batch), 1 + stream.num_negatives if stream.teacher_scores else 0),
        }


def make_dataset(pairs, model, batch_size, seed, start_step=0, no_duplicates=True, failures=None):
    """tf.data of ({"query", "document"[, "negatives"]} token dicts [, "teacher_scores" float32 [B, 1 + N]], query id
    hashes, document id hashes), global batches.

    Args:
        pairs: `TrainingPairs` (in memory) or a `PairStream` (files read as they are needed).
        failures: a list that receives the exception that stopped the source (tf.data re-raises it as an
            opaque `InvalidArgumentError`; the trainer raises the original, which names the file and line).
    """
    streamed = hasattr(pairs, "files")
    num_negatives = pairs.num_negatives if streamed else 0
    teacher_columns = 1 + num_negatives if streamed and pairs.teacher_scores else 0
    failures = [] if failures is None else failures

    def generate():
        source = _string_batches_streamed if streamed else _string_batches_in_memory
        try:
            yield from source(pairs, batch_size, seed, start_step, no_duplicates)
        except Exception as error:
            failures.append(error)
            raise

    strings = tf.TensorSpec([batch_size], tf.string)
    dataset = tf.data.Dataset.from_generator(generate, output_signature={
        "query": strings, "document": strings, "query_id": strings, "document_id": strings,
        "negatives": tf.TensorSpec([batch_size, num_negatives], tf.string),
        "teacher_scores": tf.TensorSpec([batch_size, teacher_columns], tf.float32),
    })

    def tokenize(batch):
        features = {
            "query": model.query_preprocessor(batch["query"]),
            "document": model.document_preprocessor(batch["document"]),
        }
        if num_negatives:
            flat = model.document_preprocessor(tf.reshape(batch["negatives"], [-1]))
            features["negatives"] = {k: tf.reshape(v, [batch_size, num_negatives, -1]) for k, v in flat.items()}
        if teacher_columns:
            features["teacher_scores"] = batch["teacher_scores"]
        # Ids as int64 hashes below 2**52: collectives (all_gather across replicas) carry no strings, and the
        # trainer gathers them as float64, exact up to 2**53. Collision odds in a batch of 512: ~3e-11.
        return (
            features,
            tf.strings.to_hash_bucket_fast(batch["query_id"], 2**52),
            tf.strings.to_hash_bucket_fast(batch["document_id"], 2**52),
        )

    return dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)
