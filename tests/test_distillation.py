"""Distillation from a cross-encoder (`TrainConfig.distillation`): the listwise KL term, the teacher scores on pair
records, and the training step (plain and cached) with it."""

import json

import numpy as np
import pytest

from test_cached_step import BATCH, _assert_same_update, _batch, _config
from test_cached_step import model  # noqa: F401  (a fixture)
from test_models import PAIRS
from tf_dualenc.data.beir import DataError
from tf_dualenc.data.pair_records import iter_pair_records, write_pair_tfrecords
from tf_dualenc.training import TrainConfig


def _softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_distillation_loss_matches_numpy():
    from tf_dualenc.losses import listwise_distillation_loss

    rng = np.random.default_rng(0)
    q, d, h = rng.normal(size=(5, 8)), rng.normal(size=(5, 8)), rng.normal(size=(5, 3, 8))
    teacher = rng.normal(size=(5, 4)) * 3
    got = float(listwise_distillation_loss(q, d, h, teacher, temperature=0.05, teacher_temperature=2.0))
    qn, dn, hn = _unit(q), _unit(d), _unit(h)
    student = np.concatenate([(qn * dn).sum(-1, keepdims=True), np.einsum("bd,bnd->bn", qn, hn)], 1) / 0.05
    p, s = _softmax(teacher / 2.0), _softmax(student)
    want = np.mean(np.sum(p * (np.log(p) - np.log(s)), axis=-1))
    assert got == pytest.approx(want, rel=1e-4)
    # The student matching the teacher's distribution gives zero.
    assert float(listwise_distillation_loss(q, d, h, student * 0.05, temperature=0.05, teacher_temperature=0.05)) == pytest.approx(0, abs=1e-5)


def test_distillation_loss_stops_the_teachers_gradient_and_checks_shapes():
    import tensorflow as tf

    from tf_dualenc.losses import listwise_distillation_loss

    rng = np.random.default_rng(1)
    q, d, h = (tf.constant(rng.normal(size=s), tf.float32) for s in ((4, 6), (4, 6), (4, 2, 6)))
    teacher = tf.Variable(rng.normal(size=(4, 3)), dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = listwise_distillation_loss(q, d, h, teacher)
    assert tape.gradient(value, teacher) is None
    with pytest.raises(ValueError, match=r"`teacher_scores` must be \[batch, 1 \+ num_hard_negatives\]"):
        listwise_distillation_loss(q, d, h, tf.zeros([4, 2]))
    with pytest.raises(ValueError, match="needs hard negatives"):
        listwise_distillation_loss(q, d, None, tf.zeros([4, 1]))


def test_pair_records_carry_teacher_scores_and_name_a_bad_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"query": "q", "document": "d", "negatives": ["n1", "n2"], "teacher_scores": [3.0, 1, -0.5]}
    path.write_text(json.dumps(good) + "\n")
    (record,) = iter_pair_records([str(path)], num_negatives=1, teacher_scores=True)
    assert record.negatives == ("n1",) and record.teacher_scores == (3.0, 1.0)
    (shards,) = write_pair_tfrecords(iter_pair_records([str(path)]), str(tmp_path / "shard"))
    assert next(iter_pair_records([shards], teacher_scores=True)).teacher_scores == (3.0, 1.0, -0.5)

    for bad, reason in (({**good, "teacher_scores": [1.0, 2.0]}, "teacher_scores must be a list of 1 \\+ 2 finite numbers"),
                        ({**good, "teacher_scores": [1.0, "x", 2.0]}, "teacher_scores must be"),
                        ({**good, "teacher_scores": [1.0, float("nan"), 2.0]}, "teacher_scores must be")):
        path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(DataError, match=rf"pairs.jsonl:2: {reason}"):
            list(iter_pair_records([str(path)]))
    path.write_text(json.dumps({"query": "q", "document": "d", "negatives": ["n"]}) + "\n")
    with pytest.raises(DataError, match="pairs.jsonl:1: missing teacher_scores"):
        list(iter_pair_records([str(path)], teacher_scores=True))


