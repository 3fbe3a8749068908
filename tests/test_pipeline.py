"""The TFX pipeline: config validation, the pieces of its components, the Kubeflow V2 compile, and (slow) a whole
local run with caching and failure behaviour."""

import http.server
import json
import os
import re
import shutil
import threading
import zipfile

import numpy as np
import pytest

from pipeline_data import tiny_pipeline_config, write_tiny_beir
from tf_dualenc.tfx.pipeline_config import PipelineConfig
from tf_dualenc.data.fingerprint import fingerprint_inputs


def test_pipeline_config_lists_every_problem_with_valid_values(tmp_path):
    data = write_tiny_beir(tmp_path / "data")
    config = PipelineConfig(data=data, runner="airflow", metric="NDCG@5", threshold=1.5, train_steps=-1,
                            train={"model": "t5", "size": "tiny", "loss": "triplet"}, model_name="bad/name")
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    for expected in ("runner='airflow' (valid: ['local', 'beam', 'kubeflow_v2'])", "metric='NDCG@5' (valid:",
                     "threshold=1.5", "train_steps=-1", "loss='triplet' (valid:", "vocabulary is required", "model_name='bad/name'"):
        assert expected in message


def test_pipeline_config_refuses_keys_the_pipeline_owns_and_unknown_keys(tmp_path):
    data = write_tiny_beir(tmp_path / "data")
    with pytest.raises(ValueError, match=r"train sets \['output_dir'\]"):
        PipelineConfig(data=data, train={"output_dir": "x"}).validate()
    with pytest.raises(ValueError, match=r"train: unknown key\(s\) \['learning_rat'\]"):
        PipelineConfig(data=data, train={"learning_rat": 0.1}).validate()
    path = tmp_path / "p.yaml"
    path.write_text("pipeline_nme: x\n")
    with pytest.raises(ValueError, match=r"p.yaml: unknown key\(s\) \['pipeline_nme'\]; valid keys"):
        PipelineConfig.from_file(str(path))


def test_pipeline_config_needs_evaluation_data_for_pair_files(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"query": "q", "document": "d"}) + "\n")
    with pytest.raises(ValueError, match="eval_data is needed when data are pair files"):
        PipelineConfig(data=str(pairs), train={"model": "bert", "preset": "all-MiniLM-L6-v2"}).validate()
    with pytest.raises(ValueError, match=r"has no qrels/dev.tsv"):
        PipelineConfig(data=write_tiny_beir(tmp_path / "d"), eval_split="dev", train={"model": "bert", "preset": "x"}).validate()


def test_pipeline_config_overrides_reach_training_keys(tmp_path):
    config = PipelineConfig(train={"learning_rate": 0.1}).with_overrides(["train.learning_rate=0.5", "threshold=0.3", "pipeline_name=x"])
    assert config.train == {"learning_rate": 0.5}
    assert config.threshold == 0.3 and config.pipeline_name == "x"
    with pytest.raises(ValueError, match="--set nope: unknown key"):
        config.with_overrides(["nope=1"])


def test_resolved_config_makes_local_paths_absolute_and_fills_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tiny_beir(tmp_path / "data")
    config = PipelineConfig(pipeline_root="runs/p", data="data").resolved()
    assert config.pipeline_root == str(tmp_path / "runs" / "p")
    assert config.metadata_path == str(tmp_path / "runs" / "p" / "metadata.sqlite")
    assert config.serving_dir == str(tmp_path / "runs" / "p" / "serving")
    assert config.eval_data == str(tmp_path / "data")
    remote = PipelineConfig(pipeline_root="gs://bucket/root", data="gs://bucket/data").resolved()
    assert remote.pipeline_root == "gs://bucket/root" and remote.data == "gs://bucket/data"


