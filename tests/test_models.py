import numpy as np
import pytest
import tensorflow as tf

import keras
import keras_hub

from tf_dualenc.losses import InBatchSoftmaxLoss, PairLoss, SamToNeLoss
from tf_dualenc.models import (
    ARCHITECTURES,
    DualEncoder,
    MaskedMeanPooling,
    T5EncoderTower,
    build_t5_dual_encoder,
    t5_tower_config,
)

PAIRS = [
    ("who wrote hamlet", "Hamlet is a tragedy written by William Shakespeare."),
    ("capital of france", "Paris is the capital and largest city of France."),
    ("boiling point of water", "Water boils at 100 degrees Celsius at sea level."),
    ("largest planet", "Jupiter is the largest planet in the Solar System."),
    ("speed of light", "Light travels at about 300,000 kilometres per second."),
    ("who painted the mona lisa", "The Mona Lisa was painted by Leonardo da Vinci."),
    ("tallest mountain", "Mount Everest is the highest mountain above sea level."),
    ("chemical symbol for gold", "Gold has the chemical symbol Au and atomic number 79."),
]
QUERIES = [q for q, _ in PAIRS]
DOCUMENTS = [d for _, d in PAIRS]


def tiny(vocabulary, architecture="ade_spl", **kwargs):
    kwargs.setdefault("dropout", 0.0)
    return build_t5_dual_encoder(
        "tiny",
        vocabulary=vocabulary,
        architecture=architecture,
        query_sequence_length=12,
        document_sequence_length=20,
        **kwargs,
    )


def test_masked_mean_pooling_matches_numpy():
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], np.int32)
    got = MaskedMeanPooling()(seq, mask).numpy()
    np.testing.assert_allclose(got[0], seq[0, :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(got[1], seq[1].mean(0), rtol=1e-6)
    np.testing.assert_array_equal(got[2], np.zeros(4))


def test_exact_gelu_is_kerass_in_float32_and_computed_in_float32_under_bfloat16():
    import math

    from tf_dualenc.models.activations import gelu_exact

    x = np.linspace(-6, 6, 101).astype(np.float32)
    want = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    got32 = keras.ops.convert_to_numpy(gelu_exact(x))
    np.testing.assert_array_equal(got32, keras.ops.convert_to_numpy(keras.activations.gelu(x, approximate=False)))
    np.testing.assert_allclose(got32, want, rtol=1e-6, atol=1e-6)
    bf16 = keras.ops.cast(x, "bfloat16")
    got16 = gelu_exact(bf16)
    assert got16.dtype == "bfloat16"
    # The float32 GELU of the bfloat16 input, rounded once to bfloat16 (its 8 significant bits).
    exact_of_input = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in keras.ops.convert_to_numpy(keras.ops.cast(bf16, "float32"))])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(got16, "float32")), exact_of_input, rtol=2**-8, atol=1e-6)


def test_t5_tower_configs_are_the_public_t5_1_1_shapes():
    small = t5_tower_config("t5_1.1_small")
    assert (small["num_layers"], small["hidden_dim"], small["intermediate_dim"], small["num_heads"]) == (8, 512, 1024, 6)
    base = t5_tower_config("t5_1.1_base")
    assert (base["num_layers"], base["hidden_dim"], base["intermediate_dim"], base["num_heads"]) == (12, 768, 2048, 12)
    xxl = t5_tower_config("t5_1.1_xxl")
    assert (xxl["hidden_dim"], xxl["intermediate_dim"], xxl["num_heads"]) == (4096, 10240, 64)
    assert small["use_gated_activation"] and small["vocabulary_size"] == 32128
    x = np.linspace(-3, 3, 13).astype(np.float32)
    tanh_gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(small["activation"](x)), tanh_gelu, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"t5_1\.1_medium.*valid sizes.*t5_1\.1_base"):
        t5_tower_config("t5_1.1_medium")
    with pytest.raises(ValueError, match=r"num_layer.*valid keys"):
        t5_tower_config("tiny", num_layer=3)


