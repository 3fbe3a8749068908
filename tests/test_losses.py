import itertools
import math
import re

import numpy as np
import pytest
import tensorflow as tf

from tf_dualenc import losses
from tf_dualenc.losses import InBatchSoftmaxLoss, PairLoss, SamToNeLoss, contrastive_loss, pair_loss


def _lse(values):
    values = np.asarray(values, np.float64)
    m = values.max()
    return m + math.log(np.exp(values - m).sum())


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def reference_contrastive(q, p, tau, bidirectional, same_tower, hard=None, qids=None, dids=None):
    """Loop-by-loop transcription of the issue's formulas, in float64."""
    q, p = _unit(q), _unit(p)
    batch = len(q)
    hard = None if hard is None else _unit(hard).reshape(-1, q.shape[1])

    def dup(i, j):
        if i == j:
            return False
        return (qids is not None and qids[i] == qids[j]) or (dids is not None and dids[i] == dids[j])

    def s(a, b):
        return float(a @ b) / tau

    query_terms = []
    for i in range(batch):
        terms = [s(q[i], p[j]) for j in range(batch) if not dup(i, j)]
        if same_tower in ("query", "both"):
            terms += [s(q[i], q[j]) for j in range(batch) if j != i and not dup(i, j)]
        if hard is not None:
            terms += [s(q[i], h) for h in hard]
        query_terms.append(_lse(terms) - s(q[i], p[i]))
    loss = np.mean(query_terms)
    if bidirectional:
        doc_terms = []
        for i in range(batch):
            terms = [s(p[i], q[j]) for j in range(batch) if not dup(i, j)]
            if same_tower in ("document", "both"):
                terms += [s(p[i], p[j]) for j in range(batch) if j != i and not dup(i, j)]
            doc_terms.append(_lse(terms) - s(p[i], q[i]))
        loss += np.mean(doc_terms)
    return loss


def reference_pair(q, p, tau, alpha):
    q, p = _unit(q), _unit(p)
    batch = len(q)
    std, pair = [], []
    for i in range(batch):
        pos = float(q[i] @ p[i]) / tau
        std.append(_lse([float(q[i] @ p[j]) / tau for j in range(batch)]) - pos)
        pair.append(_lse([pos] + [float(p[i] @ p[j]) / tau for j in range(batch) if j != i]) - pos)
    return (1 - alpha) * np.mean(std) + alpha * np.mean(pair)


def _batch(seed, batch=6, dim=8, negatives=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(batch, dim)).astype(np.float32)
    p = (q + 0.8 * rng.normal(size=(batch, dim))).astype(np.float32)
    h = rng.normal(size=(batch, negatives, dim)).astype(np.float32) if negatives else None
    return q, p, h


ID_CASES = {
    "no_ids": (None, None),
    "query_ids": (np.array([1, 2, 1, 3, 4, 5]), None),
    "document_ids": (None, np.array(["a", "b", "c", "b", "d", "a"])),
    "both_ids": (np.array([7, 7, 8, 9, 10, 11]), np.array([0, 1, 2, 2, 4, 5])),
}


@pytest.mark.parametrize(
    "same_tower,bidirectional,with_hard,ids",
    list(itertools.product(["none", "query", "document", "both"], [True, False], [False, True], sorted(ID_CASES))),
)
def test_contrastive_loss_matches_numpy_reference(same_tower, bidirectional, with_hard, ids):
    q, p, h = _batch(seed=hash((same_tower, bidirectional, with_hard, ids)) % 1000, negatives=3 if with_hard else 0)
    qids, dids = ID_CASES[ids]
    for tau in (0.01, 0.5):
        got = contrastive_loss(
            q,
            p,
            temperature=tau,
            bidirectional=bidirectional,
            same_tower=same_tower,
            hard_negative_embeddings=h,
            query_ids=qids,
            document_ids=dids,
        )
        want = reference_contrastive(q, p, tau, bidirectional, same_tower, h, qids, dids)
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=2e-4)


