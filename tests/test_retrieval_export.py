"""`tf-dualenc export --index`: the retrieval SavedModel over an index folder, served and searched with `search --server`;
the model card every export carries."""

import json
import os

import numpy as np
import pytest

from test_export import CORPUS, DOC_IDS
from test_models import QUERIES, tiny
from tf_dualenc.serving.client import ServingClient
from tf_dualenc.serving.local_server import LocalModelServer
from tf_dualenc import cli
from tf_dualenc.export import MODEL_CARD_PATH, export_encoder, load_export, read_manifest
from tf_dualenc.indexing import RetrievalIndex, build_index


@pytest.fixture(scope="module")
def exported(tmp_path_factory, t5_vocabulary):
    """A trained-looking run folder (model.keras + its training config and validation metrics), an index of its
    documents, and the encoder and retrieval exports the CLI writes from them."""
    root = tmp_path_factory.mktemp("retrieval_export")
    model = tiny(t5_vocabulary, "ade_spl")
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "train_config.json").write_text(json.dumps({"model": "t5", "size": "tiny", "loss": "samtone", "query_length": 12}))
    (run / "validation.json").write_text(json.dumps({"split": "dev", "queries": 5, "metric": "NDCG@10", "best_step": 40,
                                                     "best_value": 0.5123, "history": []}))
    build_index(zip(DOC_IDS, CORPUS, model.encode_documents(CORPUS)), root / "index", dimension=model.embedding_dim,
                count=len(DOC_IDS), model_info={"model_name": "tiny_search"}, print_fn=lambda *_: None)
    base = root / "models"
    # The CLI's encoder export is tested in test_export.py; here only its model card matters.
    export_encoder(model, str(base), "tiny", source=str(run / "model.keras"))
    assert cli.main(["export", "--model", str(run / "model.keras"), "--export-base", str(base), "--model-name", "tiny_search",
                     "--index", str(root / "index"), "--top-k", "3"]) == 0
    return model, root


def _want(model, root, queries, k=3):
    hits = RetrievalIndex.load(str(root / "index")).search(queries, model.encode_queries, k=k)
    return [[hit["id"] for hit in row] for row in hits]