def test_t5_tower_is_the_backbone_encoder_with_mean_pooling():
    config = t5_tower_config("tiny", vocabulary_size=100, dropout=0.0)
    backbone = keras_hub.models.T5Backbone(**config, tie_embedding_weights=False)
    tower = T5EncoderTower.from_backbone(backbone)
    ids = np.array([[5, 6, 7, 1, 0, 0], [9, 8, 7, 6, 5, 1]], np.int32)
    mask = (np.arange(6)[None] < np.array([[4], [6]])).astype(np.int32)
    sequence = backbone(
        {"encoder_token_ids": ids, "encoder_padding_mask": mask, "decoder_token_ids": ids, "decoder_padding_mask": mask}
    )["encoder_sequence_output"].numpy()
    want = (sequence * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    got = tower({"token_ids": ids, "padding_mask": mask}).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The decoder is not part of the tower.
    assert not any("decoder" in w.path for w in tower.weights)
    assert len(tower.weights) < len(backbone.weights)


def test_fresh_t5_tower_does_not_start_collapsed():
    # keras-hub's T5 embedding initialiser centres every token near the all-ones vector; the tower
    # re-draws them from N(0, 1) so different texts start with clearly different embeddings.
    tower = T5EncoderTower(**t5_tower_config("tiny", vocabulary_size=1000, dropout=0.0))
    embeddings = tower.encoder_layers[0].embeddings.numpy()
    assert abs(embeddings.mean()) < 0.05 and 0.9 < embeddings.std() < 1.1
    ids = np.random.default_rng(0).integers(3, 1000, size=(6, 10)).astype(np.int32)
    pooled = tower({"token_ids": ids, "padding_mask": np.ones_like(ids)}).numpy()
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert (pooled @ pooled.T)[np.triu_indices(6, 1)].mean() < 0.5


def test_t5_tower_loads_a_local_keras_hub_preset(tmp_path):
    config = t5_tower_config("tiny", vocabulary_size=100, dropout=0.0)
    backbone = keras_hub.models.T5Backbone(**config)
    backbone.save_to_preset(str(tmp_path / "preset"))
    tower = T5EncoderTower.from_preset(str(tmp_path / "preset"))
    reference = T5EncoderTower.from_backbone(backbone)
    ids = np.array([[3, 4, 5, 1]], np.int32)
    mask = np.ones_like(ids)
    np.testing.assert_allclose(
        tower({"token_ids": ids, "padding_mask": mask}).numpy(),
        reference({"token_ids": ids, "padding_mask": mask}).numpy(),
        rtol=1e-6,
    )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_architectures_share_the_right_weights(t5_vocabulary, architecture):
    model = tiny(t5_vocabulary, architecture)
    shares_tower = model.query_tower is model.document_tower
    shares_projection = model.query_projection is model.document_projection
    assert (shares_tower, shares_projection) == {
        "sde": (True, True),
        "ade": (False, False),
        "ade_spl": (False, True),
    }[architecture]
    tower_weights = len(model.query_tower.trainable_weights)
    expected = {"sde": tower_weights + 1, "ade": 2 * tower_weights + 2, "ade_spl": 2 * tower_weights + 1}
    assert len(model.trainable_weights) == expected[architecture]


def test_embeddings_are_unit_vectors_and_independent_of_batch_padding(t5_vocabulary):
    model = tiny(t5_vocabulary, "ade")
    alone = model.encode_documents(["Paris is the capital of France."])
    with_longer = model.encode_documents(
        ["Paris is the capital of France.", "A much longer sentence that fills the whole document length budget here."]
    )
    np.testing.assert_allclose(np.linalg.norm(with_longer, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(alone[0], with_longer[0], atol=1e-5)
    # Queries and documents go through different towers in ADE.
    assert not np.allclose(model.encode_queries(["x y z"]), model.encode_documents(["x y z"]), atol=1e-3)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_trim_padding_gives_the_fixed_padding_embeddings_in_input_order(t5_vocabulary, architecture):
    model = tiny(t5_vocabulary, architecture)
    texts = ["short", DOCUMENTS[0], "a b", DOCUMENTS[3] + " " + DOCUMENTS[4], "x"]
    features = model.document_preprocessor(tf.constant(texts[:2]))
    assert model._trim(features)["token_ids"].shape[-1] < features["token_ids"].shape[-1]
    trimmed = (model.encode_queries(texts, batch_size=2), model.encode_documents(texts, batch_size=2))
    model.trim_padding = False
    fixed = (model.encode_queries(texts, batch_size=2), model.encode_documents(texts, batch_size=2))
    one_by_one = np.concatenate([model.encode_documents([t]) for t in texts])
    for got, want in zip(trimmed, fixed):
        np.testing.assert_allclose(got, want, atol=2e-5)
    # Length-sorted batching must hand back vectors in the caller's order.
    np.testing.assert_allclose(trimmed[1], one_by_one, atol=2e-5)
    stacked = model({"query": tf.constant(QUERIES[:2]), "document": tf.constant(DOCUMENTS[:2])})
    model.trim_padding = True
    np.testing.assert_allclose(model({"query": tf.constant(QUERIES[:2]), "document": tf.constant(DOCUMENTS[:2])}), stacked, atol=2e-5)


def test_sequence_lengths_are_separate_for_queries_and_documents(t5_vocabulary):
    model = tiny(t5_vocabulary)
    text = tf.constant([" ".join(["word"] * 50)])
    assert model.query_preprocessor(text)["token_ids"].shape[-1] == 12
    assert model.document_preprocessor(text)["token_ids"].shape[-1] == 20
    ids = model.query_preprocessor(tf.constant(["hello"]))["token_ids"].numpy()[0]
    assert 1 in ids.tolist() and ids[-1] == 0  # EOS appended, then pad=0


def test_similarity_is_cosine():
    q = np.array([[3.0, 4.0], [1.0, 0.0]])
    d = np.array([[0.0, 2.0], [1.0, 1.0], [-1.0, 0.0]])
    got = DualEncoder.similarity(q, d)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
    np.testing.assert_allclose(got, qn @ dn.T, rtol=1e-6)
    with pytest.raises(ValueError, match=r"same D.*\(2, 2\).*\(1, 3\)"):
        DualEncoder.similarity(q, np.ones((1, 3)))


def test_call_stacks_query_document_and_hard_negatives(t5_vocabulary):
    model = tiny(t5_vocabulary)
    out = model(
        {
            "query": tf.constant(QUERIES[:2]),
            "document": tf.constant(DOCUMENTS[:2]),
            "negatives": tf.constant([[DOCUMENTS[2], DOCUMENTS[3]], [DOCUMENTS[4], DOCUMENTS[5]]]),
        }
    ).numpy()
    assert out.shape == (2, 4, 64)
    np.testing.assert_allclose(out[:, 0], model.encode_queries(QUERIES[:2]), atol=1e-5)
    np.testing.assert_allclose(out[:, 1], model.encode_documents(DOCUMENTS[:2]), atol=1e-5)
    np.testing.assert_allclose(out[1, 3], model.encode_documents([DOCUMENTS[5]])[0], atol=1e-5)


def _train_batch():
    features = {"query": tf.constant(QUERIES), "document": tf.constant(DOCUMENTS)}
    ids = np.stack([np.arange(8), np.arange(8) + 100], axis=1).astype(np.int64)
    return features, ids


LOSSES = {
    "in_batch": lambda: InBatchSoftmaxLoss(temperature=0.01),
    "samtone": lambda: SamToNeLoss(temperature=0.01, mask_duplicates=True),
    "pair": lambda: PairLoss(temperature=0.01),
}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_tiny_dual_encoder_trains_and_loss_falls(t5_vocabulary, architecture, loss):
    model = tiny(t5_vocabulary, architecture)
    model.compile(optimizer=keras.optimizers.Adafactor(learning_rate=1e-2), loss=LOSSES[loss]())
    features, ids = _train_batch()
    before = model.evaluate(features, ids, batch_size=8, verbose=0)
    dataset = tf.data.Dataset.from_tensors((features, ids)).repeat(20)
    model.fit(dataset, epochs=1, verbose=0)
    after = model.evaluate(features, ids, batch_size=8, verbose=0)
    assert np.isfinite(after)
    assert after < 0.8 * before, (before, after)


def test_compile_takes_a_loss_name_from_the_registry(t5_vocabulary):
    model = tiny(t5_vocabulary, "ade_spl")
    model.compile(optimizer=keras.optimizers.Adafactor(learning_rate=1e-2), loss="in_batch")
    assert type(model.loss) is InBatchSoftmaxLoss and model.loss.get_config() == InBatchSoftmaxLoss().get_config()
    features, ids = _train_batch()
    want = InBatchSoftmaxLoss()(ids, model(features))
    assert model.evaluate(features, ids, batch_size=8, verbose=0) == pytest.approx(float(want), rel=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_keras_save_and_load_reproduces_embeddings(t5_vocabulary, architecture, tmp_path):
    model = tiny(t5_vocabulary, architecture, embedding_dim=48)
    model.compile(optimizer=keras.optimizers.Adafactor(learning_rate=1e-2), loss=SamToNeLoss())
    model.fit(tf.data.Dataset.from_tensors(_train_batch()).repeat(2), verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, DualEncoder) and restored.architecture == architecture
    assert restored.embedding_dim == 48
    np.testing.assert_allclose(restored.encode_queries(QUERIES), model.encode_queries(QUERIES), atol=1e-6)
    np.testing.assert_allclose(restored.encode_documents(DOCUMENTS), model.encode_documents(DOCUMENTS), atol=1e-6)
    # The vocabulary travelled inside the archive.
    assert restored.query_preprocessor.tokenizer.vocabulary_size() == 32000


def test_dual_encoder_rejects_bad_configs(t5_vocabulary, tmp_path):
    with pytest.raises(ValueError, match=r"architecture='twin' is not one of \['sde', 'ade', 'ade_spl'\]"):
        tiny(t5_vocabulary, "twin")
    with pytest.raises(ValueError, match=r"size='huge'.*valid|size='huge' is not one of"):
        build_t5_dual_encoder("huge", vocabulary=t5_vocabulary)
    with pytest.raises(ValueError, match=r"query_sequence_length=1"):
        build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, query_sequence_length=1)
    with pytest.raises(FileNotFoundError, match=r"nope\.model"):
        build_t5_dual_encoder("tiny", vocabulary=tmp_path / "nope.model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"this is not a sentencepiece model")
    with pytest.raises(ValueError, match=r"bad\.model.*not a valid SentencePiece model"):
        build_t5_dual_encoder("tiny", vocabulary=bad)
    model = tiny(t5_vocabulary, "ade")
    with pytest.raises(ValueError, match=r"sde.*document_tower=None"):
        DualEncoder(
            model.query_tower, model.query_preprocessor, model.document_preprocessor, model.document_tower, "sde"
        )
    with pytest.raises(ValueError, match=r"'ade' needs a separate `document_tower`"):
        DualEncoder(model.query_tower, model.query_preprocessor, model.document_preprocessor, None, "ade")
    with pytest.raises(ValueError, match=r"list of strings, not a single string"):
        model.encode_queries("one query")
    with pytest.raises(ValueError, match=r"item 1 is int"):
        model.encode_documents(["ok", 3])
    with pytest.raises(ValueError, match=r"Unknown DualEncoder input keys \['left'\]"):
        model({"query": tf.constant(["a", "b"]), "document": tf.constant(["c", "d"]), "left": tf.constant(["e", "f"])})