def test_contrastive_loss_hand_computed_orthonormal_case():
    # q_i = p_i = e_i with τ=1: s(q_i,p_i)=1, every other similarity is 0.
    eye = np.eye(2, dtype=np.float32)
    e = math.e
    standard = contrastive_loss(eye, eye, temperature=1.0, same_tower="none")
    assert standard.numpy() == pytest.approx(2 * math.log((e + 1) / e), rel=1e-6)
    samtone = contrastive_loss(eye, eye, temperature=1.0, same_tower="query")
    assert samtone.numpy() == pytest.approx(math.log((e + 2) / e) + math.log((e + 1) / e), rel=1e-6)
    both = contrastive_loss(eye, eye, temperature=1.0, same_tower="both", bidirectional=False)
    assert both.numpy() == pytest.approx(math.log((e + 2) / e), rel=1e-6)


def test_contrastive_loss_duplicates_removed_from_denominator():
    # Pair 1 repeats pair 0's document; with ids the repeated positive no longer counts as a negative,
    # so each of those rows has just its positive: loss −log(e/e) = 0 for both, and both directions.
    q = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    p = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    with_ids = contrastive_loss(q, p, temperature=1.0, same_tower="both", document_ids=np.array([5, 5]))
    assert with_ids.numpy() == pytest.approx(0.0, abs=1e-7)
    without = contrastive_loss(q, p, temperature=1.0, same_tower="both")
    assert without.numpy() == pytest.approx(2 * math.log(3), rel=1e-6)


def test_hard_negatives_are_never_masked_by_ids():
    q, p, h = _batch(3, batch=4, negatives=2)
    ids = np.array([1, 1, 1, 1])
    got = contrastive_loss(
        q, p, temperature=0.5, same_tower="none", bidirectional=False, hard_negative_embeddings=h, query_ids=ids
    )
    # Every in-batch negative is a duplicate, so only the positive and all 8 hard negatives remain.
    qn, pn, hn = _unit(q), _unit(p), _unit(h).reshape(-1, q.shape[1])
    want = np.mean([_lse([qn[i] @ pn[i] / 0.5] + list(hn @ qn[i] / 0.5)) - qn[i] @ pn[i] / 0.5 for i in range(4)])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 1.0])
def test_pair_loss_matches_numpy_reference(alpha):
    q, p, _ = _batch(11)
    for tau in (0.01, 0.3):
        got = pair_loss(q, p, temperature=tau, alpha=alpha)
        np.testing.assert_allclose(got.numpy(), reference_pair(q, p, tau, alpha), rtol=2e-5, atol=2e-4)


def test_pair_loss_hand_computed_orthonormal_case():
    eye = np.eye(2, dtype=np.float32)
    e = math.e
    got = pair_loss(eye, eye, temperature=1.0, alpha=0.25)
    want = 0.75 * math.log((e + 1) / e) + 0.25 * math.log((e + 1) / e)
    assert got.numpy() == pytest.approx(want, rel=1e-6)


def test_losses_accept_unnormalised_inputs():
    q, p, _ = _batch(5)
    a = contrastive_loss(q * 7.0, p * 0.01)
    b = contrastive_loss(q, p)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)


def test_loss_is_stable_at_small_temperature_and_in_float16():
    q, p, _ = _batch(8, batch=16, dim=32)
    loss16 = contrastive_loss(q.astype(np.float16), p.astype(np.float16), temperature=0.001)
    assert loss16.dtype == tf.float32
    assert np.isfinite(loss16.numpy())
    want = reference_contrastive(q.astype(np.float16), p.astype(np.float16), 0.001, True, "query")
    np.testing.assert_allclose(loss16.numpy(), want, rtol=1e-3)


