"""bfloat16: mixed-precision training (float32 variables, embeddings and loss; a float32 model comes out) and inference
(`--precision bfloat16` for evaluate, export and build-index: bfloat16 compute, float32 embeddings and signatures)."""

import re

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
    with pytest.raises(ValueError, match=r"mixed_precision='float16' \(valid: \['float32', 'bfloat16', 'auto'\]\)"):
        TrainConfig(data=".", mixed_precision="float16").validate()


def test_pipeline_train_block_takes_mini_batch_size_and_mixed_precision(tmp_path):
    from pipeline_data import write_tiny_beir
    from tf_dualenc.tfx.pipeline_config import PipelineConfig

    data = write_tiny_beir(tmp_path / "data")
    train_block = {"model": "bert", "preset": "x", "batch_size": 8, "mini_batch_size": 4, "mixed_precision": "bfloat16"}
    PipelineConfig(data=data, train=train_block, train_steps=10).validate()
    with pytest.raises(ValueError, match=r"train: .*mini_batch_size=3 \(valid: a positive integer dividing batch_size=8"):
        PipelineConfig(data=data, train=dict(train_block, mini_batch_size=3), train_steps=10).validate()


# ---- inference: `--precision bfloat16` for evaluate, export and build-index -------------------------------------------

# argparse's message, which lists the valid values (quoted up to Python 3.11, bare after).
INVALID_PRECISION = r"invalid choice: '?float16'? \(choose from '?float32'?, '?bfloat16'?\)"


def _cosines(a, b):
    return np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_bfloat16_encoding_is_float32_unit_vectors_close_to_float32(t5_vocabulary):
    from test_models import DOCUMENTS, QUERIES, tiny
    from tf_dualenc.precision import model_precision, set_precision

    model = tiny(t5_vocabulary)
    want = model.encode_queries(QUERIES), model.encode_documents(DOCUMENTS)
    assert model_precision(set_precision(model, "bfloat16")) == "bfloat16"
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    assert {layer.dtype_policy.name for layer in layers} == {"mixed_bfloat16", "int32"}  # the tokenisers keep int32
    assert {v.dtype for v in model.weights} == {"float32"}
    got = model.encode_queries(QUERIES), model.encode_documents(DOCUMENTS)
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(g, axis=-1), 1.0, atol=1e-5)  # normalised in float32
        assert _cosines(g, w).min() >= 0.99
        assert np.abs(g - w).max() > 0  # it really computed in bfloat16
    # Back in float32 (the encode function is traced again for the new policy): the float32 vectors exactly.
    set_precision(model, "float32")
    np.testing.assert_array_equal(model.encode_queries(QUERIES), want[0])
    with pytest.raises(ValueError, match=r"precision='float16' \(valid: \['float32', 'bfloat16'\]\)"):
        set_precision(model, "float16")


def _bfloat16_nodes(saved_model_dir):
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    with open(f"{saved_model_dir}/saved_model.pb", "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    return {node.op for graph in saved_model.meta_graphs for function in graph.graph_def.library.function
            for node in function.node_def if node.attr["T"].type == types_pb2.DT_BFLOAT16}


