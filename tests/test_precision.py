"""bfloat16 mixed-precision training: float32 variables, embeddings and loss; a float32 model comes out."""

import numpy as np
import pytest

from test_cached_step import _batch, _config
from test_training import pair_file, tiny_config  # noqa: F401  (pair_file is a fixture)
from tf_dualenc.training import TrainConfig, train


def _loss_and_gradients(model, config, batch):
    import tensorflow as tf

    from tf_dualenc.training.trainer import make_loss

    features, query_ids, document_ids = batch
    with tf.GradientTape() as tape:
        q = model.embed_queries(features["query"], training=True)
        d = model.embed_documents(features["document"], training=True)
        h = model.embed_negatives(features["negatives"], training=True)
        loss = make_loss(config).embedding_loss(q, d, h, query_ids, document_ids)
    gradients = tape.gradient(loss, model.trainable_variables)
    return loss, (q, d, h), [tf.convert_to_tensor(g).numpy() for g in gradients]


def test_bfloat16_loss_and_gradients_match_float32(t5_vocabulary):
    import keras
    import tensorflow as tf

    from tf_dualenc.training.precision import float32_compute, training_precision
    from tf_dualenc.training.trainer import build_model

    config = _config(t5_vocabulary, num_negatives=2, mixed_precision="bfloat16")
    full = build_model(config)
    with training_precision("bfloat16"):
        mixed = build_model(config)
    assert keras.config.dtype_policy().name == "float32"
    assert mixed.dtype_policy.name == "mixed_bfloat16"
    assert {v.dtype for v in mixed.trainable_variables} == {"float32"}
    mixed.set_weights(full.get_weights())
    batch = _batch(full, 2)
    want_loss, _, want = _loss_and_gradients(full, config, batch)
    got_loss, embeddings, got = _loss_and_gradients(mixed, config, batch)
    assert got_loss.dtype == tf.float32 and {e.dtype for e in embeddings} == {tf.float32}
    # bfloat16 keeps 8 significant bits (relative rounding 2^-9 ≈ 2e-3), and τ = 0.01 multiplies what that does to a
    # cosine by 100 in the logits: measured here, the loss moves by 3e-3 and each gradient by 1.4-2.7% (‖Δg‖ / ‖g‖).
    assert float(got_loss) == pytest.approx(float(want_loss), rel=1e-2)
    for g, w, variable in zip(got, want, full.trainable_variables):
        assert np.linalg.norm(g - w) <= 5e-2 * np.linalg.norm(w), variable.path
    # Validation and mining run the bfloat16-trained model in float32: the float32 model's embeddings exactly.
    texts = ["who wrote hamlet", "capital of france"]
    with float32_compute(mixed):
        np.testing.assert_allclose(mixed.encode_queries(texts), full.encode_queries(texts), atol=1e-6)
    assert mixed.dtype_policy.name == "mixed_bfloat16"


@pytest.mark.slow
def test_bfloat16_training_saves_a_float32_model(tmp_path, pair_file, t5_vocabulary):
    import keras

    from tf_dualenc.loading import load_model

    config = tiny_config(pair_file, tmp_path / "run", t5_vocabulary, steps=1, checkpoint_every=1, mixed_precision="bfloat16")
    summary, model = train(config, progress=False, print_fn=lambda *_: None)
    assert np.isfinite(summary["last_loss"])
    assert keras.config.dtype_policy().name == "float32"
    saved = load_model(summary["model"])
    texts = ["who wrote hamlet", "capital of france"]
    for m in (model, saved):
        assert {layer.dtype_policy.compute_dtype for layer in m._flatten_layers()} <= {"float32", "int32"}
        assert m.encode_queries(texts).dtype == np.float32
    np.testing.assert_allclose(saved.encode_documents(texts), model.encode_documents(texts), atol=1e-6)
    # The serving export: string in, float32 embedding out, and a graph stock TF Serving runs.
    from tf_dualenc.export import export_encoder, load_export

    result = export_encoder(saved, str(tmp_path / "models"), "bf16")
    assert result.manifest["op_audit"]["stock_tf_serving_compatible"]
    signature = load_export(result.path).signatures["encode_query"]
    assert signature.structured_input_signature[1]["text"].dtype == "string"
    assert signature.structured_outputs["embedding"].dtype == "float32"


def test_training_config_lists_valid_precisions():
    with pytest.raises(ValueError, match=r"mixed_precision='float16' \(valid: \['float32', 'bfloat16'\]\)"):
        TrainConfig(data=".", mixed_precision="float16").validate()


def test_pipeline_train_block_takes_mini_batch_size_and_mixed_precision(tmp_path):
    from pipeline_data import write_tiny_beir
    from tf_dualenc.tfx.pipeline_config import PipelineConfig

    data = write_tiny_beir(tmp_path / "data")
    train_block = {"model": "bert", "preset": "x", "batch_size": 8, "mini_batch_size": 4, "mixed_precision": "bfloat16"}
    PipelineConfig(data=data, train=train_block).validate()
    with pytest.raises(ValueError, match=r"train: .*mini_batch_size=3 \(valid: a positive integer dividing batch_size=8"):
        PipelineConfig(data=data, train=dict(train_block, mini_batch_size=3)).validate()
