"""The on-disk index (build, atomic write, checksums, search) and the Beam encoding job."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import SHARED
from tf_dualenc import cli
from tf_dualenc.evaluation import exact_top_k
from tf_dualenc.indexing import RetrievalIndex, RetrievalIndexError, build_index


def unit_vectors(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def records(vectors):
    return ((f"doc{i}", f"text of document {i}", v) for i, v in enumerate(vectors))


@pytest.mark.parametrize("method", ["brute_force", "scann"])
def test_index_round_trip_matches_exact_search(tmp_path, method):
    vectors = unit_vectors(600, 16)
    manifest = build_index(records(vectors), tmp_path / "index", dimension=16, count=600, method=method,
                           model_info={"export": "x"}, print_fn=lambda *_: None)
    assert manifest["method"] == method and manifest["count"] == 600 and manifest["model"] == {"export": "x"}
    assert sorted(os.listdir(tmp_path)) == ["index"]  # no temporary folder left
    index = RetrievalIndex.load(str(tmp_path / "index"))
    queries = unit_vectors(40, 16, seed=1)
    want, want_scores = exact_top_k(queries, vectors, 10)
    exact_hits = index.search_embeddings(queries, 10, exact=True)
    assert [[h["id"] for h in hits] for hits in exact_hits] == [[f"doc{j}" for j in row] for row in want]
    assert exact_hits[0][0]["text"] == f"text of document {want[0][0]}"
    hits = index.search_embeddings(queries, 10)
    recall = np.mean([len({h["id"] for h in got} & {f"doc{j}" for j in row}) / 10 for got, row in zip(hits, want)])
    if method == "brute_force":
        assert recall == 1.0
        np.testing.assert_allclose([[h["score"] for h in hits_] for hits_ in hits], want_scores, atol=1e-6)
    else:
        # Approximate; isotropic random vectors are the hardest case for a partition tree (0.76 seen here).
        assert recall >= 0.6, recall
        assert manifest["build_config"]["num_leaves"] == 24
    assert 0.0 < manifest["recall_at_10_vs_exact"]["recall"] <= 1.0


def test_failed_build_leaves_nothing_and_existing_index_survives(tmp_path):
    vectors = unit_vectors(50, 8)
    build_index(records(vectors), tmp_path / "index", dimension=8, count=50, print_fn=lambda *_: None)

    def broken():
        yield from list(records(vectors))[:10]
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        build_index(broken(), tmp_path / "index", dimension=8, count=50, overwrite=True, print_fn=lambda *_: None)
    assert sorted(os.listdir(tmp_path)) == ["index"]
    assert len(RetrievalIndex.load(str(tmp_path / "index"))) == 50  # the old index is untouched
    with pytest.raises(RetrievalIndexError, match=r"already exists; pass overwrite=True"):
        build_index(records(vectors), tmp_path / "index", dimension=8, count=50, print_fn=lambda *_: None)
    with pytest.raises(RetrievalIndexError, match=r"Duplicate document id 'doc0'"):
        build_index(list(records(vectors[:2])) * 2, tmp_path / "dup", dimension=8, count=4, print_fn=lambda *_: None)
    with pytest.raises(RetrievalIndexError, match=r"Expected 60 records, got 50"):
        build_index(records(vectors), tmp_path / "short", dimension=8, count=60, print_fn=lambda *_: None)
    with pytest.raises(RetrievalIndexError, match=r"method='hnsw'; valid: \['auto', 'scann', 'brute_force'\]"):
        build_index(records(vectors), tmp_path / "m", dimension=8, count=50, method="hnsw")
    assert sorted(os.listdir(tmp_path)) == ["index"]


def test_corrupted_or_incomplete_index_is_refused(tmp_path):
    build_index(records(unit_vectors(30, 8)), tmp_path / "index", dimension=8, count=30, print_fn=lambda *_: None)
    path = tmp_path / "index" / "embeddings.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RetrievalIndexError, match=r"embeddings\.npy: SHA-256 differs"):
        RetrievalIndex.load(str(tmp_path / "index"))
    (tmp_path / "index" / "ids.jsonl").unlink()
    with pytest.raises(RetrievalIndexError, match=r"ids\.jsonl: missing or of the wrong size"):
        RetrievalIndex.load(str(tmp_path / "index"), verify_checksums=False)
    with pytest.raises(RetrievalIndexError, match=r"not an index folder"):
        RetrievalIndex.load(str(tmp_path))


def write_corpus(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"_id": f"d{i}", "title": f"Title {i}", "text": text}) + "\n")
    return str(path)


@pytest.fixture(scope="module")  # read-only: one export serves every test here
def tiny_export(tmp_path_factory, t5_vocabulary):
    from test_models import tiny
    from tf_dualenc.export import export_encoder

    model = tiny(t5_vocabulary, "ade_spl")
    base = tmp_path_factory.mktemp("exports")
    return model, export_encoder(model, str(base), "tiny").path


@pytest.mark.parametrize("mode", ["in_memory", "multi_processing"])
def test_beam_job_embeds_a_corpus_and_search_answers(tmp_path, tiny_export, mode, capsys):
    from test_models import DOCUMENTS, QUERIES

    model, export = tiny_export
    corpus = write_corpus(tmp_path / "corpus.jsonl", DOCUMENTS)
    argv = ["build-index", "--corpus", corpus, "--model", os.path.dirname(export), "--output", str(tmp_path / "index"),
            "--num-shards", "2", "--min-batch-size", "2", "--max-batch-size", "3", "--queries", str(tmp_path / "q.txt"),
            "--runner", "DirectRunner", "--direct_running_mode", mode, "--direct_num_workers", "2"]
    (tmp_path / "q.txt").write_text("\n".join(QUERIES))
    assert cli.main(argv) == 0
    assert len(list((tmp_path / "index-embeddings").glob("part-*-of-00002.tfrecord"))) == 2
    index = RetrievalIndex.load(str(tmp_path / "index"))
    assert index.manifest["model"]["version"] == 1 and index.manifest["recall_at_10_vs_exact"]["queries"] == len(QUERIES)
    # The job's vectors are the model's, with each id kept with its own vector.
    want = model.encode_documents([f"Title {i} {t}" for i, t in enumerate(DOCUMENTS)])
    rows = [int(i[1:]) for i in index.ids]
    np.testing.assert_allclose(np.asarray(index.embeddings), want[rows], atol=1e-5)

    capsys.readouterr()
    assert cli.main(["search", "--index", str(tmp_path / "index"), "--query", QUERIES[0], "--k", "3", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scores = want @ model.encode_queries(QUERIES[:1])[0]
    assert [h["id"] for h in line["hits"]] == [f"d{j}" for j in np.argsort(-scores)[:3]]
    assert line["hits"][0]["text"].startswith("Title ")


def test_build_index_shows_progress_unless_quiet_and_reports_the_documents_cut(tmp_path, tiny_export, capsys):
    from test_models import DOCUMENTS
    from tf_dualenc.indexing.build_index_pipeline import read_documents
    from tf_dualenc.models.token_budget import count_at_budget

    model, export = tiny_export
    texts = DOCUMENTS + [" ".join(DOCUMENTS)]  # the last is far longer than the export's 20-token document budget
    corpus = write_corpus(tmp_path / "corpus.jsonl", texts)
    argv = ["build-index", "--corpus", corpus, "--model", export, "--min-batch-size", "2", "--max-batch-size", "2"]
    assert cli.main([*argv, "--output-dir", str(tmp_path / "index")]) == 0
    # DirectRunner's one in-process worker encodes the whole corpus: its last line counts against it.
    out, err = capsys.readouterr()
    assert f"encoding documents: {len(texts)}/{len(texts)} (100.0%), " in err and " documents/s, took " in err
    # The export's document budget cuts what the model's own would.
    cut, budget = count_at_budget(model.document_preprocessor, [text for _, text in read_documents(corpus)])
    assert budget == 20 and 0 < cut < len(texts)
    assert f"cut at the token budget: {cut}/{len(texts)} documents at 20 tokens" in out
    assert "WARNING" in err and "export the model again with --document-length" in err  # more than 5% cut
    truncation = RetrievalIndex.load(str(tmp_path / "index")).manifest["model"]["truncation"]
    assert truncation == {"document": {"texts": len(texts), "cut": cut, "fraction": round(cut / len(texts), 4), "budget": 20}}
    assert cli.main([*argv, "--output-dir", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert "encoding documents" not in capsys.readouterr().err


def test_beam_job_reads_tfrecord_corpora_and_checks_input(tmp_path, tiny_export, capsys):
    import tensorflow as tf

    from tf_dualenc.indexing.build_index_pipeline import ReadCorpus

    _, export = tiny_export
    with tf.io.TFRecordWriter(str(tmp_path / "corpus-00000-of-00001.tfrecord")) as writer:
        for i in range(5):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"t{i}".encode()])),
                "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"document number {i}".encode()]))})).SerializeToString())
    assert cli.main(["build-index", "--corpus", str(tmp_path / "corpus-*.tfrecord"), "--model", export,
                     "--output", str(tmp_path / "index")]) == 0
    assert sorted(RetrievalIndex.load(str(tmp_path / "index")).ids) == [f"t{i}" for i in range(5)]
    assert cli.main(["build-index", "--corpus", str(tmp_path / "corpus-*.tfrecord"), "--model", export,
                     "--output", str(tmp_path / "index")]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match=r"No corpus file matches '.*nothing\.jsonl'"):
        ReadCorpus(str(tmp_path / "nothing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "a", "text": "fine"}\n{"_id": "b"}\n')
    capsys.readouterr()
    assert cli.main(["build-index", "--corpus", str(bad), "--model", export, "--output", str(tmp_path / "bad_index")]) == 2
    assert "bad.jsonl:2: a line lacks '_id' (or 'id') or a string 'text': '{\"_id\": \"b\"}'" in capsys.readouterr().err
    assert not (tmp_path / "bad_index").exists()


def test_pipeline_takes_standard_beam_options_for_other_runners():
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, GoogleCloudOptions, PipelineOptions, StandardOptions

    from tf_dualenc.indexing.build_index_pipeline import parse_args

    args, beam_args = parse_args(["--corpus", "gs://bucket/corpus-*.tfrecord", "--model", "gs://bucket/exports/m/3", "--output", "/tmp/i",
                                  "--runner", "DataflowRunner", "--project", "p", "--region", "europe-west4", "--temp_location", "gs://bucket/tmp"])
    options = PipelineOptions(beam_args)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert options.view_as(GoogleCloudOptions).region == "europe-west4" and args.model.endswith("/3")
    flink = PipelineOptions(["--runner", "FlinkRunner", "--flink_master", "localhost:8081"])
    assert flink.view_as(FlinkRunnerOptions).flink_master == "localhost:8081"
    spark = PipelineOptions(["--runner", "SparkRunner", "--spark_master_url", "spark://h:7077"])
    assert spark.get_all_options()["spark_master_url"] == "spark://h:7077"


def test_dask_runner_builds_the_index_the_direct_runner_builds(tmp_path, tiny_export):
    # Beam's DaskRunner on a local dask.distributed cluster of 2 worker processes (started and closed by the CLI).
    from test_models import DOCUMENTS

    _, export = tiny_export
    corpus = write_corpus(tmp_path / "corpus.jsonl", [DOCUMENTS[i % len(DOCUMENTS)] + " more" * (i % 9) for i in range(40)])
    argv = ["build-index", "--corpus", corpus, "--model", export, "--min-batch-size", "2", "--max-batch-size", "3"]
    assert cli.main([*argv, "--output", str(tmp_path / "direct")]) == 0
    assert cli.main([*argv, "--output", str(tmp_path / "dask"), "--runner", "dask", "--num-shards", "3"]) == 0
    assert sorted(p.name for p in (tmp_path / "dask-embeddings").iterdir()) == [f"part-0000{i}-of-00003.tfrecord" for i in range(3)]
    direct, dask = RetrievalIndex.load(str(tmp_path / "direct")), RetrievalIndex.load(str(tmp_path / "dask"))
    assert sorted(dask.ids) == sorted(direct.ids) == sorted(f"d{i}" for i in range(40))
    row = {doc_id: i for i, doc_id in enumerate(dask.ids)}
    np.testing.assert_allclose(np.asarray(dask.embeddings)[[row[doc_id] for doc_id in direct.ids]], np.asarray(direct.embeddings), atol=1e-5)


def test_runner_dask_is_spelled_as_beams_dask_runner_and_takes_a_scheduler_address():
    from tf_dualenc.indexing.build_index_pipeline import parse_args
    from tf_dualenc.indexing.dask_build import DASK_RUNNER

    required = ["--corpus", "c.jsonl", "--model", "m", "--output", "o"]
    args, beam_args = parse_args([*required, "--runner", "dask", "--dask-address", "sched:8786", "--dask_npartitions", "4"])
    assert args.dask and args.dask_address == "sched:8786" and beam_args == ["--runner", DASK_RUNNER, "--dask_npartitions", "4"]
    args, beam_args = parse_args([*required, "--runner=DaskRunner"])
    assert args.dask and args.dask_address is None and beam_args == [f"--runner={DASK_RUNNER}"]
    args, beam_args = parse_args([*required, "--runner", "DirectRunner"])
    assert not args.dask and beam_args == ["--runner", "DirectRunner"]
    with pytest.raises(SystemExit):
        parse_args([*required, "--dask-address", "sched:8786"])


@pytest.mark.slow
def test_scifact_index_from_a_trained_model(tmp_path, t5_vocabulary, capsys):
    if not (SHARED / "data" / "scifact").exists():
        pytest.skip("../shared/data/scifact not present")
    from tf_dualenc.export import export_encoder
    from tf_dualenc.training import TrainConfig, train

    config = TrainConfig(data=str(SHARED / "data" / "scifact"), model="t5", size="tiny", vocabulary=t5_vocabulary, query_length=32,
                         document_length=64, batch_size=16, steps=5, checkpoint_every=5, learning_rate=1e-2, dropout=0.0,
                         output_dir=str(tmp_path / "run")).validate()
    _, model = train(config, progress=False, print_fn=lambda *_: None)
    export = export_encoder(model, str(tmp_path / "exports"), "scifact").path
    assert cli.main(["build-index", "--corpus", str(SHARED / "data" / "scifact" / "corpus.jsonl"), "--model", export,
                     "--output", str(tmp_path / "index"), "--method", "scann",
                     "--queries", str(SHARED / "data" / "scifact" / "queries.jsonl")]) == 0
    index = RetrievalIndex.load(str(tmp_path / "index"))
    assert len(index) == 5183 and index.manifest["method"] == "scann"
    assert index.manifest["recall_at_10_vs_exact"]["queries"] == 1000
    capsys.readouterr()
    assert cli.main(["search", "--index", str(tmp_path / "index"), "--query", "Vitamin D deficiency and bone density", "--k", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 6 and "  1. " in out


def test_length_buckets_put_similar_lengths_next_to_each_other():
    from tf_dualenc.indexing.build_index_pipeline import length_bucket, ordered_by_length

    assert length_bucket(("a", "x" * 63)) == 0 and length_bucket(("b", "x" * 64)) == 1
    documents = [("c", "xxxx"), ("a", "xx"), ("b", "xx"), ("d", "x")]
    assert ordered_by_length((0, documents)) == [("d", "x"), ("a", "xx"), ("b", "xx"), ("c", "xxxx")]


def test_index_job_reads_documents_as_beir_evaluation_does(tmp_path):
    from tf_dualenc.data import load_beir
    from tf_dualenc.indexing.build_index_pipeline import read_corpus_file

    records = [{"_id": "a", "title": " Paris ", "text": " Capital of France. "}, {"_id": "b", "title": "", "text": "No title."},
               {"_id": "c", "text": "Absent title."}, {"_id": "d", "title": "Only a title", "text": ""}]
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "capital"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\ta\t1\n")
    dataset = load_beir(str(tmp_path), "test")
    indexed = dict(read_corpus_file((str(tmp_path / "corpus.jsonl"), "jsonl"), title_separator=". "))
    assert indexed == {doc_id: dataset.document_text(doc_id, ". ") for doc_id in dataset.corpus}
    assert indexed["a"] == "Paris. Capital of France."


def test_saved_embeddings_are_reused_only_for_the_same_texts_and_model(tmp_path):
    from tf_dualenc.indexing.corpus_embeddings import reusable_embeddings, write_corpus_embeddings

    documents = [(f"d{i}", f"text of document {i}") for i in range(5)]
    vectors = unit_vectors(5, 4)
    write_corpus_embeddings(str(tmp_path), documents, vectors, model="models/1")
    # Read in another order: each vector still follows its document.
    found, why = reusable_embeddings(str(tmp_path), documents[::-1], model="models/1")
    np.testing.assert_array_equal(found, vectors[::-1])
    assert why == ""
    found, why = reusable_embeddings(str(tmp_path), documents, model="models/2")
    assert found is None and why == "the saved embeddings are of another model (models/1, not models/2)"
    for other in (documents[:4] + [("d4", "text of document 4, edited")], documents[:4], documents + [("d5", "new")]):
        found, why = reusable_embeddings(str(tmp_path), other, model="models/1")
        assert found is None and why.startswith("the saved embeddings are of another corpus (5 documents")
    assert reusable_embeddings(str(tmp_path / "none"), documents, model="models/1") == (None, f"no saved embeddings in {tmp_path / 'none'}")


def write_tfrecord_corpus(path, documents):
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for doc_id, text in documents:
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
                for key, value in (("id", doc_id), ("text", text))})).SerializeToString())
    return str(path)


def bad_corpora(folder):
    """Corpora the build must refuse, each with the start of the error that names the file (and line or record)."""
    good = '{"_id": "a", "text": "fine"}\n'
    (folder / "malformed.jsonl").write_text(good + '{"_id": "b", "text": "x"}\n{"_id": "c", "text": broken}\n')
    (folder / "binary.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    (folder / "empty.jsonl").write_text("\n\n")
    (folder / "duplicate.jsonl").write_text(good + '{"_id": "b", "text": "x"}\n' + good)
    write_tfrecord_corpus(folder / "untexted.tfrecord", [(b"t0", b"fine"), (b"t1", b"caf\xe9")])
    (folder / "garbage.tfrecord").write_bytes(b"not a TFRecord file at all")
    return {
        "malformed.jsonl": f"{folder / 'malformed.jsonl'}:3: malformed JSON (Expecting value at column 22)",
        "binary.jsonl": f"{folder / 'binary.jsonl'}:1: not UTF-8 text (invalid byte at offset 0 of the line)",
        "empty.jsonl": f"The corpus has no documents: {folder / 'empty.jsonl'} (empty, or blank lines only).",
        "duplicate.jsonl": f"{folder / 'duplicate.jsonl'}:3: duplicate document id 'a' (first at {folder / 'duplicate.jsonl'}:1)",
        "untexted.tfrecord": f"{folder / 'untexted.tfrecord'}: record 2: feature 'text' is not UTF-8 text",
        "garbage.tfrecord": f"{folder / 'garbage.tfrecord'}: record 1: not a readable TFRecord",
    }


def test_corpus_errors_name_the_file_and_line_before_any_encoding(tmp_path, tiny_export, capsys):
    _, export = tiny_export
    for name, error in bad_corpora(tmp_path).items():
        capsys.readouterr()
        assert cli.main(["build-index", "--corpus", str(tmp_path / name), "--model", export, "--output", str(tmp_path / "index")]) == 2
        assert capsys.readouterr().err.startswith(f"tf-dualenc build-index: error: {error}"), name
        assert not (tmp_path / "index").exists() and not (tmp_path / "index-embeddings").exists()


def test_corpus_errors_inside_beam_name_the_file_and_line(tmp_path):
    import apache_beam as beam

    from tf_dualenc.indexing.build_index_pipeline import CorpusRecordError, ReadCorpus

    for name, error in bad_corpora(tmp_path).items():
        if name in ("empty.jsonl", "duplicate.jsonl"):
            continue  # whole-corpus checks: made before the job (local files) and after it (the count)
        with pytest.raises(CorpusRecordError) as raised:
            with beam.Pipeline() as pipeline:
                _ = pipeline | ReadCorpus(str(tmp_path / name))
        assert str(raised.value).startswith(error), name


def test_a_failed_build_leaves_no_shards_and_a_rebuild_removes_a_killed_builds_folders(tmp_path, tiny_export, capsys):
    import socket

    from test_models import DOCUMENTS

    _, export = tiny_export
    corpus = write_corpus(tmp_path / "corpus.jsonl", DOCUMENTS)
    argv = ["build-index", "--corpus", corpus, "--model", export, "--output", str(tmp_path / "index")]
    # Fails after the job wrote its shards: too few documents to train ScaNN's quantiser.
    assert cli.main(argv + ["--method", "scann"]) == 2
    assert "needs at least 16 documents" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["corpus.jsonl"]

    # What killed builds leave: Beam's temporary shard folder, and index temp folders named by owner pid and host.
    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (tmp_path / "index-embeddings" / "beam-temp-part-0123abcd").mkdir(parents=True)
    leftovers = [f"index.tmp-{dead}-{host}-deadbeef", f"index.old-{dead}-{host}-0badcafe"]
    kept = [f"index.tmp-{os.getpid()}-{host}-cafecafe", f"index.tmp-{dead}-elsewhere-feedface"]  # live, or not this host's
    for name in leftovers + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "embeddings.npy").write_bytes(b"partial")
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    for name in leftovers:
        assert f"removed {tmp_path / name}, left by build process {dead} on {host}, which has ended" in out
    assert sorted(os.listdir(tmp_path)) == sorted(["corpus.jsonl", "index", "index-embeddings"] + kept)
    assert all(name.startswith("part-") for name in os.listdir(tmp_path / "index-embeddings"))
    assert len(RetrievalIndex.load(str(tmp_path / "index"))) == len(DOCUMENTS)


def test_a_build_killed_with_sigkill_leaves_nothing_once_rebuilt(tmp_path):
    # The child dies with SIGKILL halfway through writing its index (kill -9 of `build-index`).
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from tf_dualenc.indexing.retrieval_index import build_index

        def records():
            for i in range(50):
                if i == 25:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield f"doc{{i}}", "text", np.eye(8, dtype=np.float32)[i % 8]

        build_index(records(), {str(tmp_path / "index")!r}, dimension=8, count=50)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=os.path.dirname(os.path.dirname(__file__)), stderr=subprocess.PIPE)
    assert child.wait(timeout=120) == -9, child.stderr.read().decode()[-2000:]
    assert [name.startswith(f"index.tmp-{child.pid}-") for name in os.listdir(tmp_path)] == [True]
    messages = []
    build_index(records(unit_vectors(50, 8)), tmp_path / "index", dimension=8, count=50, print_fn=messages.append)
    assert sorted(os.listdir(tmp_path)) == ["index"]
    assert messages[0].startswith(f"removed {tmp_path}/index.tmp-{child.pid}-")


def test_search_reads_queries_files_with_the_one_query_reader(tmp_path, capsys, monkeypatch):
    from tf_dualenc.cli import search

    vectors = np.eye(3, 4, dtype=np.float32)
    build_index(((f"d{i}", f"text {i}", v) for i, v in enumerate(vectors)), tmp_path / "index", dimension=4, count=3,
                print_fn=lambda *_: None)
    monkeypatch.setattr(search, "_query_encoder", lambda args, index, client: lambda texts: np.tile(vectors[0], (len(texts), 1)))

    def search_with(path):
        code = cli.main(["search", "--index", str(tmp_path / "index"), "--query", "typed", "--queries-file", str(path),
                         "--top-k", "1", "--json"])
        out, err = capsys.readouterr()
        return code, [json.loads(line)["query"] for line in out.splitlines()], err

    # What search read before it used `read_query_texts`: one query per line, stripped, blank lines skipped, CRLF or LF.
    (tmp_path / "questions.txt").write_bytes(b"  first query \r\n\nsecond\r\nthird\n\n")
    assert search_with(tmp_path / "questions.txt")[:2] == (0, ["typed", "first query", "second", "third"])
    # ... and what the reader adds: a BEIR queries.jsonl (its texts, not its lines).
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "from jsonl"}\n\n{"text": "no id needed"}\n')
    assert search_with(tmp_path / "queries.jsonl")[:2] == (0, ["typed", "from jsonl", "no id needed"])
    # A bad file: one error line naming the file (and the line), exit code 2, nothing searched.
    (tmp_path / "bad.txt").write_bytes(b"fine\ncaf\xe9\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"_id": "q2"}\n')
    for name, problem in [("bad.txt", ":2: invalid UTF-8 at byte 3"), ("bad.jsonl", ":2: expected a JSON object with 'text'"),
                          ("missing.txt", "")]:
        code, queries, err = search_with(tmp_path / name)
        assert (code, queries) == (2, [])
        assert err.startswith("tf-dualenc search: error: ") and f"{tmp_path / name}{problem}" in err, err


def test_local_query_encoder_encodes_with_the_exports_signatures_and_refuses_others(tiny_export):
    from tf_dualenc.export import ExportedDualEncoder
    from tf_dualenc.indexing.query_encoders import local_query_encoder

    _, export = tiny_export
    texts = ["vitamin d and bone density", "a longer query about the cells of the immune system", "x"]
    exported = ExportedDualEncoder(export)
    np.testing.assert_allclose(local_query_encoder(export, batch_size=2)(texts), exported.encode_queries(texts), atol=1e-6)
    np.testing.assert_allclose(local_query_encoder(export, signature="encode_document")(texts),
                               exported.encode_documents(texts), atol=1e-6)
    with pytest.raises(ValueError, match=r"signature='serving_default' is not an encoder signature .*'encode_query'"):
        local_query_encoder(export, signature="serving_default")
