"""Listwise training on candidate lists: the cross-encoder alone, and RocketQAv2's joint training of a dual encoder
(retriever) and a cross-encoder (re-ranker) by dynamic listwise distillation."""

import time

import numpy as np

from tf_dualenc.losses.listwise import reranker_loss
from tf_dualenc.training.learning_rate import warmup_linear_decay

__all__ = ["list_ranking_metrics", "reranker_loss", "train_cross_encoder", "train_jointly", "validate_cross_encoder"]


def _check_lists(lists, role="training"):
    if not lists:
        raise ValueError(f"no {role} candidate lists.")
    sizes = {len(item.documents) for item in lists}
    if len(sizes) != 1:
        raise ValueError(f"{role} candidate lists must all have the same size; got sizes {sorted(sizes)}.")


def _batches(lists, batch_size, steps, seed):
    _check_lists(lists)
    if batch_size > len(lists):
        raise ValueError(f"batch_size={batch_size} is larger than the {len(lists)} candidate lists.")
    rng = np.random.default_rng(seed)
    order, position = rng.permutation(len(lists)), 0
    for _ in range(steps):
        if position + batch_size > len(order):
            order, position = rng.permutation(len(lists)), 0
        chosen = [lists[i] for i in order[position : position + batch_size]]
        position += batch_size
        yield [item.query for item in chosen], [item.documents for item in chosen]


def _optimizer(learning_rate, steps, warmup_steps=0):
    import keras

    return keras.optimizers.Adam(warmup_linear_decay(learning_rate, steps, warmup_steps))


def list_ranking_metrics(scores):
    """Mean over lists of (positive ranked first, reciprocal rank of the positive); scores [B, C], positive = column 0.
    Ties count against the positive, so a model that scores everything alike gets no credit."""
    scores = np.asarray(scores, np.float64)
    rank = 1 + np.sum(scores[:, 1:] >= scores[:, :1], axis=1)
    return {"list_accuracy": float(np.mean(rank == 1)), "list_mrr": float(np.mean(1.0 / rank))}


def validate_cross_encoder(cross_encoder, lists, batch_size=32):
    """`list_ranking_metrics` of `cross_encoder` on held-out candidate lists (validation during and after training)."""
    import tensorflow as tf

    _check_lists(lists, "validation")
    scores = []
    for start in range(0, len(lists), batch_size):
        chosen = lists[start : start + batch_size]
        scores.append(cross_encoder({"query": tf.constant([item.query for item in chosen]),
                                     "documents": tf.constant([item.documents for item in chosen])}, training=False).numpy())
    return list_ranking_metrics(np.concatenate(scores))


def train_cross_encoder(cross_encoder, lists, *, steps, batch_size=8, learning_rate=2e-5, warmup_steps=0, temperature=1.0,
                        pointwise_weight=0.5, seed=0, validation_lists=None, validate_every=None, keep_best=True, log_every=10,
                        print_fn=print):
    """Trains `cross_encoder` on candidate lists with `reranker_loss`.

    Args:
        lists: `CandidateList`s of one size (positive first), e.g. from `build_candidate_lists` or `read_candidate_lists`.
        steps, batch_size: optimizer steps and lists per step (the lists are reshuffled each epoch).
        learning_rate, warmup_steps: Adam, linear warm-up then linear decay to 0.
        validation_lists: held-out lists scored every `validate_every` steps (default: at the end only) with
            `list_ranking_metrics`, so a run that does not learn shows it.
        keep_best: with validation, end with the weights of the step whose validation list MRR was highest (ties: the
            earlier step), not the last step's.

    Returns:
        {"loss": [per step], "validation": [{"step", "list_accuracy", "list_mrr"}, ...], "best_step": the step whose
        weights the model ends with}.
    """
    import tensorflow as tf

    optimizer = _optimizer(learning_rate, steps, warmup_steps)
    if validation_lists is not None:
        _check_lists(validation_lists, "validation")

    @tf.function(reduce_retracing=True)
    def step(queries, documents):
        with tf.GradientTape() as tape:
            scores = cross_encoder({"query": queries, "documents": documents}, training=True)
            loss = reranker_loss(scores, temperature, pointwise_weight)
        variables = cross_encoder.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    history, start = {"loss": [], "validation": [], "best_step": steps}, time.perf_counter()
    losses = history["loss"]
    best_mrr, best_weights = None, None
    for i, (queries, documents) in enumerate(_batches(lists, batch_size, steps, seed), 1):
        losses.append(float(step(tf.constant(queries), tf.constant(documents))))
        if i % log_every == 0 or i == steps:
            print_fn(f"cross-encoder step {i}/{steps}: loss {np.mean(losses[-log_every:]):.4f} ({time.perf_counter() - start:.0f} s)")
        if validation_lists and (i == steps or (validate_every and i % validate_every == 0)):
            history["validation"].append(dict(step=i, **validate_cross_encoder(cross_encoder, validation_lists, batch_size)))
            print_fn(f"cross-encoder step {i}/{steps}: validation list accuracy {history['validation'][-1]['list_accuracy']:.4f}, "
                     f"MRR {history['validation'][-1]['list_mrr']:.4f} ({len(validation_lists)} lists)")
            if keep_best and (best_mrr is None or history["validation"][-1]["list_mrr"] > best_mrr):
                best_mrr, history["best_step"] = history["validation"][-1]["list_mrr"], i
                best_weights = [v.numpy() for v in cross_encoder.weights] if i < steps else None
    if keep_best and history["best_step"] < steps and best_weights is not None:
        for variable, value in zip(cross_encoder.weights, best_weights):
            variable.assign(value)
        print_fn(f"cross-encoder: kept the weights of step {history['best_step']} (best validation list MRR {best_mrr:.4f})")
    return history