def test_export_index_returns_the_top_k_ids_of_the_index_search(exported):
    import tensorflow as tf

    model, root = exported
    path = root / "models" / "tiny_search" / "1"
    manifest = read_manifest(str(path))
    assert manifest["kind"] == "retrieval" and manifest["k"] == 3 and manifest["index"] == "brute_force"
    assert manifest["index_folder"] == str(root / "index") and manifest["num_documents"] == len(DOC_IDS)
    got = load_export(str(path)).signatures["search"](text=tf.constant(QUERIES[:4]))
    ids = [[doc.decode() for doc in row] for row in got["document_ids"].numpy()]
    assert ids == _want(model, root, QUERIES[:4])


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_search_server_searches_with_a_served_retrieval_export(exported, transport, capsys):
    model, root = exported
    base = root / "models"
    with LocalModelServer({"tiny": str(base / "tiny"), "tiny_search": str(base / "tiny_search")}, grpc_port=0, rest_port=0) as server:
        address = f"127.0.0.1:{server.grpc_port}" if transport == "grpc" else f"http://127.0.0.1:{server.rest_port}"
        assert ServingClient(address, "tiny_search").export_kind() == "retrieval"
        assert ServingClient(address, "tiny").export_kind() == "encoder"
        capsys.readouterr()
        assert cli.main(["search", "--server", address, "--model-name", "tiny_search", "--query", QUERIES[0], "--query", QUERIES[1],
                         "--json"]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [[hit["id"] for hit in line["hits"]] for line in lines] == _want(model, root, QUERIES[:2])
        # --index adds the texts; the index's recorded model name is the default --model-name.
        assert cli.main(["search", "--server", address, "--index", str(root / "index"), "--query", QUERIES[0], "--top-k", "2", "--json"]) == 0
        hits = json.loads(capsys.readouterr().out)["hits"]
        assert [hit["id"] for hit in hits] == _want(model, root, QUERIES[:1])[0][:2]
        assert hits[0]["text"] == CORPUS[DOC_IDS.index(hits[0]["id"])]

        assert cli.main(["search", "--server", address, "--model-name", "tiny_search", "--query", "x", "--top-k", "5"]) == 2
        assert "returns 3 hits per query" in capsys.readouterr().err
        assert cli.main(["search", "--server", address, "--model-name", "tiny", "--query", "x"]) == 2
        assert "is an encoder export: give --index DIR" in capsys.readouterr().err


def test_export_index_refuses_a_folder_that_is_not_an_index(exported, tmp_path, capsys):
    _, root = exported
    assert cli.main(["export", "--model", str(root / "run" / "model.keras"), "--export-base", str(tmp_path / "models"),
                     "--index", str(tmp_path)]) == 2
    assert f"{tmp_path} is not an index folder (no manifest.json)" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_export_index_refuses_an_index_of_another_embedding_size(exported, tmp_path, capsys):
    _, root = exported
    vectors = np.random.default_rng(0).normal(size=(len(DOC_IDS), 32)).astype(np.float32)
    build_index(zip(DOC_IDS, CORPUS, vectors), tmp_path / "index32", dimension=32, count=len(DOC_IDS), print_fn=lambda *_: None)
    assert cli.main(["export", "--model", str(root / "run" / "model.keras"), "--export-base", str(tmp_path / "models"),
                     "--index", str(tmp_path / "index32")]) == 2
    error = capsys.readouterr().err
    assert f"--index {tmp_path / 'index32'}: its embeddings have size 32" in error and "embeds into 64" in error


def test_export_index_refuses_an_index_whose_recorded_search_fuses_bm25(exported, tmp_path, capsys):
    import shutil

    from tf_dualenc.indexing.retrieval_index import record_search

    model, root = exported
    shutil.copytree(root / "index", tmp_path / "fused")
    record_search(str(tmp_path / "fused"), {"fusion": "interpolate", "weight": 0.6, "depth": 100})
    args = ["export", "--model", str(root / "run" / "model.keras"), "--export-base", str(tmp_path / "models"), "--index",
            str(tmp_path / "fused"), "--top-k", "3"]
    assert cli.main(args) == 2
    error = capsys.readouterr().err
    assert "records its search as BM25 fused with dense (interpolate, dense weight 0.6" in error and "--dense-only" in error
    assert not (tmp_path / "models").exists()
    assert cli.main(args + ["--dense-only"]) == 0
    assert read_manifest(str(tmp_path / "models" / "dual_encoder_retrieval" / "1"))["kind"] == "retrieval"
    # The index itself answers the recorded search: dense and BM25 interpolated at the recorded weight.
    from tf_dualenc.evaluation.hybrid import interpolate_runs
    from tf_dualenc.evaluation.trec_metrics import rank

    index = RetrievalIndex.load(str(tmp_path / "fused"))
    got = index.search_recorded(QUERIES[:2], model.encode_queries, k=3)
    dense = {str(i): {h["id"]: h["score"] for h in hits} for i, hits in enumerate(index.search(QUERIES[:2], model.encode_queries,
                                                                                              k=len(index), with_text=False))}
    fused = interpolate_runs(dense, index.lexical_run(QUERIES[:2], depth=100), 0.6)
    assert [[h["id"] for h in hits] for hits in got] == [rank(fused[str(i)])[:3] for i in range(2)]
    # The command line answers the recorded search by default, the dense ranking with --dense.
    encoder = str(root / "models" / "tiny" / "1")
    for flags, want in (([], rank(fused["0"])[:3]), (["--dense"], _want(model, root, QUERIES[:1])[0])):
        capsys.readouterr()
        assert cli.main(["search", "--index", str(tmp_path / "fused"), "--model", encoder, "--query", QUERIES[0], "--top-k", "3",
                         "--json", *flags]) == 0
        captured = capsys.readouterr()
        assert [hit["id"] for hit in json.loads(captured.out)["hits"]] == want
        assert ("the index's recorded search, BM25 + dense (interpolate, dense weight 0.6" in captured.err) == (not flags)


def test_top_k_without_index_is_refused(exported, tmp_path, capsys):
    _, root = exported
    assert cli.main(["export", "--model", str(root / "run" / "model.keras"), "--export-base", str(tmp_path), "--top-k", "3"]) == 2
    assert "give --index DIR too" in capsys.readouterr().err


def test_every_kind_of_export_carries_a_model_card_with_its_signatures_and_budgets(exported, tmp_path, t5_vocabulary):
    from tf_dualenc.export import export_cross_encoder
    from tf_dualenc.models import build_t5_cross_encoder

    _, root = exported
    encoder = (root / "models" / "tiny" / "1" / MODEL_CARD_PATH).read_text()
    retrieval = (root / "models" / "tiny_search" / "1" / MODEL_CARD_PATH).read_text()
    reranker = build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=40, dropout=0.0)
    cross = (tmp_path / "models" / "reranker" / "1" / MODEL_CARD_PATH)
    export_cross_encoder(reranker, str(tmp_path / "models"), "reranker")
    cross = cross.read_text()

    for card in (encoder, retrieval):
        assert "queries 12 tokens, documents 20 tokens" in card
        assert "T5 tiny towers" in card and "- loss: samtone" in card  # from train_config.json next to the .keras
        assert "best NDCG@10 0.5123 at step 40" in card  # from validation.json
    assert "| `encode_query` | `text` string [B] | `embedding` float [B, 64] |" in encoder
    assert "| `encode_document` |" in encoder and "curl -s http://localhost:8501/v1/models/tiny:predict" in encoder
    assert "| `search` | `text` string [B] | `document_ids` string [B, 3], `scores` float [B, 3] |" in retrieval
    assert "| `search_embedding` | `embedding` float [B, 64] |" in retrieval
    assert "brute_force over 40 documents, top 3 per query" in retrieval
    assert 'ServingClient("localhost:8500", "tiny_search")' in retrieval
    assert "tf-dualenc search --server localhost:8500 --model-name tiny_search" in retrieval
    assert "| `score` | `document` string [B], `query` string [B] | `score` float [B] |" in cross
    assert "40 tokens per (query, document) pair" in cross and "no train_config.json next to the model" in cross
    assert os.path.isfile(root / "models" / "tiny_search" / "1" / "assets.extra" / "tf_dualenc_export.json")