def test_bfloat16_export_keeps_float32_signatures_passes_the_op_audit_and_is_indexed_as_such(t5_vocabulary, tmp_path):
    import json

    import tensorflow as tf

    from test_models import DOCUMENTS, QUERIES, tiny
    from tf_dualenc import cli
    from tf_dualenc.export import MODEL_CARD_PATH, load_export, read_manifest
    from tf_dualenc.indexing.build_index_pipeline import index_corpus, index_embeddings

    model = tiny(t5_vocabulary)
    model.save(tmp_path / "m.keras")
    assert cli.main(["export", "--model", str(tmp_path / "m.keras"), "--export-base", str(tmp_path / "exports"), "--model-name", "bf16",
                     "--precision", "bfloat16"]) == 0
    path = str(tmp_path / "exports" / "bf16" / "1")
    manifest = read_manifest(path)
    assert manifest["precision"] == "bfloat16" and manifest["op_audit"]["stock_tf_serving_compatible"]
    assert "computes in bfloat16" in (tmp_path / "exports" / "bf16" / "1" / MODEL_CARD_PATH).read_text()
    assert {"MatMul", "BatchMatMulV2"} & _bfloat16_nodes(path)  # the graph multiplies in bfloat16
    loaded = load_export(path)
    for signature, texts, want in (("encode_query", QUERIES, model.encode_queries(QUERIES)),
                                   ("encode_document", DOCUMENTS, model.encode_documents(DOCUMENTS))):
        function = loaded.signatures[signature]
        assert function.structured_input_signature[1]["text"].dtype == "string"
        assert function.structured_outputs["embedding"].dtype == "float32"
        got = function(text=tf.constant(texts))["embedding"].numpy()
        assert got.dtype == np.float32 and _cosines(got, want).min() >= 0.99
    # The index records what its export computes in; asking build-index for another precision is refused up front.
    documents = list(zip([f"d{i}" for i in range(len(DOCUMENTS))], DOCUMENTS))
    embeddings = loaded.signatures["encode_document"](text=tf.constant(DOCUMENTS))["embedding"].numpy()
    index = index_embeddings(path, documents, embeddings, str(tmp_path / "index"), print_fn=lambda *_: None)
    assert index["model"]["precision"] == "bfloat16"
    assert json.loads((tmp_path / "index" / "manifest.json").read_text())["model"]["precision"] == "bfloat16"
    with pytest.raises(ValueError, match=r"--precision float32: .* computes in bfloat16 .*tf-dualenc export --precision float32"):
        index_corpus(path, str(tmp_path / "corpus.jsonl"), str(tmp_path / "index2"), precision="float32")


@pytest.mark.parametrize("argv", [
    ["evaluate", "--model", "m.keras", "--data", "d", "--output-dir", "o"],
    ["export", "--model", "m.keras", "--export-base", "e"],
])
def test_cli_refuses_an_unknown_precision_listing_the_valid_ones(argv, capsys):
    from tf_dualenc import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(argv + ["--precision", "float16"])
    assert re.search(INVALID_PRECISION, capsys.readouterr().err)


def test_build_index_refuses_an_unknown_precision_listing_the_valid_ones(capsys):
    from tf_dualenc.indexing.build_index_pipeline import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--corpus", "c.jsonl", "--model", "m", "--output", "o", "--precision", "float16"])
    assert re.search(INVALID_PRECISION, capsys.readouterr().err)
    assert parse_args(["--corpus", "c.jsonl", "--model", "m", "--output", "o"])[0].precision is None


def test_evaluate_records_the_precision_in_its_report(t5_vocabulary, tmp_path):
    import json

    from test_beir import write_beir
    from test_models import tiny
    from tf_dualenc import cli

    tiny(t5_vocabulary).save(tmp_path / "m.keras")
    data = write_beir(tmp_path / "data")
    for precision in ("bfloat16", "float32"):
        out = tmp_path / precision
        assert cli.main(["evaluate", "--model", str(tmp_path / "m.keras"), "--data", str(data), "--output-dir", str(out), "--k", "2",
                         "--measures", "P@1", "--precision", precision]) == 0
        assert json.loads((out / "report.json").read_text())["precision"] == precision
    assert cli.main(["evaluate", "--model", "bm25", "--data", str(data), "--output-dir", str(tmp_path / "b"), "--precision", "bfloat16"]) == 2


def test_auto_precision_is_bfloat16_only_where_the_hardware_computes_it(tmp_path, monkeypatch):
    from tf_dualenc import precision

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16\n")
    assert precision.cpu_flags(str(cpuinfo)) >= {"avx512_bf16", "amx_bf16"}
    assert precision.cpu_flags(str(tmp_path / "absent")) == set()
    monkeypatch.setattr(precision, "cpu_flags", lambda path="/proc/cpuinfo": {"avx2", "avx512f"})
    assert precision.resolve_precision("auto") == ("float32", "auto: CPU without AVX-512-BF16 or AMX")
    monkeypatch.setattr(precision, "cpu_flags", lambda path="/proc/cpuinfo": {"avx2", "avx512_bf16"})
    assert precision.resolve_precision("auto") == ("bfloat16", "auto: CPU with avx512_bf16")
    assert precision.resolve_precision("float32") == ("float32", "as configured")
    with pytest.raises(ValueError, match=r"precision='half' \(valid: \['float32', 'bfloat16'\]\)"):
        precision.resolve_precision("half")
