"""Listwise losses over a candidate list per query (positive first): the cross-encoder's softmax loss and RocketQAv2's
dynamic listwise distillation. Plain TensorFlow functions; all math in float32 through log-softmax."""

import tensorflow as tf

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
    scores = _scores("scores", scores) / float(temperature)
    if mask is not None:
        scores = tf.where(tf.cast(mask, tf.bool), scores, tf.fill(tf.shape(scores), -1e9))
    return -tf.reduce_mean(tf.nn.log_softmax(scores, axis=-1)[:, 0])


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
    student = _scores("student_scores", student_scores) / float(student_temperature)
    teacher = _scores("teacher_scores", teacher_scores) / float(teacher_temperature)
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