def test_fingerprint_changes_when_an_input_file_changes(tmp_path):
    data = write_tiny_beir(tmp_path / "data")
    first = fingerprint_inputs(data)
    assert fingerprint_inputs(data) == first
    with open(os.path.join(data, "corpus.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps({"_id": "extra", "title": "", "text": "one more document"}) + "\n")
    assert fingerprint_inputs(data) != first


def test_blessing_needs_the_threshold_and_no_regression():
    from tf_dualenc.tfx.components.retrieval_evaluator import blessing_decision

    assert blessing_decision(0.5, 0.4, None, "NDCG@10") == (True, "NDCG@10 = 0.5000 clears the threshold 0.4000")
    blessed, reason = blessing_decision(0.3, 0.4, None, "NDCG@10")
    assert not blessed and reason == "NDCG@10 = 0.3000 is below the threshold 0.4000"
    blessed, reason = blessing_decision(0.5, 0.4, 0.51, "NDCG@10")
    assert not blessed and "worse than the last blessed model's 0.5100" in reason
    assert blessing_decision(0.51, 0.4, 0.51)[0]  # equal to the baseline is "not worse"
    # The first blessing must beat every reference; equal to one is not better.
    assert blessing_decision(0.6, 0.0, None, "NDCG@10", {"starting_model": 0.55, "bm25": 0.58}) == (
        True, "NDCG@10 = 0.6000 clears the threshold 0.0000 and beats the starting model's 0.5500, the bm25's 0.5800")
    assert blessing_decision(0.55, 0.0, None, "NDCG@10", {"starting_model": 0.55}) == (
        False, "NDCG@10 = 0.5500 does not beat the starting model's 0.5500")
    # Once a model is blessed, the baseline rule applies instead of the references.
    assert blessing_decision(0.5, 0.0, 0.49, "NDCG@10", {"starting_model": 0.6})[0]


def _model(artifact_id):
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.id = artifact_id
    return model


def _blessing(artifact_id, model_id, blessed, baseline_id=0):
    from tfx.types import standard_artifacts

    blessing = standard_artifacts.ModelBlessing()
    blessing.id = artifact_id
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_int_custom_property("baseline_model_id", baseline_id)
    return blessing


def test_baseline_strategy_picks_the_last_blessed_model_other_than_the_current_one():
    from tf_dualenc.tfx.components.baseline_model_strategy import LastBlessedBaselineStrategy

    strategy = LastBlessedBaselineStrategy()

    def baseline(models, blessings):
        result = strategy.resolve_artifacts(None, {"model": [_model(i) for i in models], "model_blessing": blessings})
        return [m.id for m in result["model"]]

    assert baseline([], []) == []
    # First model, not yet evaluated: nothing blessed.
    assert baseline([1], []) == []
    # Model 1 blessed without baseline, and evaluated again unchanged: still no baseline (the same inputs → cache hit).
    assert baseline([1], [_blessing(10, 1, True)]) == []
    # A new model 2: compared with the blessed model 1.
    assert baseline([1, 2], [_blessing(10, 1, True)]) == [1]
    # Model 2 was blessed against 1; re-evaluating 2 resolves 1 again (the inputs of its evaluation).
    assert baseline([1, 2], [_blessing(10, 1, True), _blessing(11, 2, True, baseline_id=1)]) == [1]
    # Model 3 after blessed 2 and unblessed 1 → 2; an unblessed newest model is compared with the last blessed.
    assert baseline([1, 2, 3], [_blessing(10, 1, False), _blessing(11, 2, True)]) == [2]
    assert baseline([1, 2, 3], [_blessing(10, 1, True), _blessing(11, 3, False, baseline_id=1)]) == [1]


def _fake_export(folder, marker):
    os.makedirs(os.path.join(folder, "assets.extra"))
    with open(os.path.join(folder, "assets.extra", "tf_dualenc_export.json"), "w") as f:
        json.dump({"kind": "encoder", "version": 1, "marker": marker}, f)
    with open(os.path.join(folder, "saved_model.pb"), "w") as f:
        f.write(marker)
    return str(folder)


def _fake_index(folder):
    os.makedirs(folder)
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump({"model": {"export": "/somewhere/else", "version": 1}, "files": {}}, f)
    return str(folder)


def test_push_versions_model_and_index_together_and_is_idempotent(tmp_path):
    from tf_dualenc.tfx.components.serving_pusher import push

    serving = tmp_path / "serving"
    first = push("uri://model/1", _fake_export(tmp_path / "e1", "one"), _fake_index(tmp_path / "i1"), str(serving), "scifact")
    assert first["version"] == 1 and first["new"]
    again = push("uri://model/1", _fake_export(tmp_path / "e1b", "one"), _fake_index(tmp_path / "i1b"), str(serving), "scifact")
    assert again == dict(first, new=False)
    second = push("uri://model/2", _fake_export(tmp_path / "e2", "two"), _fake_index(tmp_path / "i2"), str(serving), "scifact")
    assert second["version"] == 2
    assert sorted(os.listdir(serving / "scifact")) == ["1", "2"]
    assert sorted(os.listdir(serving / "indexes" / "scifact")) == ["1", "2"]
    manifest = json.loads((serving / "scifact" / "2" / "assets.extra" / "tf_dualenc_export.json").read_text())
    assert manifest["version"] == 2 and manifest["model_name"] == "scifact" and manifest["marker"] == "two"
    index_manifest = json.loads((serving / "indexes" / "scifact" / "2" / "manifest.json").read_text())
    assert index_manifest["model"]["export"] == str(serving / "scifact" / "2") and index_manifest["model"]["version"] == 2
    config = (serving / "models.config").read_text()
    assert config.count('name: "scifact"') == 1 and f'base_path: "{serving / "scifact"}"' in config
    push("uri://model/3", _fake_export(tmp_path / "e3", "three"), _fake_index(tmp_path / "i3"), str(serving), "other")
    assert 'name: "scifact"' in (serving / "models.config").read_text() and 'name: "other"' in (serving / "models.config").read_text()


def test_failed_push_leaves_the_serving_folder_as_it_was(tmp_path, monkeypatch):
    from tf_dualenc.tfx.components import serving_pusher

    serving = tmp_path / "serving"
    serving_pusher.push("uri://model/1", _fake_export(tmp_path / "e1", "one"), _fake_index(tmp_path / "i1"), str(serving), "m")
    before = sorted(str(p.relative_to(serving)) for p in serving.rglob("*"))
    real_copytree = shutil.copytree

    def failing_copytree(source, destination, *args, **kwargs):
        if "saved_model.pb" in os.listdir(source):
            raise OSError("disk full")
        return real_copytree(source, destination, *args, **kwargs)

    monkeypatch.setattr(serving_pusher.shutil, "copytree", failing_copytree)
    with pytest.raises(OSError, match="disk full"):
        serving_pusher.push("uri://model/2", _fake_export(tmp_path / "e2", "two"), _fake_index(tmp_path / "i2"), str(serving), "m")
    assert sorted(str(p.relative_to(serving)) for p in serving.rglob("*")) == before


def _artifact(kind, uri, artifact_id=0, **strings):
    artifact = kind()
    artifact.uri = str(uri)
    artifact.id = artifact_id
    os.makedirs(artifact.uri, exist_ok=True)
    for name, value in strings.items():
        artifact.set_string_custom_property(name, value)
    return artifact


def _index_by_id(folder):
    from tf_dualenc.indexing import RetrievalIndex

    index = RetrievalIndex.load(str(folder))
    return {doc_id: (index.document(row)["text"], np.asarray(index.embeddings[row])) for row, doc_id in enumerate(index.ids)}


def test_indexer_builds_from_the_evaluators_embeddings_the_index_encoding_would_build(tmp_path, t5_vocabulary, capsys, monkeypatch):
    from test_models import tiny
    from tfx.types import standard_artifacts

    from tf_dualenc.tfx.artifacts import CorpusEmbeddings, RetrievalDataset, RetrievalEvaluation, RetrievalIndexArtifact
    from tf_dualenc.tfx.components import retrieval_evaluator, retrieval_indexer
    from tf_dualenc.export import export_encoder

    data = write_tiny_beir(tmp_path / "data")
    export = export_encoder(tiny(t5_vocabulary), str(tmp_path / "exports"), "tiny").path
    model = _artifact(standard_artifacts.Model, tmp_path / "model", 1)
    shutil.copytree(export, os.path.join(model.uri, "Format-Serving"))
    # The same weights under another Model artifact: its embeddings are not reused, the corpus is encoded.
    other_model = _artifact(standard_artifacts.Model, tmp_path / "other_model", 2)
    shutil.copytree(model.uri, other_model.uri, dirs_exist_ok=True)
    datasets = {"validation_dataset": [_artifact(RetrievalDataset, data, split="train")],
                "eval_dataset": [_artifact(RetrievalDataset, data, split="test")]}
    outputs = {"evaluation": [_artifact(RetrievalEvaluation, tmp_path / "evaluation")],
               "blessing": [_artifact(standard_artifacts.ModelBlessing, tmp_path / "blessing")],
               "corpus_embeddings": [_artifact(CorpusEmbeddings, tmp_path / "embeddings")]}
    # A baseline (an export to load) instead of a starting model to build keeps the test fast; equal to it is blessed.
    retrieval_evaluator.Executor().Do(dict(datasets, model=[model], baseline_model=[other_model]), outputs, {
        "metric": "NDCG@10", "threshold": 0.0, "measures": json.dumps(["NDCG@10"]), "k": 10, "batch_size": 64,
        "bless_against": "[]", "starting_model": "{}", "title_separator": " "})
    saved = outputs["corpus_embeddings"][0]
    assert saved.get_int_custom_property("count") == 64 and saved.get_string_custom_property("model") == model.uri
    # Its encodings show progress on stderr: the corpus the two splits share, once per model, and each model's queries.
    err = capsys.readouterr().err
    assert err.count("encoding documents: 64/64 (100.0%), ") == 2 and "encoding queries: " in err

    def index_with(model_artifact, name):
        index = _artifact(RetrievalIndexArtifact, tmp_path / name)
        retrieval_indexer.Executor().Do(
            {"model": [model_artifact], "blessing": outputs["blessing"], "eval_dataset": datasets["eval_dataset"],
             "corpus_embeddings": outputs["corpus_embeddings"]}, {"index": [index]},
            {"corpus": "", "method": "auto", "brute_force_below": 20_000, "batch_size": 8, "title_separator": " "})
        return index.get_string_custom_property("embeddings"), _index_by_id(tmp_path / name / "index")

    capsys.readouterr()
    reused_source, reused = index_with(model, "reused")
    assert "encoding documents:" not in capsys.readouterr().err  # nothing encoded
    encoded_source, encoded = index_with(other_model, "encoded")
    # The Beam job's one in-process worker encodes the whole corpus: its last line counts against it.
    assert "encoding documents: 64/64 (100.0%), " in capsys.readouterr().err
    monkeypatch.setenv("TF_DUALENC_PROGRESS", "0")  # what `tf-dualenc pipeline run --quiet` sets for its run
    index_with(other_model, "encoded_quietly")
    assert "encoding documents:" not in capsys.readouterr().err
    assert reused_source == "reused from the evaluator"
    assert encoded_source.startswith("encoded: the saved embeddings are of another model")
    # Row order is the Beam job's (length buckets); the index is the same document by document.
    assert sorted(reused) == sorted(encoded) and len(reused) == 64
    for doc_id, (text, vector) in encoded.items():
        assert reused[doc_id][0] == text
        np.testing.assert_allclose(reused[doc_id][1], vector, atol=1e-5)


@pytest.fixture
def beir_server(tmp_path):
    """A local HTTP server holding `tiny.zip` (BEIR layout inside a top folder) and `broken.zip`."""
    root = tmp_path / "www"
    root.mkdir()
    source = write_tiny_beir(tmp_path / "tiny")
    with zipfile.ZipFile(root / "tiny.zip", "w") as z:
        for folder, _, names in os.walk(source):
            for name in names:
                path = os.path.join(folder, name)
                z.write(path, os.path.join("tiny", os.path.relpath(path, source)))
    with zipfile.ZipFile(root / "nolayout.zip", "w") as z:
        z.writestr("nolayout/readme.txt", "no corpus here")
    (root / "broken.zip").write_bytes(b"not a zip at all")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_beir_download_unpacks_atomically_and_reuses_the_copy(tmp_path, beir_server):
    from tf_dualenc.data import load_beir
    from tf_dualenc.data.beir_download import DownloadError, download_beir, resolve_beir_dataset

    cache = tmp_path / "cache"
    folder = download_beir("tiny", str(cache), base_url=beir_server, print_fn=lambda *a: None)
    assert folder == str(cache / "tiny")
    assert len(load_beir(folder, "test").queries) == 16
    assert sorted(os.listdir(cache)) == ["tiny"]  # no temporary folders left
    # Reused without a download: a dead address does not matter now.
    assert download_beir("tiny", str(cache), base_url="http://127.0.0.1:9", print_fn=lambda *a: None) == folder
    # A local copy wins over the cache and the network.
    local = tmp_path / "shared"
    write_tiny_beir(local / "tiny")
    assert resolve_beir_dataset("tiny", search_dirs=[str(local)], cache_dir=str(cache / "unused")) == str(local / "tiny")
    with pytest.raises(DownloadError, match=r"broken.zip is not a valid zip archive"):
        download_beir("broken", str(cache), base_url=beir_server, print_fn=lambda *a: None)
    with pytest.raises(DownloadError, match=r"nolayout.zip: the archive has no BEIR layout"):
        download_beir("nolayout", str(cache), base_url=beir_server, print_fn=lambda *a: None)
    with pytest.raises(DownloadError, match=r"Could not download BEIR data set 'missing' from .*/missing.zip"):
        download_beir("missing", str(cache), base_url=beir_server, print_fn=lambda *a: None)
    assert sorted(os.listdir(cache)) == ["tiny"]
    with pytest.raises(ValueError, match="not a plain name"):
        download_beir("../etc", str(cache))


def test_dataset_is_found_beside_the_config_from_any_folder_and_a_failed_download_is_one_line(tmp_path, monkeypatch, capsys):
    from tf_dualenc import cli
    from tf_dualenc.data import beir_download

    config_dir = tmp_path / "project"
    write_tiny_beir(config_dir / "tinyset")
    (config_dir / "p.yaml").write_text("dataset: tinyset\ntrain_steps: 1\ntrain: {model: t5, size: tiny}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv(beir_download.DATA_VARIABLE, raising=False)
    config = PipelineConfig.from_file(str(config_dir / "p.yaml"))
    assert config.resolved(print_fn=lambda *a: None).data == str(config_dir / "tinyset")
    # TF_DUALENC_DATA's folders come first.
    other = tmp_path / "data_home"
    write_tiny_beir(other / "tinyset")
    monkeypatch.setenv(beir_download.DATA_VARIABLE, str(other))
    assert config.resolved(print_fn=lambda *a: None).data == str(other / "tinyset")
    # Nowhere to be found and no network: one line naming the URL, the target folder and the offline way.
    monkeypatch.setattr(beir_download, "BEIR_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(beir_download, "DEFAULT_CACHE_DIR", str(tmp_path / "cache"))
    (config_dir / "q.yaml").write_text("dataset: absent\ntrain_steps: 1\ntrain: {model: bert, preset: all-MiniLM-L6-v2}\n")
    assert cli.main(["pipeline", "run", "--config", str(config_dir / "q.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tf-dualenc pipeline: error: Could not download BEIR data set 'absent' from "
                                               "http://127.0.0.1:9/absent.zip into " + str(tmp_path / "cache" / "absent")), err
    assert "Offline, put its BEIR folder" in err[0] and "TF_DUALENC_DATA" in err[0]


@pytest.mark.slow
def test_kubeflow_v2_compile_writes_the_pipeline_json(tmp_path):
    from tf_dualenc.tfx.run_pipeline import compile_pipeline

    image = "us-docker.pkg.dev/project/repo/tf-dualenc:0.1.0"
    config = tiny_pipeline_config("gs://bucket/root", "gs://bucket/data", "gs://bucket/spiece.model", image=image,
                                  serving_dir="gs://bucket/serving", threshold=0.25, metric="MRR@10")
    path = compile_pipeline(config, str(tmp_path / "out" / "pipeline.json"), print_fn=lambda *a: None)
    spec = json.loads(open(path).read())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    components = ["RetrievalExampleGen", "Trainer", "RetrievalEvaluator", "RetrievalIndexer", "ServingPusher"]
    assert set(components) <= set(tasks)
    assert "dependentTasks" not in tasks["RetrievalExampleGen"]
    assert tasks["Trainer"]["dependentTasks"] == ["RetrievalExampleGen"]
    assert {"RetrievalExampleGen", "Trainer"} <= set(tasks["RetrievalEvaluator"]["dependentTasks"])
    assert {"RetrievalEvaluator", "Trainer"} <= set(tasks["RetrievalIndexer"]["dependentTasks"])
    assert {"RetrievalEvaluator", "RetrievalIndexer", "Trainer"} <= set(tasks["ServingPusher"]["dependentTasks"])
    # The indexer takes the evaluator's document embeddings, a custom artifact type Vertex AI names by its schema title.
    assert tasks["RetrievalIndexer"]["inputs"]["artifacts"]["corpus_embeddings"]["taskOutputArtifact"] == {
        "outputArtifactKey": "corpus_embeddings", "producerTask": "RetrievalEvaluator"}
    evaluator_outputs = spec["components"]["RetrievalEvaluator"]["outputDefinitions"]["artifacts"]
    assert evaluator_outputs["corpus_embeddings"]["artifactType"]["instanceSchema"].startswith("title: tf_dualenc.CorpusEmbeddings")
    executors = spec["deploymentSpec"]["executors"]
    for name in components:
        container = executors[f"{name}_executor"]["container"]
        assert container["image"] == image
    assert executors["Trainer_executor"]["container"]["args"][1] == "tfx.components.trainer.executor.GenericExecutor"
    assert executors["RetrievalIndexer_executor"]["container"]["args"][1] == "tf_dualenc.tfx.components.retrieval_indexer.Executor"

    def parameter(task, name):
        (value,) = tasks[task]["inputs"]["parameters"][name]["runtimeValue"]["constantValue"].values()
        return value

    assert parameter("RetrievalEvaluator", "metric") == "MRR@10"
    assert float(parameter("RetrievalEvaluator", "threshold")) == 0.25
    assert parameter("ServingPusher", "serving_dir") == "gs://bucket/serving"
    assert parameter("Trainer", "run_fn") == "tf_dualenc.tfx.trainer_module.run_fn"
    assert json.loads(parameter("Trainer", "custom_config"))["train"]["architecture"] == "ade_spl"
    assert '"num_steps": 6' in parameter("Trainer", "train_args")
    # Vertex AI runs TFX's built-in blessed-model resolver.
    assert any("blessed.number_value=1" in json.dumps(v) for v in executors.values())


def _assert_served_search_is_the_evaluated_one(outputs, serving, capsys, run_file=None):
    """`search --server` against the pushed deployment returns, for every test query, the ranking the pipeline
    evaluated for what it pushed: the blessed search's run file (`run_file`: another, e.g. the cascade's)."""
    from tf_dualenc import cli
    from tf_dualenc.data import read_queries
    from tf_dualenc.serving.local_server import LocalModelServer

    pushed = outputs["ServingPusher"]["pushed_model"]
    queries = read_queries(os.path.join(outputs["RetrievalExampleGen"]["eval_dataset"]["uri"], "queries.jsonl"))
    evaluated = {}
    run_file = run_file or os.path.join(outputs["RetrievalEvaluator"]["evaluation"]["uri"], "search", "run.test.trec")
    with open(run_file, encoding="utf-8") as f:
        for line in f:
            query_id, _, doc_id, rank, _, _ = line.split()
            evaluated.setdefault(query_id, []).append((int(rank), doc_id))
    served = {name: str(serving / name) for name in os.listdir(serving) if name not in ("indexes", "models.config")}
    server = LocalModelServer(served, grpc_port=0, rest_port=0).start()
    try:
        query_ids = sorted(evaluated)
        queries_file = serving.parent / "test_queries.txt"
        queries_file.write_text("\n".join(queries[q] for q in query_ids) + "\n")
        capsys.readouterr()
        assert cli.main(["search", "--index", pushed["index_destination"], "--server", f"127.0.0.1:{server.grpc_port}",
                         "--queries-file", str(queries_file), "--top-k", "10", "--json"]) == 0
        answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finally:
        server.stop()
    assert len(answers) == len(query_ids)
    for query_id, answer in zip(query_ids, answers):
        assert [hit["id"] for hit in answer["hits"]] == [d for _, d in sorted(evaluated[query_id])[:10]], query_id


@pytest.mark.slow
def test_pipeline_pushes_a_kept_reranker_and_serves_the_cascade_it_checked(tmp_path, t5_vocabulary, capsys, monkeypatch):
    from tf_dualenc import cli
    from tf_dualenc.tfx.components import reranker_trainer
    from tf_dualenc.tfx.run_pipeline import answer_query, run_pipeline

    # A tiny cross-encoder trained for a few steps cannot be relied on to raise validation, so the decision is forced
    # to keep it at weight 0.5 (the decision itself: tests/test_cascade.py). Tested here: the pipeline trains, checks,
    # pushes and serves the cascade, and the served ranking is the one the check evaluated.
    decisions = []

    def keep(qrels, run, cross_scores, metric, weight):
        decisions.append((len(run), weight))
        return True, {"metric": metric, "retrieval": 0.0, "reranked": 1.0, "weight": 0.5, "reason": "kept by the test"}

    monkeypatch.setattr(reranker_trainer, "cascade_decision", keep)
    reranker = {"tower": "t5", "size": "tiny", "vocabulary": t5_vocabulary, "pair_length": 48, "steps": 3, "batch_size": 4,
                "depth": 10, "rerank_k": 5}
    config = tiny_pipeline_config(tmp_path / "root", write_tiny_beir(tmp_path / "data"), t5_vocabulary, reranker=reranker)
    outputs = run_pipeline(config, print_fn=lambda *a: None)
    assert len(decisions) == 1 and decisions[0][0] > 0 and decisions[0][1] == "auto"  # once, on the validation queries
    trained = outputs["RerankerTrainer"]["reranker"]
    assert trained["kept"] == 1 and trained["served_name"] == "dual_encoder_reranker" and trained["rerank_k"] == 5
    record = json.loads(open(os.path.join(trained["uri"], "reranker.json")).read())
    assert record["lists"]["lists"] >= 4 and len(record["training"]["loss"]) == 3
    assert set(record["splits"]) == {"validation", "test"} and "cascade" in record["splits"]["test"]
    pushed = outputs["ServingPusher"]["pushed_model"]
    serving = tmp_path / "root" / "serving"
    assert pushed["reranker_destination"] == str(serving / "dual_encoder_reranker" / "1")
    assert 'name: "dual_encoder_reranker"' in (serving / "models.config").read_text()
    search = json.loads((serving / "indexes" / "dual_encoder" / "1" / "manifest.json").read_text())["search"]
    assert search["rerank"]["model_name"] == "dual_encoder_reranker" and search["rerank"]["weight"] == 0.5
    _assert_served_search_is_the_evaluated_one(outputs, serving, capsys, os.path.join(trained["uri"], "run.test.reranked.trec"))
    # The query the pipeline answers at the end goes through the cascade too; --first-stage leaves the re-ranker out.
    hits = answer_query(outputs, "What is the capital of France?", k=4)
    assert len(hits) == 4 and all("retrieval_score" in hit for hit in hits)
    capsys.readouterr()
    assert cli.main(["search", "--index", pushed["index_destination"], "--query", "capital of France", "--first-stage", "--json"]) == 0
    assert all("rerank_score" not in hit for hit in json.loads(capsys.readouterr().out)["hits"])


def _tree(folder):
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


def _states(outputs):
    from tf_dualenc.tfx.run_pipeline import components_run

    return {name: outputs[name]["state"] for name in components_run(outputs)}


@pytest.mark.slow
def test_pipeline_runs_end_to_end_caches_and_never_touches_the_served_model_on_failure(tmp_path, t5_vocabulary, capsys):
    import yaml

    from tf_dualenc.tfx.run_pipeline import PipelineError, pipeline_outputs, run_pipeline
    from tf_dualenc import cli

    data = write_tiny_beir(tmp_path / "data")
    config = tiny_pipeline_config(tmp_path / "root", data, t5_vocabulary, search_fusion="interpolate")
    # Mining as a Trainer stage: one hard negative per pair, mined by the starting model from the ingested corpus.
    config = config.with_overrides(["train.hard_negatives=dense", "train.num_negatives=1"])
    config_path = tmp_path / "pipeline.yaml"
    config_path.write_text(yaml.safe_dump(config.to_dict()))

    # The command users run: every component completes, then a query is answered from the pushed model.
    assert cli.main(["pipeline", "run", "--config", str(config_path), "--query", "Where is the Eiffel Tower?", "--top-k", "3"]) == 0
    printed = capsys.readouterr().out
    resolved = config.resolved()
    outputs = pipeline_outputs(resolved)
    assert set(_states(outputs).values()) == {"COMPLETE"}
    examples = outputs["RetrievalExampleGen"]["examples"]
    validation = outputs["RetrievalExampleGen"]["validation_dataset"]
    # The validation queries (carved from train by the seeded hash) are held out of training.
    from tf_dualenc.data.validation_split import load_validation

    assert validation["queries"] == len(load_validation(data, fraction=0.2).queries) > 0
    assert examples["num_pairs"] == 48 - validation["queries"]
    assert os.listdir(os.path.join(examples["uri"], "Split-train")) == ["pairs-00000-of-00001.tfrecord"]
    model_uri = outputs["Trainer"]["model"]["uri"]
    assert os.path.isfile(os.path.join(model_uri, "Format-Serving", "saved_model.pb"))
    # Ingest wrote the training data as a BEIR folder: the training queries as "train", the validation ones as "dev";
    # the Trainer mined from it for the training queries only, and kept the starting model's corpus vectors.
    from tf_dualenc.data import load_beir

    beir = os.path.join(examples["uri"], "beir")
    validation_ids = set(load_validation(data, fraction=0.2).qrels)
    assert set(load_beir(beir, "dev").qrels) == validation_ids
    assert set(load_beir(beir, "train").qrels) == {f"q{i}" for i in range(48)} - validation_ids
    run_dir = os.path.join(os.path.dirname(os.path.dirname(model_uri)), "model_run", os.path.basename(model_uri))
    [mined] = [n for n in os.listdir(run_dir) if n.startswith("hard_negatives-")]
    mined_queries = {json.loads(line)["query_id"] for line in open(os.path.join(run_dir, mined), encoding="utf-8")}
    assert mined_queries and not mined_queries & validation_ids
    training = json.loads(open(os.path.join(model_uri, "training.json")).read())
    assert training["schedule"]["steps"] == 6 and training["precision"] == "float32" and training["model_chosen"] == "last step"
    from tf_dualenc.indexing.corpus_embeddings import reusable_embeddings

    validation_split = load_beir(outputs["RetrievalExampleGen"]["validation_dataset"]["uri"], "validation")
    starting, why = reusable_embeddings(os.path.join(model_uri, "StartingModel-Corpus"),
                                        [(d, validation_split.document_text(d)) for d in validation_split.corpus], model="starting_model")
    assert starting is not None, why
    assert os.path.isfile(os.path.join(model_uri, "Format-Keras", "model.keras"))
    evaluation = json.loads(open(os.path.join(outputs["RetrievalEvaluator"]["evaluation"]["uri"], "evaluation.json")).read())
    assert evaluation["blessed"] and evaluation["metric"] == "NDCG@10" and 0.0 <= evaluation["value"] <= 1.0
    # Decided on validation, beating the model training started from; test scored for the report only.
    assert evaluation["decided_on"]["split"] == "train[validation 0.2]"
    assert evaluation["value"] > evaluation["reference_metrics"]["starting_model"]["validation"]["NDCG@10"]
    # The references are reported on test beside the model.
    assert set(evaluation["reference_metrics"]["bm25"]) == {"validation", "test"}
    assert set(evaluation["test_metrics"]) == set(evaluation["metrics"])
    assert outputs["RetrievalEvaluator"]["blessing"]["blessed"] == 1
    assert outputs["RetrievalIndexer"]["index"]["count"] == 64
    # The corpus was encoded once with the trained model, by the evaluator; the indexer built from those vectors.
    assert outputs["RetrievalEvaluator"]["corpus_embeddings"]["count"] == 64
    assert outputs["RetrievalIndexer"]["index"]["embeddings"] == "reused from the evaluator"
    pushed = outputs["ServingPusher"]["pushed_model"]
    serving = tmp_path / "root" / "serving"
    assert pushed["pushed"] == 1 and pushed["pushed_destination"] == str(serving / "dual_encoder" / "1")
    assert (serving / "models.config").is_file() and (serving / "indexes" / "dual_encoder" / "1" / "manifest.json").is_file()
    assert "query: Where is the Eiffel Tower?" in printed
    hits = [line for line in printed.splitlines() if line.startswith("  ") and ". d" in line]
    assert len(hits) == 3
    assert "(document embeddings reused from the evaluator)" in printed
    # The search is chosen on validation and pushed with the index: BM25 built beside the dense index, the choice recorded.
    search = evaluation["search"]
    assert search["fusion"] == "interpolate" and 0.0 <= search["weight"] <= 1.0 and search["depth"] == 100
    assert search["validation"] == max(search["validation_curve"].values())
    pushed_index = json.loads((serving / "indexes" / "dual_encoder" / "1" / "manifest.json").read_text())
    assert pushed_index["search"]["fusion"] == "interpolate" and pushed_index["search"]["weight"] == pytest.approx(search["weight"])
    assert any(name.startswith("bm25/") for name in pushed_index["files"])
    assert "pushed search (+bm25 w=" in printed
    _assert_served_search_is_the_evaluated_one(outputs, serving, capsys)
    for name in ("model:", "metrics:", "index:", "pushed:", "serving:"):
        assert name in printed
    served = _tree(serving)

    # Unchanged inputs: everything is reused.
    rerun_states = _states(run_pipeline(config, print_fn=lambda *a: None))
    assert set(rerun_states.values()) == {"CACHED"}, rerun_states

    # A changed hyperparameter re-runs from the Trainer on; an unreachable threshold blesses nothing.
    failing = config.with_overrides(["train.learning_rate=0.02", "threshold=0.99"])
    with pytest.raises(PipelineError, match=r"RetrievalEvaluator did not bless the model: NDCG@10 = .* is below the threshold 0.9900"):
        run_pipeline(failing, print_fn=lambda *a: None)
    states = _states(pipeline_outputs(resolved))
    assert states["RetrievalExampleGen"] == "CACHED" and states["Trainer"] == "COMPLETE" and states["RetrievalEvaluator"] == "COMPLETE"
    assert _tree(serving) == served

    # Bad data (same path, changed file): ingest runs again and fails naming the file and line; nothing served changes.
    with open(os.path.join(data, "corpus.jsonl"), "a", encoding="utf-8") as f:
        f.write("{not json\n")
    with pytest.raises(PipelineError, match=r"RetrievalExampleGen failed: .*corpus.jsonl:65"):
        run_pipeline(config, print_fn=lambda *a: None)
    assert _tree(serving) == served


@pytest.mark.slow
def test_pipeline_does_not_push_a_first_model_that_loses_to_bm25_on_validation(tmp_path, t5_vocabulary):
    from tf_dualenc.tfx.pipeline_config import PipelineConfig
    from tf_dualenc.tfx.run_pipeline import PipelineError, pipeline_outputs, run_pipeline

    assert PipelineConfig().bless_against == ["starting_model", "bm25"]  # the default: both references
    # Six steps of a tiny T5 from random initialisation do not beat BM25 on these lexical question/answer pairs.
    config = tiny_pipeline_config(tmp_path / "root", write_tiny_beir(tmp_path / "data"), t5_vocabulary, bless_against=["bm25"])
    with pytest.raises(PipelineError, match=r"did not bless the model: NDCG@10 = \S+ does not beat the bm25's"):
        run_pipeline(config, print_fn=lambda *a: None)
    outputs = pipeline_outputs(config.resolved(print_fn=lambda *a: None))
    evaluation = json.loads(open(os.path.join(outputs["RetrievalEvaluator"]["evaluation"]["uri"], "evaluation.json")).read())
    assert not evaluation["blessed"] and evaluation["value"] <= evaluation["reference_metrics"]["bm25"]["validation"]["NDCG@10"]
    # The report shows dense, BM25 and the search it would have pushed, on validation (decides) and test.
    assert set(evaluation["searches"]) == {"validation", "test"}
    assert set(evaluation["searches"]["test"]) == {"dense", "bm25", "search"}
    assert not (tmp_path / "root" / "serving").exists()


@pytest.mark.slow
def test_beam_dag_runner_runs_the_same_pipeline(tmp_path, t5_vocabulary):
    from tf_dualenc.tfx.run_pipeline import answer_query, run_pipeline

    config = tiny_pipeline_config(tmp_path / "root", write_tiny_beir(tmp_path / "data"), t5_vocabulary, runner="beam")
    outputs = run_pipeline(config, print_fn=lambda *a: None)
    assert set(_states(outputs).values()) == {"COMPLETE"}
    hits = answer_query(outputs, "What is the capital of France?", k=4)
    assert len(hits) == 4 and all(hit["id"].startswith("d") for hit in hits)


def test_a_second_run_on_a_busy_pipeline_root_is_refused_before_it_starts(tmp_path, t5_vocabulary):
    from tf_dualenc.tfx.run_pipeline import PipelineBusy, pipeline_root_lock, run_pipeline

    config = tiny_pipeline_config(tmp_path / "root", write_tiny_beir(tmp_path / "data"), t5_vocabulary)
    (tmp_path / "root").mkdir()
    with pipeline_root_lock(str(tmp_path / "root")):
        with pytest.raises(PipelineBusy, match=r"root is in use by a running pipeline \(pid \d+ on host "):
            run_pipeline(config, print_fn=lambda *a: None)
    assert sorted(os.listdir(tmp_path / "root")) == [".run.lock"]  # nothing ran
    # Released with the run (or the process): the next run may take the root.
    with pipeline_root_lock(str(tmp_path / "root")):
        pass


def dead_pid():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_pipeline_root_lock_names_its_owner_and_takes_over_only_a_dead_ones(tmp_path):
    import socket
    import subprocess
    import sys

    from tf_dualenc.tfx.run_pipeline import PipelineBusy, pipeline_root_lock

    root, host = str(tmp_path), socket.gethostname()
    lock = tmp_path / ".run.lock"
    with pipeline_root_lock(root):
        assert {k: v for k, v in json.loads(lock.read_text()).items() if k != "start"} == {"pid": os.getpid(), "host": host}
        with pytest.raises(PipelineBusy, match=rf"in use by a running pipeline \(pid {os.getpid()} on host {host}\)"):
            with pipeline_root_lock(root):
                pass
    assert lock.read_text() == ""  # released: no owner left behind

    # A run killed with SIGKILL: the kernel drops its flock, but its record stays; the next run takes the root over.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom tf_dualenc.tfx.run_pipeline import pipeline_root_lock\n"
                               f"with pipeline_root_lock({root!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
                              cwd=os.path.dirname(os.path.dirname(__file__)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PipelineBusy, match=rf"\(pid {holder.pid} on host {host}\)"):
            with pipeline_root_lock(root):
                pass
    finally:
        holder.kill()
        holder.wait()
    messages = []
    with pipeline_root_lock(root, print_fn=messages.append):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert messages == [f"{lock}: taking over the lock of a run that ended without releasing it (pid {holder.pid} on host {host})"]

    # A record without the flock (a file system flock does not reach): refused while its owner may live.
    for owner in ({"pid": os.getppid(), "host": host}, {"pid": dead_pid(), "host": "elsewhere"}):
        lock.write_text(json.dumps(owner))
        with pytest.raises(PipelineBusy, match=rf"\(pid {owner['pid']} on host {owner['host']}, as .*\.run\.lock records\); "
                                               r"wait for it to finish, or, if that run has ended, delete "):
            with pipeline_root_lock(root):
                pass
    # A reused pid (the same number, a process started at another time) is not the owner.
    lock.write_text(json.dumps({"pid": os.getppid(), "host": host, "start": 1}))
    with pipeline_root_lock(root, print_fn=messages.append):
        pass
    assert "taking over" in messages[-1]


def test_a_shipped_config_is_found_by_name_and_a_file_wins(tmp_path, monkeypatch):
    from tf_dualenc.tfx.pipeline_config import CONFIGS_DIR, DEFAULT_CONFIG, config_file

    monkeypatch.chdir(tmp_path)
    assert config_file(None) == DEFAULT_CONFIG and os.path.dirname(DEFAULT_CONFIG) == CONFIGS_DIR
    assert config_file("vertex") == config_file("vertex.yaml") == os.path.join(CONFIGS_DIR, "vertex.yaml")
    assert PipelineConfig.from_file("vertex").runner == "kubeflow_v2"
    (tmp_path / "vertex.yaml").write_text("runner: local\n")
    assert config_file("vertex.yaml") == "vertex.yaml"  # a file in the working directory wins over the shipped one
    assert config_file("configs/none.yaml") == "configs/none.yaml" and config_file("none") == "none"


def test_vertex_compiles_the_production_config_and_the_demo_trains_the_quick_recipe():
    import yaml

    from tf_dualenc.tfx.pipeline_config import CONFIGS_DIR

    def read(name):
        with open(os.path.join(CONFIGS_DIR, name), encoding="utf-8") as f:
            return yaml.safe_load(f)

    deployment = {"runner", "image", "data", "dataset", "serving_dir", "pipeline_root"}
    vertex, production = read("vertex.yaml"), read("scifact_strong.yaml")
    assert {k: v for k, v in vertex.items() if k not in deployment} == {k: v for k, v in production.items() if k not in deployment}
    assert production["train"] == {"recipe": "strong"} and production["train_steps"] == 0
    demo = read("scifact_minilm.yaml")
    assert demo["train"] == {"recipe": "quick"} and demo["bless_against"] == ["starting_model", "bm25"]
    for name in ("scifact_minilm.yaml", "scifact_strong.yaml"):
        PipelineConfig.from_file(name).validate(check_paths=False)


def test_the_shipped_vertex_config_compiles_as_it_is(tmp_path):
    from tf_dualenc.tfx.pipeline_config import DEFAULT_CONFIG
    from tf_dualenc.tfx.run_pipeline import compile_pipeline

    shipped = os.path.join(os.path.dirname(DEFAULT_CONFIG), "vertex.yaml")
    path = compile_pipeline(PipelineConfig.from_file(shipped), str(tmp_path / "pipeline.json"), print_fn=lambda *a: None)
    spec = json.loads(open(path).read())["pipelineSpec"]
    assert {"RetrievalExampleGen", "Trainer", "RetrievalEvaluator", "RetrievalIndexer", "ServingPusher"} <= set(spec["root"]["dag"]["tasks"])


def test_pipeline_run_quiet_turns_the_components_progress_off_for_its_run(monkeypatch, capsys):
    """TFX runs the evaluator and indexer: `--quiet` reaches them through the environment (`tf_dualenc.progress`),
    for the run only."""
    from tf_dualenc import cli
    from tf_dualenc.progress import PROGRESS_VARIABLE, components_show_progress
    from tf_dualenc.tfx import run_pipeline as run_module

    seen = []

    def fake_run(config):
        seen.append(components_show_progress())
        raise run_module.PipelineError("stopped after the progress check")

    import logging

    from absl import logging as absl_logging

    monkeypatch.setattr(run_module, "run_pipeline", fake_run)
    monkeypatch.delenv(PROGRESS_VARIABLE, raising=False)
    # `pipeline run` quiets the root logger and absl for its run; put them back for the next tests.
    monkeypatch.setattr(logging.getLogger(), "level", logging.getLogger().level)
    verbosity = absl_logging.get_verbosity()
    try:
        for argv in (["pipeline", "run"], ["pipeline", "run", "--quiet"], ["--quiet", "pipeline", "run"]):
            assert cli.main(argv) == 1
    finally:
        absl_logging.set_verbosity(verbosity)
    assert seen == [True, False, False] and PROGRESS_VARIABLE not in os.environ
    assert "stopped after the progress check" in capsys.readouterr().err


def test_pipeline_compile_prints_the_file_it_wrote_as_json(tmp_path, capsys):
    from tf_dualenc import cli

    output = tmp_path / "out" / "pipeline.json"
    assert cli.main(["pipeline", "compile", "--config", "vertex", "--output", str(output), "--json"]) == 0
    out, err = capsys.readouterr()
    [compiled] = [json.loads(line) for line in out.splitlines()]
    assert compiled["output"] == str(output) and output.is_file() and compiled["config"].endswith("vertex.yaml")
    assert compiled["runner"] == "kubeflow_v2" and compiled["pipeline_name"] == PipelineConfig.from_file("vertex").pipeline_name
    assert f"pipeline JSON: {output}" in err  # the text, on stderr


def _pipeline_parse(argv):
    from tf_dualenc import cli

    return cli.build_parser().parse_args(["pipeline", *argv])


def test_run_and_compile_are_subcommands_each_with_only_its_own_flags(capsys):
    """`pipeline run` and `pipeline compile` used to be one positional whose flags were all accepted by both."""
    run = _pipeline_parse(["run", "--config", "scifact_minilm", "--set", "train_steps=2", "--runner", "beam",
                           "--query", "q", "--top-k", "3", "--json", "--verbose"])
    assert (run.action, run.config, run.set, run.runner, run.top_k, run.json) == ("run", "scifact_minilm", ["train_steps=2"], "beam", 3, True)
    assert _pipeline_parse(["run"]).top_k == 5 and _pipeline_parse(["run", "--k", "7"]).top_k == 7  # the old spelling
    assert _pipeline_parse(["run", "--threads", "2"]).threads == 2 and _pipeline_parse(["compile", "--threads", "1"]).threads == 1
    compiled = _pipeline_parse(["compile", "--config", "vertex", "--set", "image=I", "--output", "p.json"])
    assert (compiled.action, compiled.config, compiled.set, compiled.output) == ("compile", "vertex", ["image=I"], "p.json")
    assert compiled.func is not run.func
    assert _pipeline_parse(["compile", "--json"]).json is True
    for argv in (["run", "--output", "p.json"], ["compile", "--runner", "beam"], ["compile", "--query", "q"],
                 ["compile", "--top-k", "3"], ["run", "compile"], []):
        with pytest.raises(SystemExit):
            _pipeline_parse(argv)
    capsys.readouterr()
    for action, own, others in (("run", {"--runner", "--query", "--top-k", "--json", "--verbose"}, {"--output"}),
                                ("compile", {"--output", "--json"}, {"--runner", "--query", "--top-k"})):  # --verbose: every command's
        with pytest.raises(SystemExit):
            _pipeline_parse([action, "--help"])
        shown = set(re.findall(r"--[a-z-]+", capsys.readouterr().out))
        assert own | {"--config", "--set"} <= shown and not others & shown, action


def test_the_makefiles_pipeline_command_parses():
    from conftest import REPO

    line = next(line for line in (REPO / "Makefile").read_text().splitlines() if "tf-dualenc pipeline" in line)
    argv = line.split("tf-dualenc", 1)[1].split()
    assert argv == ["pipeline", "run"] and _pipeline_parse(argv[1:]).action == "run"
