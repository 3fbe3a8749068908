"""Gradient caching: the cached step applies the plain step's update (the exact full-batch gradient)."""

import numpy as np
import pytest

from test_models import PAIRS
from test_training import pair_file  # noqa: F401  (a fixture)
from tf_dualenc.training import TrainConfig

BATCH = 8
# (loss, same_tower): in-batch, SamToNe on the query side and on both sides, PAIR.
LOSSES = [("in_batch", "query"), ("samtone", "query"), ("samtone", "both"), ("pair", "query")]


def _config(vocabulary, **overrides):
    values = dict(model="t5", size="tiny", vocabulary=vocabulary, query_length=12, document_length=20, dropout=0.0,
                  batch_size=BATCH, trim_padding=True)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def model(t5_vocabulary):
    from tf_dualenc.training.trainer import build_model

    return build_model(_config(t5_vocabulary))


def _batch(model, num_negatives):
    import tensorflow as tf

    queries, documents = zip(*PAIRS[:BATCH])
    features = {
        "query": model.query_preprocessor(tf.constant(queries)),
        "document": model.document_preprocessor(tf.constant(documents)),
    }
    if num_negatives:
        # Pair i's negatives are the next pairs' documents: every negative also sits in the batch as a positive.
        negatives = [[documents[(i + k) % BATCH] for k in range(1, num_negatives + 1)] for i in range(BATCH)]
        flat = model.document_preprocessor(tf.reshape(tf.constant(negatives), [-1]))
        features["negatives"] = {k: tf.reshape(v, [BATCH, num_negatives, -1]) for k, v in flat.items()}
    # Pairs 0 and 5 share a document id: duplicate masking must drop the same terms in both steps.
    document_ids = tf.constant([10, 11, 12, 13, 14, 10, 16, 17], tf.int64)
    return features, tf.range(BATCH, dtype=tf.int64), document_ids


def _update(model, config, batch, mini_batch_size):
    """One SGD step at learning rate 1 from the model's current weights: (loss, −gradient); the weights are restored."""
    import keras
    import tensorflow as tf

    from tf_dualenc.training.trainer import make_loss, make_train_step

    before = [v.numpy() for v in model.trainable_variables]
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    optimizer.build(model.trainable_variables)
    step = make_train_step(tf.distribute.get_strategy(), model, optimizer, make_loss(config), config.batch_size,
                           config.jit_compile, mini_batch_size)
    loss, _ = step(*batch)
    delta = [v.numpy() - w for v, w in zip(model.trainable_variables, before)]
    for v, w in zip(model.trainable_variables, before):
        v.assign(w)
    return float(loss), delta


def _assert_same_update(got, want):
    scale = max(np.abs(w).max() for w in want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("num_negatives", [0, 2])
@pytest.mark.parametrize("loss,same_tower", LOSSES)
def test_cached_step_applies_the_plain_steps_gradient(model, t5_vocabulary, loss, same_tower, num_negatives):
    if loss == "pair" and num_negatives:
        pytest.skip("PAIR has no hard negatives")
    config = _config(t5_vocabulary, loss=loss, same_tower=same_tower, mask_duplicates=loss != "pair",
                     num_negatives=num_negatives)
    batch = _batch(model, num_negatives)
    plain_loss, plain = _update(model, config, batch, mini_batch_size=0)
    cached_loss, cached = _update(model, config, batch, mini_batch_size=2)
    assert cached_loss == pytest.approx(plain_loss, rel=1e-5)
    assert max(np.abs(p).max() for p in plain) > 0
    _assert_same_update(cached, plain)


def test_cached_step_compiles_with_xla(model, t5_vocabulary):
    config = _config(t5_vocabulary, num_negatives=2, jit_compile=True, trim_padding=False)
    batch = _batch(model, 2)
    # XLA wants static shapes: the trainer turns trimming off under jit_compile, so does this test.
    model.trim_padding = False
    try:
        plain_loss, plain = _update(model, config, batch, mini_batch_size=0)
        cached_loss, cached = _update(model, config, batch, mini_batch_size=2)
    finally:
        model.trim_padding = True
    assert cached_loss == pytest.approx(plain_loss, rel=1e-5)
    _assert_same_update(cached, plain)


def test_mini_batch_size_must_divide_the_batch():
    with pytest.raises(ValueError, match=r"mini_batch_size=3 \(valid: a positive integer dividing batch_size=8, or 0"):
        TrainConfig(data=".", batch_size=8, mini_batch_size=3).validate()
    with pytest.raises(ValueError, match=r"mini_batch_size=-1 \(valid"):
        TrainConfig(data=".", batch_size=8, mini_batch_size=-1).validate()


def test_cached_step_with_dropout_is_exact_for_the_masks_it_drew(t5_vocabulary):
    import tensorflow as tf

    from tf_dualenc.training.cached_step import dropout_seed_states
    from tf_dualenc.training.trainer import build_model, make_loss

    config = _config(t5_vocabulary, dropout=0.3)
    model = build_model(config)
    batch = _batch(model, 0)
    seeds = dropout_seed_states(model)
    assert seeds
    start = [s.numpy() for s in seeds]
    loss = make_loss(config)
    half = BATCH // 2

    @tf.function
    def reference(features, query_ids, document_ids):
        # The whole loss back-propagated at once through the same half-batch forward passes, in the same order, so
        # the same dropout masks as the cached step's first pass.
        with tf.GradientTape() as tape:
            chunks = [tf.nest.map_structure(lambda t, i=i: t[i * half : (i + 1) * half], features) for i in range(2)]
            q = tf.concat([model.embed_queries(c["query"], training=True) for c in chunks], 0)
            d = tf.concat([model.embed_documents(c["document"], training=True) for c in chunks], 0)
            value = loss.embedding_loss(q, d, None, query_ids, document_ids)
        return [tf.convert_to_tensor(g) for g in tape.gradient(value, model.trainable_variables)]

    want = [-g.numpy() for g in reference(*batch)]
    for state, value in zip(seeds, start):
        state.assign(value)
    _, cached = _update(model, config, batch, mini_batch_size=half)
    _assert_same_update(cached, want)
    # Dropout was on: the seeds moved on (by one pass's draws: the second pass replays the first one's).
    assert all((s.numpy() != v).any() for s, v in zip(seeds, start))


@pytest.mark.slow
def test_cached_training_with_dropout_lowers_the_loss(tmp_path, pair_file, t5_vocabulary):
    from test_training import _tensorboard_scalars, tiny_config

    from tf_dualenc.training import train

    config = tiny_config(pair_file, tmp_path / "run", t5_vocabulary, batch_size=8, mini_batch_size=4, steps=8,
                         checkpoint_every=8, dropout=0.1)
    summary, _ = train(config, progress=False, print_fn=lambda *_: None)
    assert summary["finished"]
    losses = _tensorboard_scalars(tmp_path / "run" / "logs", "loss")
    assert np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2])


def test_a_run_resumes_with_another_mini_batch_size_but_not_another_precision(tmp_path):
    import dataclasses
    import json

    from tf_dualenc.training.trainer import CONFIG_FILE, _check_resume_config

    config = TrainConfig(data="pairs.jsonl", batch_size=8, mini_batch_size=4)
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config.to_dict()))
    _check_resume_config(str(tmp_path), dataclasses.replace(config, mini_batch_size=2))
    with pytest.raises(ValueError, match=r"different config \(mixed_precision: 'float32' → 'bfloat16'\)"):
        _check_resume_config(str(tmp_path), dataclasses.replace(config, mixed_precision="bfloat16"))
