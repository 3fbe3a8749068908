"""The pipeline's optional cascade: a re-ranker kept only when it raises validation, pushed beside the encoder, and the
served search that answers exactly the ranking the check evaluated."""

import json
import os

import numpy as np
import pytest

from tf_dualenc.evaluation.rerank_evaluation import combine_reranking, cross_encoder_scores
from tf_dualenc.evaluation.trec_metrics import rank
from tf_dualenc.indexing import RetrievalIndex, build_index
from tf_dualenc.indexing.retrieval_index import record_search
from tf_dualenc.reranking import rerank_recorded_search
from tf_dualenc.tfx.components.reranker_trainer import cascade_decision

WORDS = ["vitamin", "bone", "density", "protein", "cell", "virus", "gene", "heart", "brain", "blood", "sleep", "diet"]
DOCUMENTS = [" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(4)) for i in range(16)]
QUERIES = ["vitamin bone", "virus gene cell", "sleep diet heart"]


def _encoder(texts, dimension=8):
    """A deterministic stand-in for a query/document tower: a sum of one fixed random vector per word and position,
    L2-normalised (no two texts here tie)."""
    vectors = np.zeros((len(texts), dimension), np.float32)
    for row, text in enumerate(texts):
        for position, word in enumerate(text.split()):
            vectors[row] += np.random.default_rng(sum(map(ord, word)) * 31 + position).normal(size=dimension)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)


def _overlap_scorer(queries, documents):
    """A stand-in cross-encoder: words shared by the query and the document, with a small length penalty."""
    return np.asarray([len(set(q.split()) & set(d.split())) - 0.01 * len(d.split()) for q, d in zip(queries, documents)], np.float32)


@pytest.fixture
def index_folder(tmp_path):
    ids = [f"d{i}" for i in range(len(DOCUMENTS))]
    build_index(zip(ids, DOCUMENTS, _encoder(DOCUMENTS)), tmp_path / "index", dimension=8, count=len(ids), method="brute_force",
                print_fn=lambda *_: None)
    return str(tmp_path / "index")


@pytest.mark.parametrize("fusion", ["dense", "interpolate"])
def test_recorded_cascade_ranks_as_evaluation_combines_the_same_first_stage(index_folder, fusion):
    search = {"fusion": fusion, "weight": 0.6 if fusion == "interpolate" else None, "depth": 100,
              "rerank": {"model_name": "m_reranker", "version": 1, "export": "/unused", "k": 5, "weight": 0.4}}
    record_search(index_folder, search)
    index = RetrievalIndex.load(index_folder)
    got = rerank_recorded_search(index, QUERIES, _encoder, _overlap_scorer, k=7)
    # Brute force: the first stage's whole run, its top 5 re-scored, combined as the pipeline's check combined them.
    first = index.search_recorded(QUERIES, _encoder, k=len(index))
    run = {str(i): {hit["id"]: hit["score"] for hit in hits} for i, hits in enumerate(first)}
    text_of = {hit["id"]: hit["text"] for hits in first for hit in hits}
    cross = cross_encoder_scores(run, dict(zip(map(str, range(len(QUERIES))), QUERIES)), text_of.get, _overlap_scorer, 5)
    want = combine_reranking(run, cross, 0.4)
    for i, hits in enumerate(got):
        assert [hit["id"] for hit in hits] == rank(want[str(i)])[:7]
        assert [hit["retrieval_score"] for hit in hits[5:]] == [hit["score"] for hit in hits[5:]]
        assert all("rerank_score" in hit for hit in hits[:5]) and not any("rerank_score" in hit for hit in hits[5:])
        assert [hit["score"] for hit in hits[:5]] == sorted((hit["score"] for hit in hits[:5]), reverse=True)


def test_an_index_without_a_recorded_reranker_is_refused_by_the_cascade(index_folder):
    index = RetrievalIndex.load(index_folder)
    with pytest.raises(ValueError, match="records no re-ranker"):
        rerank_recorded_search(index, QUERIES, _encoder, _overlap_scorer)