def test_loss_in_graph_mode_with_unknown_batch_size():
    q, p, h = _batch(2, negatives=2)
    ids = np.arange(6)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 8], tf.float32),
            tf.TensorSpec([None, 8], tf.float32),
            tf.TensorSpec([None, None, 8], tf.float32),
            tf.TensorSpec([None], tf.int64),
        ]
    )
    def f(q, p, h, ids):
        return contrastive_loss(q, p, hard_negative_embeddings=h, query_ids=ids)

    np.testing.assert_allclose(
        f(q, p, h, ids).numpy(), reference_contrastive(q, p, 0.01, True, "query", h, ids), rtol=2e-5
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 2"):
        f(q[:1], p[:1], h[:1], ids[:1])


def test_gradient_steps_lower_the_loss():
    q0, p0, _ = _batch(4, batch=8, dim=16)
    q = tf.Variable(q0)
    p = tf.Variable(p0)
    opt = tf.keras.optimizers.SGD(0.05)
    losses = []
    for _ in range(10):
        with tf.GradientTape() as tape:
            loss = contrastive_loss(q, p, temperature=0.1)
        losses.append(float(loss))
        grads = tape.gradient(loss, [q, p])
        assert all(np.all(np.isfinite(g.numpy())) for g in grads)
        opt.apply_gradients(zip(grads, [q, p]))
    assert losses[-1] < losses[0] * 0.8


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"same_tower": "queries"}, r"same_tower.*'none', 'query', 'document', 'both'.*'queries'"),
        ({"temperature": 0.0}, r"temperature.*0\.0"),
        ({"temperature": -1.0}, r"temperature.*-1\.0"),
        ({"bidirectional": "yes"}, r"bidirectional.*'yes'"),
        ({"query_ids": np.arange(5)}, r"query_ids.*batch size 6.*5 ids"),
        ({"document_ids": np.zeros((6, 2), np.int64)}, r"document_ids.*shape \[batch\].*\(6, 2\)"),
        ({"hard_negative_embeddings": np.zeros((6, 8), np.float32)}, r"hard_negative_embeddings.*rank 3.*\(6, 8\)"),
        ({"hard_negative_embeddings": np.zeros((6, 2, 4), np.float32)}, r"hard_negative_embeddings.*embedding size"),
    ],
)
def test_contrastive_loss_rejects_bad_arguments(kwargs, match):
    q, p, _ = _batch(0)
    with pytest.raises(ValueError, match=match):
        contrastive_loss(q, p, **kwargs)


def test_contrastive_loss_rejects_bad_embeddings():
    q, p, _ = _batch(0)
    with pytest.raises(ValueError, match=r"query_embeddings.*rank 2.*\(6,\)"):
        contrastive_loss(q[:, 0], p)
    with pytest.raises(ValueError, match=r"batch size.*6 and 5"):
        contrastive_loss(q, p[:5])
    with pytest.raises(ValueError, match=r"same embedding size.*\(6, 8\).*\(6, 4\)"):
        contrastive_loss(q, p[:, :4])
    with pytest.raises(ValueError, match=r"at least 2 pairs.*batch size 1"):
        contrastive_loss(q[:1], p[:1])
    bad = q.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"query_embeddings.*1 non-finite"):
        contrastive_loss(bad, p)
    with pytest.raises(ValueError, match=r"document_embeddings.*floating-point.*int"):
        contrastive_loss(q, np.ones((6, 8), np.int32))
    with pytest.raises(ValueError, match=r"alpha.*1\.5"):
        pair_loss(q, p, alpha=1.5)


def test_keras_loss_classes_match_functional_losses():
    q, p, h = _batch(9, negatives=2)
    ids = np.stack([np.array([1, 2, 3, 1, 5, 6]), np.array([10, 11, 12, 13, 14, 11])], axis=1).astype(np.int64)
    stacked = np.concatenate([q[:, None], p[:, None], h], axis=1)
    got = SamToNeLoss(mask_duplicates=True)(ids, stacked)
    want = contrastive_loss(q, p, hard_negative_embeddings=h, query_ids=ids[:, 0], document_ids=ids[:, 1])
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    got = InBatchSoftmaxLoss(temperature=0.05)(None, stacked[:, :2])
    np.testing.assert_allclose(got.numpy(), contrastive_loss(q, p, temperature=0.05, same_tower="none").numpy(), rtol=1e-6)
    got = PairLoss(alpha=0.3)(None, stacked[:, :2])
    np.testing.assert_allclose(got.numpy(), pair_loss(q, p, alpha=0.3).numpy(), rtol=1e-6)


