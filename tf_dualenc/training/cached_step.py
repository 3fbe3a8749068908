"""Gradient caching (GradCache): the exact gradient of a full-batch contrastive loss with a mini-batch's memory.

An in-batch loss couples every pair of the batch, so back-propagating it at once keeps the activations of all B
pairs alive. But the loss depends on the parameters θ only through the embeddings e_1 … e_n (queries,
documents, hard negatives), so by the chain rule

    ∇_θ L(e_1(θ), …, e_n(θ)) = Σ_i (∂L/∂e_i)ᵀ · ∂e_i/∂θ = ∇_θ Σ_i ⟨g_i, e_i(θ)⟩   with g_i = ∂L/∂e_i held constant.

The step therefore (1) embeds the batch in mini-batches of m pairs without a tape, (2) takes the loss and
g = ∂L/∂e on the embeddings alone (cheap: no encoder), (3) re-encodes each mini-batch with a tape and
back-propagates the surrogate Σ_i ⟨g_i, e_i⟩ of its pairs, summing the parameter gradients, and (4) applies the sum
once. Peak activation memory is that of m pairs, whatever B; besides, the gradient sums take one float32 copy of the
trainable variables. The price is a second forward pass.

Dropout: the dropout layers' random-seed states are reset to their value before pass (1) ahead of pass (3), and
both passes run the same mini-batches through the same calls in the same order, so every mini-batch draws the
same dropout masks twice and the gradient is exact for the masks of pass (1). (A plain step draws other masks,
for the whole batch at once, so with dropout on only the distribution of the two steps' updates is the same.)

Reference: Gao, Zhang, Han and Callan, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup",
RepL4NLP 2021 (the idea behind sentence-transformers' CachedMultipleNegativesRankingLoss).
"""

import tensorflow as tf

from tf_dualenc.training.trainer import batch_loss, gather_global_batch, in_batch_accuracy


def dropout_seed_states(model):
    """The state variables of every random-seed generator in `model` (Keras' dropout layers draw from these)."""
    states, seen = [], set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", ()):
            if id(generator.state) not in seen:
                seen.add(id(generator.state))
                states.append(generator.state)
    return states


def make_cached_replica_step(model, optimizer, loss, mini_batch_size, replicas, distillation=None):
    """One replica's cached training step: `(features, query_ids, document_ids)` of its slice → (loss, accuracy).

    The same contract as the plain step in `trainer.make_train_step`: negatives come from the global batch (the
    embeddings of pass 1 are all-gathered across replicas) and each replica back-propagates loss / R, so the summed
    update is ∇loss of the global batch.

    Args:
        model: a `DualEncoder`.
        optimizer: a Keras optimizer; receives the summed gradient once per step.
        loss: a `tf_dualenc.losses.DualEncoderLoss` (`trainer.make_loss`); its `embedding_loss` gives the scalar.
        mini_batch_size: pairs per forward/backward pass; must divide the replica's slice.
        replicas: replicas in sync.
        distillation: the distillation term (`trainer.make_distillation`) or None; like the loss, it depends on
            the parameters only through the embeddings, so the cached gradient stays exact.
    """
    variables = model.trainable_variables
    seed_states = dropout_seed_states(model)
    m = int(mini_batch_size)

    def embed(features):
        q = model.embed_queries(features["query"], training=True)
        d = model.embed_documents(features["document"], training=True)
        h = model.embed_negatives(features["negatives"], training=True) if "negatives" in features else None
        return (q, d) if h is None else (q, d, h)

    def mini_batch(structure, i):
        # A constant slice size (begin may move): XLA compiles only that, and the TensorArrays' elements need one shape.
        return tf.nest.map_structure(
            lambda t: tf.slice(t, tf.concat([[i * m], tf.zeros([t.shape.rank - 1], tf.int32)], 0),
                               [m] + [-1] * (t.shape.rank - 1)),
            structure)

    def replica_step(features, query_ids, document_ids):
        local = query_ids.shape[0]
        if local is None or local % m:
            raise ValueError(f"mini_batch_size={m} must divide each replica's share of the batch ({local} pairs).")
        chunks = local // m
        seeds_before = [tf.identity(state.value) for state in seed_states]

        # Pass 1: embeddings only. A while_loop runs the mini-batches one after another, so their activations are
        # never alive together.
        def embed_body(i, arrays):
            return i + 1, tuple(a.write(i, e) for a, e in zip(arrays, embed(mini_batch(features, i))))

        shapes = [[m, model.embedding_dim]] * 2
        if "negatives" in features:
            shapes.append([m, next(iter(features["negatives"].values())).shape[1], model.embedding_dim])
        arrays = tuple(tf.TensorArray(tf.float32, size=chunks, element_shape=shape) for shape in shapes)
        _, arrays = tf.while_loop(lambda i, _: i < chunks, embed_body, (tf.constant(0), arrays), parallel_iterations=1)
        cached = [tf.stop_gradient(_unchunk(a.stack())) for a in arrays]

        # The loss and its gradient with respect to this replica's embeddings (through the all-gather).
        with tf.GradientTape() as tape:
            tape.watch(cached)
            q, d, h, all_query_ids, all_document_ids = gather_global_batch(
                cached[0], cached[1], cached[2] if len(cached) > 2 else None, query_ids, document_ids)
            loss_value = batch_loss(loss, distillation, q, d, h, all_query_ids, all_document_ids, features.get("teacher_scores"))
            scaled = loss_value / replicas
        embedding_gradients = tape.gradient(scaled, cached)

        # Pass 2: the same mini-batches with the same dropout seeds, back-propagating the cached gradients.
        for state, value in zip(seed_states, seeds_before):
            state.assign(value)
        missing = set()

        def backward_body(i, sums):
            with tf.GradientTape() as chunk_tape:
                embedded = embed(mini_batch(features, i))
                surrogate = tf.add_n([tf.reduce_sum(e * g) for e, g in zip(embedded, mini_batch(embedding_gradients, i))])
            gradients = chunk_tape.gradient(surrogate, variables)
            missing.update(j for j, g in enumerate(gradients) if g is None)
            return i + 1, tuple(s if g is None else s + tf.convert_to_tensor(g) for s, g in zip(sums, gradients))

        zeros = tuple(tf.zeros(v.shape, v.dtype) for v in variables)
        _, sums = tf.while_loop(lambda i, _: i < chunks, backward_body, (tf.constant(0), zeros), parallel_iterations=1)
        # A variable the loss never reaches gets None, as in the plain step (Keras skips it rather than apply zero).
        optimizer.apply_gradients(zip([None if j in missing else s for j, s in enumerate(sums)], variables))
        return loss_value, in_batch_accuracy(q, d)

    return replica_step


def _unchunk(stacked):
    # [chunks, m, ...] → [chunks · m, ...]
    return tf.reshape(stacked, tf.concat([[-1], tf.shape(stacked)[2:]], 0))