def test_the_cascade_is_kept_only_when_it_raises_the_validation_metric():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": {"x": 0.9, "y": 0.8, "a": 0.7, "z": 0.1}, "q2": {"b": 0.9, "x": 0.5, "y": 0.4}}
    oracle = {"q1": {"x": 0.0, "y": 0.0, "a": 5.0}, "q2": {"b": 5.0, "x": 0.0, "y": 0.0}}
    kept, check = cascade_decision(qrels, run, oracle, "NDCG@10", "auto")
    assert kept and check["reranked"] > check["retrieval"] and 0 < check["weight"] <= 1 and "raises validation" in check["reason"]
    adverse = {"q1": {"x": 5.0, "y": 4.0, "a": 0.0}, "q2": {"b": 0.0, "x": 5.0, "y": 4.0}}
    kept, check = cascade_decision(qrels, run, adverse, "NDCG@10", "auto")
    assert not kept and "weight on validation is 0" in check["reason"]
    kept, check = cascade_decision(qrels, run, adverse, "NDCG@10", 1.0)
    assert not kept and "lowers validation NDCG@10" in check["reason"]
    # A re-ranker that changes nothing on validation is not worth its latency.
    kept, check = cascade_decision(qrels, {"q1": {"a": 0.9, "x": 0.1}, "q2": {"b": 0.9}}, {"q1": {"a": 1.0, "x": 0.0}, "q2": {"b": 1.0}},
                                   "NDCG@10", 0.5)
    assert not kept and "does not help" in check["reason"]


def _fake_saved_model(folder, marker):
    os.makedirs(os.path.join(folder, "assets.extra"))
    open(os.path.join(folder, "saved_model.pb"), "w").write(marker)
    with open(os.path.join(folder, "assets.extra", "tf_dualenc_export.json"), "w") as f:
        json.dump({"marker": marker}, f)
    return str(folder)


def test_push_serves_a_kept_reranker_beside_the_encoder_under_one_version(tmp_path, index_folder, monkeypatch):
    from tf_dualenc.tfx.components import serving_pusher

    record_search(index_folder, {"fusion": "dense", "weight": None, "depth": 100})
    serving = tmp_path / "serving"
    reranker = {"export": _fake_saved_model(tmp_path / "r1", "cross"), "model_name": "m_reranker", "k": 20, "weight": 0.4,
                "chosen_on": "validation"}
    first = serving_pusher.push("uri://model/1", _fake_saved_model(tmp_path / "e1", "one"), index_folder, str(serving), "m",
                                reranker=reranker)
    assert first["version"] == 1 and first["reranker_dir"] == str(serving / "m_reranker" / "1")
    assert json.loads((serving / "m_reranker" / "1" / "assets.extra" / "tf_dualenc_export.json").read_text())["marker"] == "cross"
    config = (serving / "models.config").read_text()
    assert 'name: "m"' in config and 'name: "m_reranker"' in config
    search = json.loads((serving / "indexes" / "m" / "1" / "manifest.json").read_text())["search"]
    assert search["fusion"] == "dense" and search["rerank"] == {
        "model_name": "m_reranker", "version": 1, "export": str(serving / "m_reranker" / "1"), "k": 20, "weight": 0.4,
        "chosen_on": "validation"}
    assert serving_pusher.push("uri://model/1", _fake_saved_model(tmp_path / "e1b", "one"), index_folder, str(serving), "m",
                               reranker=reranker) == dict(first, new=False)
    # A model without a kept re-ranker gets the next version of all three; the stale re-ranker is not in its search.
    second = serving_pusher.push("uri://model/2", _fake_saved_model(tmp_path / "e2", "two"), index_folder, str(serving), "m")
    assert second["version"] == 2 and "reranker_dir" not in second and "rerank" not in (second["search"] or {})
    # A failed model copy takes back the index and re-ranker versions it had already put in place.
    before = sorted(str(p.relative_to(serving)) for p in serving.rglob("*"))
    real_copytree = serving_pusher.shutil.copytree

    def failing_copytree(source, destination, *args, **kwargs):
        if str(source) == str(tmp_path / "e3"):  # the encoder, copied last
            raise OSError("disk full")
        return real_copytree(source, destination, *args, **kwargs)

    monkeypatch.setattr(serving_pusher.shutil, "copytree", failing_copytree)
    with pytest.raises(OSError, match="disk full"):
        serving_pusher.push("uri://model/3", _fake_saved_model(tmp_path / "e3", "two"), index_folder, str(serving), "m",
                            reranker=dict(reranker, export=_fake_saved_model(tmp_path / "r3", "cross")))
    assert sorted(str(p.relative_to(serving)) for p in serving.rglob("*")) == before