def test_keras_loss_classes_keep_large_integer_ids():
    # 2**40 and 2**40 + 1 collapse to one value in float32; they must stay distinct ids.
    q, p, _ = _batch(1, batch=2)
    stacked = np.stack([q, p], axis=1)
    ids = np.array([[2**40, 0], [2**40 + 1, 1]], np.int64)
    got = SamToNeLoss(mask_duplicates=True)(ids, stacked)
    np.testing.assert_allclose(got.numpy(), contrastive_loss(q, p).numpy(), rtol=1e-6)


def test_keras_loss_classes_reject_bad_inputs():
    q, p, h = _batch(9, negatives=1)
    with pytest.raises(ValueError, match=r"y_pred.*\[batch, 2 \+ num_hard_negatives, dim\].*\(6, 8\)"):
        SamToNeLoss()(None, q)
    with pytest.raises(ValueError, match=r"mask_duplicates=True.*y_true"):
        SamToNeLoss(mask_duplicates=True)(None, np.stack([q, p], 1))
    with pytest.raises(ValueError, match=r"sample_weight"):
        SamToNeLoss()(None, np.stack([q, p], 1), sample_weight=np.ones(6))
    with pytest.raises(ValueError, match=r"PairLoss does not use hard negatives"):
        PairLoss()(None, np.concatenate([q[:, None], p[:, None], h], 1))
    with pytest.raises(ValueError, match=r"same_tower.*'sideways'"):
        SamToNeLoss(same_tower="sideways")


REGISTERED = [
    ("samtone", SamToNeLoss, {"temperature": 0.05, "bidirectional": False, "same_tower": "both", "mask_duplicates": True}),
    ("in_batch", InBatchSoftmaxLoss, {"temperature": 0.02, "bidirectional": True, "mask_duplicates": True}),
    ("pair", PairLoss, {"temperature": 0.03, "alpha": 0.3}),
]


def test_registry_names_every_loss_the_config_accepts():
    from tf_dualenc.training.train_config import LOSSES

    assert losses.names() == ("samtone", "in_batch", "pair") == LOSSES
    assert [name for name, _, _ in REGISTERED] == list(losses.names())


@pytest.mark.parametrize("name,cls,config", REGISTERED, ids=[name for name, _, _ in REGISTERED])
def test_get_returns_the_named_loss_class_with_its_config(name, cls, config):
    loss = losses.get(name, **config)
    assert type(loss) is cls
    assert set(losses.settings(name)) == set(config)
    assert {key: loss.get_config()[key] for key in config} == config
    # Unset settings keep the class defaults (the paper's).
    assert losses.get(name).get_config() == cls().get_config()


def test_get_lists_the_valid_names_and_settings():
    with pytest.raises(ValueError, match=re.escape("loss='triplet' (valid: ['samtone', 'in_batch', 'pair'])")):
        losses.get("triplet")
    with pytest.raises(ValueError, match=re.escape(
            "loss='in_batch' takes no setting(s) ['same_tower'] (valid: ['temperature', 'bidirectional', 'mask_duplicates'])")):
        losses.get("in_batch", same_tower="query")


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf"), True, "0.01", None])
def test_a_bad_temperature_is_rejected_by_the_one_shared_check(temperature):
    from tf_dualenc.training import TrainConfig

    message = f"temperature must be a finite number > 0 (got temperature={temperature!r})"
    q, p, _ = _batch(0)
    # Every way in says the same words, because every way in runs `check_temperature`.
    attempts = [lambda name=name: losses.get(name, temperature=temperature) for name in losses.names()]
    attempts += [
        lambda: contrastive_loss(q, p, temperature=temperature),
        lambda: pair_loss(q, p, temperature=temperature),
        lambda: losses.listwise_softmax_loss(np.zeros((2, 3), np.float32), temperature=temperature),
        lambda: losses.check_temperature(temperature),
    ]
    for attempt in attempts:
        with pytest.raises(ValueError, match=re.escape(message)):
            attempt()
    with pytest.raises(ValueError) as info:
        TrainConfig(data=".", temperature=temperature).validate()
    assert message in str(info.value)


def test_reranker_loss_lives_in_losses():
    from tf_dualenc.reranking import listwise_training

    assert listwise_training.reranker_loss is losses.reranker_loss
