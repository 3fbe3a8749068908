"""Listwise losses over a candidate list per query (positive first): the cross-encoder's softmax loss, the re-ranker's
loss (that softmax plus a calibrating pointwise term) and RocketQAv2's dynamic listwise distillation. Plain TensorFlow
functions; all math in float32 through log-softmax."""

import tensorflow as tf

from tf_dualenc.losses.checks import check_temperature

KL_DIRECTIONS = ("student_teacher", "teacher_student")


def _scores(name, x):
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(f"`{name}` must be floating-point scores; got dtype {x.dtype.name}.")
    if x.shape.rank is not None and x.shape.rank != 2:
        raise ValueError(f"`{name}` must be [batch, candidates] (positive in column 0); got shape {x.shape}.")
    return tf.cast(x, tf.float32)


def listwise_softmax_loss(scores, temperature=1.0, mask=None):
    """Mean over queries of −log softmax(scores / τ)[0]: the positive (column 0) against the query's other candidates.

        loss = mean_q −log( e^{s(q,p⁺)/τ} / Σ_{c ∈ list(q)} e^{s(q,c)/τ} )

    Args:
        scores: [B, 1 + N] scores; column 0 is the positive.
        temperature: τ > 0.
        mask: optional [B, 1 + N] booleans; False drops a candidate from the list (padding, removed negatives).
            Column 0 must be True.
    """
    scores = _scores("scores", scores) / float(check_temperature(temperature))
    if mask is not None:
        scores = tf.where(tf.cast(mask, tf.bool), scores, tf.fill(tf.shape(scores), -1e9))
    return -tf.reduce_mean(tf.nn.log_softmax(scores, axis=-1)[:, 0])


def reranker_loss(scores, temperature=1.0, pointwise_weight=0.5):
    """The re-ranker's loss: the listwise softmax loss plus a pointwise binary cross-entropy that calibrates its scores.

        loss = listwise_softmax_loss(s, τ) + w · mean_{q,c} BCE(sigmoid(s(q,c)), y(q,c)),   y = 1 for column 0, else 0

    A softmax is unchanged by a shift of all scores, so the listwise term alone leaves the scale of the logits free;
    the pointwise term makes sigmoid(score) a probability of relevance, which RocketQA-style denoising thresholds
    (`tf_dualenc.reranking.denoise_candidates`).

    Args:
        scores: [B, 1 + N] cross-encoder scores (logits); column 0 is the positive.
        temperature: τ > 0 of the listwise term.
        pointwise_weight: w ≥ 0; 0 leaves the listwise loss alone (RocketQAv2's).

    Returns:
        A float32 scalar.

    Example:
    ```python
    loss = tf_dualenc.losses.reranker_loss(cross_encoder(batch, training=True), pointwise_weight=0.5)
    ```

    Reference: Ren et al., "RocketQAv2: A Joint Training Method for Dense Passage Retrieval and Passage Re-ranking",
    EMNLP 2021; Qu et al., "RocketQA", NAACL 2021 (denoising by the re-ranker's score).
    """
    loss = listwise_softmax_loss(scores, temperature)
    if pointwise_weight:
        scores = tf.cast(scores, tf.float32)
        labels = tf.concat([tf.ones_like(scores[:, :1]), tf.zeros_like(scores[:, 1:])], axis=1)
        loss += pointwise_weight * tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=scores))
    return loss