def test_a_reranker_that_was_not_kept_is_not_pushed(tmp_path):
    from tfx.types import standard_artifacts

    from tf_dualenc.tfx.components.serving_pusher import _kept_reranker

    artifact = standard_artifacts.Model()
    artifact.uri = str(tmp_path)
    artifact.set_int_custom_property("kept", 0)
    assert _kept_reranker(artifact) is None
    artifact.set_int_custom_property("kept", 1)
    artifact.set_string_custom_property("served_name", "m_reranker")
    (tmp_path / "reranker.json").write_text(json.dumps({"rerank_k": 20, "weight": 0.3, "check": {"metric": "NDCG@10", "retrieval": 0.5,
                                                                                                  "reranked": 0.6}}))
    assert _kept_reranker(artifact) == {"export": str(tmp_path / "Format-Serving"), "model_name": "m_reranker", "k": 20, "weight": 0.3,
                                        "chosen_on": "validation", "metric": "NDCG@10",
                                        "validation": {"search": 0.5, "cascade": 0.6}}


def test_pipeline_config_checks_the_reranker_section_whole(tmp_path):
    from pipeline_data import tiny_pipeline_config, write_tiny_beir

    data = write_tiny_beir(tmp_path / "data")
    config = tiny_pipeline_config(tmp_path / "root", data, "spiece.model",
                                  reranker={"tower": "roberta", "weight": 0.0, "depth": 3, "skip_top": 1, "list_size": 4, "steps": 0})
    with pytest.raises(ValueError) as error:
        config.validate(check_paths=False)
    message = str(error.value)
    for part in ("reranker.tower='roberta' (valid: ['bert', 't5'])", "reranker.weight=0.0 (must be 'auto'",
                 "reranker.steps=0 (must be an integer >= 1)", "leaves fewer than list_size - 1 = 3 negatives"):
        assert part in message, part
    with pytest.raises(ValueError, match=r"reranker: unknown key\(s\) \['epochs'\]; valid keys: \['tower'"):
        tiny_pipeline_config(tmp_path / "root", data, "spiece.model", reranker={"epochs": 2}).validate(check_paths=False)
    config = tiny_pipeline_config(tmp_path / "root", data, "spiece.model", reranker={"steps": 3})
    assert config.with_overrides(["reranker.rerank_k=7"]).reranker == {"steps": 3, "rerank_k": 7}
    config.validate(check_paths=False)
    with pytest.raises(ValueError, match="reranker.model_name='m' is the encoder's model_name"):
        tiny_pipeline_config(tmp_path / "root", data, "spiece.model", model_name="m", reranker={"model_name": "m"}).validate(
            check_paths=False)


def test_a_pipeline_with_a_reranker_section_compiles_for_vertex_with_the_cascade_before_the_push(tmp_path):
    from pipeline_data import tiny_pipeline_config
    from tf_dualenc.tfx.run_pipeline import compile_pipeline

    config = tiny_pipeline_config("gs://bucket/root", "gs://bucket/data", "gs://bucket/spiece.model", image="gcr.io/p/tf-dualenc:1",
                                  serving_dir="gs://bucket/serving", reranker={"steps": 50, "rerank_k": 20})
    spec = json.loads(open(compile_pipeline(config, str(tmp_path / "pipeline.json"), print_fn=lambda *a: None)).read())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert {"RetrievalEvaluator", "Trainer", "RetrievalExampleGen"} <= set(tasks["RerankerTrainer"]["dependentTasks"])
    assert "RerankerTrainer" in tasks["ServingPusher"]["dependentTasks"]
    (section,) = tasks["RerankerTrainer"]["inputs"]["parameters"]["section"]["runtimeValue"]["constantValue"].values()
    assert json.loads(section) == {"steps": 50, "rerank_k": 20}