def test_distillation_config_is_checked_before_training(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("")
    base = dict(data=str(pairs), model="bert", preset="all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match=r"distillation='/nope.keras' does not exist.*distillation needs hard negatives"):
        TrainConfig(**base, distillation="/nope.keras").validate()
    with pytest.raises(ValueError, match=r"distillation_weight=0 \(must be > 0\).*distillation_temperature=-1 \(must be > 0\)"):
        TrainConfig(**base, distillation_weight=0, distillation_temperature=-1).validate()


def _step_update(model, config, batch, mini_batch_size, distillation):
    """(loss, update) of one SGD step at learning rate 1; the weights are restored."""
    import keras
    import tensorflow as tf

    from tf_dualenc.training.trainer import make_loss, make_train_step

    before = [v.numpy() for v in model.trainable_variables]
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    optimizer.build(model.trainable_variables)
    step = make_train_step(tf.distribute.get_strategy(), model, optimizer, make_loss(config), config.batch_size,
                           mini_batch_size=mini_batch_size, distillation=distillation)
    loss, _ = step(*batch)
    delta = [v.numpy() - w for v, w in zip(model.trainable_variables, before)]
    for v, w in zip(model.trainable_variables, before):
        v.assign(w)
    return float(loss), delta


def test_the_distillation_term_enters_the_step_and_the_cached_step_keeps_it_exact(model, t5_vocabulary):  # noqa: F811
    import tensorflow as tf

    from tf_dualenc.training.trainer import make_distillation

    config = _config(t5_vocabulary, loss="samtone", num_negatives=2, distillation="teacher.keras", distillation_weight=2.0,
                     temperature=0.05)
    features, query_ids, document_ids = _batch(model, 2)
    # A teacher that prefers the first negative to the positive: the opposite of what the contrastive loss wants.
    features["teacher_scores"] = tf.constant(np.tile([[0.0, 4.0, -2.0]], (BATCH, 1)), tf.float32)
    batch = (features, query_ids, document_ids)
    distillation = make_distillation(config)
    plain_loss, plain = _step_update(model, config, batch, 0, distillation)
    without_loss, without = _step_update(model, config, batch, 0, None)
    assert plain_loss > without_loss
    assert max(np.abs(p - w).max() for p, w in zip(plain, without)) > 1e-4
    q = model.embed_queries(features["query"])
    d = model.embed_documents(features["document"])
    h = model.embed_negatives(features["negatives"])
    from tf_dualenc.losses import listwise_distillation_loss

    term = 2.0 * float(listwise_distillation_loss(q, d, h, features["teacher_scores"], temperature=0.05))
    assert plain_loss - without_loss == pytest.approx(term, rel=1e-4)
    cached_loss, cached = _step_update(model, config, batch, 2, distillation)
    assert cached_loss == pytest.approx(plain_loss, rel=1e-5)
    _assert_same_update(cached, plain)


@pytest.fixture
def negatives_file(tmp_path):
    path = tmp_path / "negatives.jsonl"
    documents = [d for _, d in PAIRS]
    with open(path, "w") as f:
        for i, (q, d) in enumerate(PAIRS):
            negatives = [documents[(i + k) % len(PAIRS)] for k in (1, 2)]
            f.write(json.dumps({"query_id": f"q{i}", "query": q, "document_id": f"d{i}", "document": d,
                                "negatives": negatives}) + "\n")
    return path


def test_training_distils_from_a_saved_cross_encoder_and_caches_its_scores(tmp_path, negatives_file, t5_vocabulary):
    from test_training import tiny_config

    from tf_dualenc.models import build_t5_cross_encoder
    from tf_dualenc.training import train

    teacher = build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=32, dropout=0.0)
    documents = [d for _, d in PAIRS]
    want = teacher.score_pairs([PAIRS[0][0]] * 3, documents[:3])  # query 0's list: its positive, then its negatives
    teacher_path = tmp_path / "teacher.keras"
    teacher.save(teacher_path)
    lines = []
    config = tiny_config(negatives_file, tmp_path / "run", t5_vocabulary, hard_negatives=str(negatives_file), num_negatives=2,
                         distillation=str(teacher_path), hard_negatives_cache=str(tmp_path / "cache"), steps=2,
                         checkpoint_every=2)
    summary, _ = train(config, progress=False, print_fn=lines.append)
    assert summary["finished"]
    (scored,) = (tmp_path / "cache").glob("teacher_scores-*.jsonl")
    records = [json.loads(line) for line in scored.read_text().splitlines()]
    assert len(records) == len(PAIRS)
    # The cached scores are the cross-encoder's own, positive first.
    (first,) = (r for r in records if r["query_id"] == "q0")
    assert [first["document"], *first["negatives"]] == documents[:3]
    np.testing.assert_allclose(first["teacher_scores"], want, atol=1e-4)
    assert any(line.startswith("teacher scores (") for line in lines)
    # A second run (another seed) reuses the scores.
    lines.clear()
    train(tiny_config(negatives_file, tmp_path / "run2", t5_vocabulary, hard_negatives=str(negatives_file), num_negatives=2,
                      distillation=str(teacher_path), hard_negatives_cache=str(tmp_path / "cache"), steps=1,
                      checkpoint_every=1, seed=1), progress=False, print_fn=lines.append)
    assert any(line.startswith("teacher scores: cached") for line in lines)


def test_training_distils_on_pair_files_that_have_negatives(tmp_path, negatives_file, t5_vocabulary):
    """Without mining: the pair files' own negatives are scored (what benchmarks/quality.py trains on)."""
    from test_training import tiny_config

    from tf_dualenc.models import build_t5_cross_encoder
    from tf_dualenc.training import train

    teacher_path = tmp_path / "teacher.keras"
    build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=32, dropout=0.0).save(teacher_path)
    lines = []
    config = tiny_config(negatives_file, tmp_path / "run", t5_vocabulary, num_negatives=1, distillation=str(teacher_path),
                         steps=1, checkpoint_every=1)
    summary, _ = train(config, progress=False, print_fn=lines.append)
    assert summary["finished"]
    (scored,) = (tmp_path / "run").glob("teacher_scores-*.jsonl")
    assert all(len(json.loads(line)["teacher_scores"]) == 2 for line in scored.read_text().splitlines())
    with pytest.raises(ValueError, match=r"distillation needs hard negatives, num_negatives >= 1"):
        tiny_config(negatives_file, tmp_path / "run2", t5_vocabulary, distillation=str(teacher_path)).validate()


def test_the_teacher_score_cache_key_follows_the_pair_files_the_cross_encoder_and_the_list_width(tmp_path):
    import os
    import types

    from tf_dualenc.training.teacher_scores import cache_path

    pairs, teacher = tmp_path / "pairs.jsonl", tmp_path / "export"
    pairs.write_text('{"query": "q", "document": "d", "negatives": ["n"]}\n')
    (teacher / "1").mkdir(parents=True)  # an exported cross-encoder is a folder: every file in it counts
    (teacher / "1" / "saved_model.pb").write_bytes(b"v1")

    def key(**changes):
        config = types.SimpleNamespace(distillation=str(teacher), num_negatives=1, lenient=False,
                                       hard_negatives_cache=str(tmp_path / "cache"), output_dir=str(tmp_path))
        vars(config).update(changes)
        return cache_path(config, [str(pairs)])

    first = key()
    assert first == key() and os.path.dirname(first) == str(tmp_path / "cache")
    assert key(num_negatives=2) != first and key(lenient=True) != first
    (teacher / "1" / "saved_model.pb").write_bytes(b"v2 retrained")
    retrained = key()
    assert retrained != first
    pairs.write_text(pairs.read_text() * 2)
    assert key() not in (first, retrained)