def listwise_kl_divergence(student_scores, teacher_scores, student_temperature=1.0, teacher_temperature=1.0,
                           direction="student_teacher", mask=None):
    """KL divergence between the softmax distributions of two scorers over the same candidate lists, mean over queries.

    RocketQAv2 (Ren et al. 2021, dynamic listwise distillation) trains the retriever's distribution
    s̃_de = softmax(s_de / τ_de) toward the re-ranker's s̃_ce = softmax(s_ce / τ_ce) with

        L_KL = mean_q Σ_c s̃_de(q,c) · log( s̃_de(q,c) / s̃_ce(q,c) )          (direction="student_teacher")

    and gradients reach both scorers (joint training); "teacher_student" is the usual distillation KL(s̃_ce ‖ s̃_de).
    Stop the teacher's gradient with `tf.stop_gradient` for one-way distillation.

    Args:
        student_scores, teacher_scores: [B, C] scores of the same candidates (dual encoder, cross-encoder).
        mask: optional [B, C] booleans; False removes a candidate from both distributions.
    """
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"`direction` must be one of {list(KL_DIRECTIONS)}; got {direction!r}.")
    student = _scores("student_scores", student_scores) / float(check_temperature(student_temperature, "student_temperature"))
    teacher = _scores("teacher_scores", teacher_scores) / float(check_temperature(teacher_temperature, "teacher_temperature"))
    if mask is not None:
        keep = tf.cast(mask, tf.bool)
        student = tf.where(keep, student, tf.fill(tf.shape(student), -1e9))
        teacher = tf.where(keep, teacher, tf.fill(tf.shape(teacher), -1e9))
    log_student, log_teacher = tf.nn.log_softmax(student, -1), tf.nn.log_softmax(teacher, -1)
    if direction == "student_teacher":
        log_p, log_q = log_student, log_teacher
    else:
        log_p, log_q = log_teacher, log_student
    return tf.reduce_mean(tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1))


def listwise_distillation_loss(query_embeddings, document_embeddings, hard_negative_embeddings, teacher_scores,
                               temperature=0.01, teacher_temperature=1.0):
    """One-way listwise distillation of a dual encoder from a cross-encoder over each query's own candidate list.

    Query i's list is its positive document d_i and its N hard negatives h_i1 … h_iN, the candidates a cross-encoder
    scored once before training (`teacher_scores`, positive in column 0). The dual encoder's distribution over that
    list is trained toward the cross-encoder's:

        s_de(i) = [cos(q_i, d_i), cos(q_i, h_i1), …, cos(q_i, h_iN)] / τ        s_ce(i) = teacher_scores[i] / τ_ce
        L = mean_i KL( softmax(s_ce(i)) ‖ softmax(s_de(i)) )

    This is RocketQAv2's listwise KL (`listwise_kl_divergence`, direction "teacher_student") with the teacher's
    gradient stopped: the cross-encoder is fixed, its soft labels say how relevant each mined "negative" looks, so a
    likely unlabelled positive among them is pushed down less. The trainer adds it, weighted, to the contrastive loss.

    Args:
        query_embeddings: [B, D]; document_embeddings: [B, D] (the positives); hard_negative_embeddings: [B, N, D]
            with N >= 1. Normalised here (a no-op for the model's already normalised embeddings).
        teacher_scores: [B, 1 + N] cross-encoder logits, positive first.
        temperature: τ > 0 of the dual encoder's scores (the contrastive loss's).
        teacher_temperature: τ_ce > 0 of the cross-encoder's logits.

    Returns:
        A float32 scalar.

    Example:
    ```python
    loss = listwise_distillation_loss(q, d, h, teacher_scores, temperature=0.05)
    ```

    Reference: Ren et al., "RocketQAv2: A Joint Training Method for Dense Passage Retrieval and Passage Re-ranking",
    EMNLP 2021, Section 3.2 (dynamic listwise distillation).
    """
    if hard_negative_embeddings is None:
        raise ValueError("listwise_distillation_loss needs hard negatives: each query's list is its positive and its "
                         "N >= 1 hard negatives (`hard_negative_embeddings` [B, N, D]).")
    q = tf.math.l2_normalize(tf.cast(query_embeddings, tf.float32), axis=-1)
    d = tf.math.l2_normalize(tf.cast(document_embeddings, tf.float32), axis=-1)
    h = tf.math.l2_normalize(tf.cast(hard_negative_embeddings, tf.float32), axis=-1)
    student = tf.concat([tf.reduce_sum(q * d, axis=-1, keepdims=True), tf.einsum("bd,bnd->bn", q, h)], axis=1)
    teacher = tf.stop_gradient(_scores("teacher_scores", teacher_scores))
    if not teacher.shape.is_compatible_with(student.shape):
        raise ValueError(f"`teacher_scores` must be [batch, 1 + num_hard_negatives] = {student.shape} (positive first); "
                         f"got shape {teacher.shape}.")
    return listwise_kl_divergence(student, teacher, student_temperature=temperature,
                                  teacher_temperature=teacher_temperature, direction="teacher_student")