def train_jointly(dual_encoder, cross_encoder, lists, *, steps, batch_size=8, retriever_learning_rate=2e-5,
                  reranker_learning_rate=2e-5, warmup_steps=0, retriever_temperature=0.05, reranker_temperature=1.0, pointwise_weight=0.5,
                  kl_direction="student_teacher", seed=0, log_every=10, print_fn=print):
    """RocketQAv2's dynamic listwise distillation, both models updated at every step.

    For each query's list (positive + negatives), the retriever's scores s_de = cos(e_q, e_c) and the re-ranker's s_ce
    give two distributions over the list; the loss is

        L = KL( softmax(s_de / τ_de) ‖ softmax(s_ce / τ_ce) ) + reranker_loss(s_ce)

    (`tf_dualenc.losses.listwise_kl_divergence`; `tf_dualenc.losses.reranker_loss` is the listwise softmax loss plus the calibrating
    pointwise term, `pointwise_weight` = 0 for the paper's listwise loss alone): the retriever is pulled toward the
    re-ranker's distribution, the re-ranker learns from the labels and, through the KL term, from the retriever.

    Returns:
        {"loss": [...], "kl": [...], "reranker_loss": [...]} per step.
    """
    import tensorflow as tf

    from tf_dualenc.losses import listwise_kl_divergence

    retriever_optimizer = _optimizer(retriever_learning_rate, steps, warmup_steps)
    reranker_optimizer = _optimizer(reranker_learning_rate, steps, warmup_steps)

    @tf.function(reduce_retracing=True)
    def step(queries, documents):
        batch, count = tf.shape(documents)[0], tf.shape(documents)[1]
        with tf.GradientTape(persistent=True) as tape:
            query_embeddings = dual_encoder.embed_queries(queries, training=True)
            document_embeddings = tf.reshape(dual_encoder.embed_documents(tf.reshape(documents, [-1]), training=True),
                                             [batch, count, -1])
            retriever_scores = tf.einsum("bd,bcd->bc", query_embeddings, document_embeddings)
            reranker_scores = cross_encoder({"query": queries, "documents": documents}, training=True)
            kl = listwise_kl_divergence(retriever_scores, reranker_scores, retriever_temperature, reranker_temperature, kl_direction)
            supervised = reranker_loss(reranker_scores, reranker_temperature, pointwise_weight)
            loss = kl + supervised
        for model, optimizer in ((dual_encoder, retriever_optimizer), (cross_encoder, reranker_optimizer)):
            variables = model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        del tape
        return loss, kl, supervised

    history, start = {"loss": [], "kl": [], "reranker_loss": []}, time.perf_counter()
    for i, (queries, documents) in enumerate(_batches(lists, batch_size, steps, seed), 1):
        values = step(tf.constant(queries), tf.constant(documents))
        for key, value in zip(("loss", "kl", "reranker_loss"), values):
            history[key].append(float(value))
        if i % log_every == 0 or i == steps:
            print_fn(f"joint step {i}/{steps}: KL {np.mean(history['kl'][-log_every:]):.4f}, "
                     f"re-ranker {np.mean(history['reranker_loss'][-log_every:]):.4f} ({time.perf_counter() - start:.0f} s)")
    return history
