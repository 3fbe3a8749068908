import json

import numpy as np
import pytest

from tf_dualenc import cli
from tf_dualenc.data import load_beir
from tf_dualenc.evaluation import evaluate_retrieval, evaluate_run
from test_beir import write_beir


class FakeModel:
    """Encodes by bag-of-letters so the expected ranking is computable by hand."""

    def _encode(self, texts, batch_size=64):
        out = np.zeros((len(texts), 26), np.float32)
        for i, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    encode_queries = encode_documents = _encode


@pytest.mark.parametrize("search", ["exact", "brute_force"])
def test_dense_evaluation_matches_direct_computation(tmp_path, search):
    ds = load_beir(write_beir(tmp_path / "data"), "test")
    model = FakeModel()
    report = evaluate_retrieval(ds, model=model, k=3, measures=("NDCG@3", "P@1"), output_dir=tmp_path / "out", search=search)
    assert report["config"]["search"] == search
    doc_ids = list(ds.corpus)
    d = model.encode_documents([ds.document_text(x) for x in doc_ids])
    run = {}
    for qid, text in ds.queries.items():
        scores = d @ model.encode_queries([text])[0]
        run[qid] = {doc_ids[j]: float(scores[j]) for j in range(len(doc_ids))}
    assert report["metrics"] == pytest.approx(evaluate_run(ds.qrels, run, measures=("NDCG@3", "P@1"))["aggregate"])
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["dataset"]["queries"] == 2 and saved["config"]["k"] == 3
    lines = (tmp_path / "out" / "run.trec").read_text().splitlines()
    assert len(lines) == 6 and lines[0].split()[:4] == ["q1", "Q0", lines[0].split()[2], "1"]


def test_ignore_identical_ids_drops_self_hits(tmp_path):
    corpus = [{"_id": "q1", "text": "capital of france"}, {"_id": "d1", "text": "Paris is the capital of France."}]
    queries = [{"_id": "q1", "text": "capital of france"}]
    ds = load_beir(write_beir(tmp_path, corpus=corpus, queries=queries, qrels=["query-id\tcorpus-id\tscore", "q1\td1\t1"]), "test")
    kept = evaluate_retrieval(ds, model=FakeModel(), k=1, measures=("P@1",))
    dropped = evaluate_retrieval(ds, model=FakeModel(), k=1, measures=("P@1",), ignore_identical_ids=True)
    assert kept["metrics"]["P@1"] == 0.0  # the query finds itself first
    assert dropped["metrics"]["P@1"] == 1.0


def test_bm25_evaluation_and_cli(tmp_path, capsys):
    data = write_beir(tmp_path / "data")
    assert cli.main(["evaluate", "--model", "bm25", "--data", str(data), "--output-dir", str(tmp_path / "out"), "--k", "3", "--measures", "P@1,MRR@3"]) == 0
    out = capsys.readouterr().out
    assert "P@1" in out and "1.0000" in out  # "capital of france" → d1, "boiling point" → d2
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["metrics"] == {"P@1": 1.0, "MRR@3": 1.0}


def test_evaluate_cli_errors(tmp_path, capsys):
    data = write_beir(tmp_path / "data")
    assert cli.main(["evaluate", "--model", "bm25", "--data", str(data), "--output-dir", str(tmp_path), "--measures", "NDCG10"]) == 2
    assert "NDCG10" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", "bm25", "--data", str(data), "--output-dir", str(tmp_path), "--k", "5", "--measures", "NDCG@10"]) == 2
    assert "smaller than the deepest cut-off" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", "nope.keras", "--data", str(data), "--output-dir", str(tmp_path)]) == 2
    assert "nope.keras" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", "bm25", "--data", str(tmp_path / "missing"), "--output-dir", str(tmp_path)]) == 2
    assert "BEIR data folder not found: " + str(tmp_path / "missing") in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"`search` must be one of \['exact', 'brute_force'\]; got 'scann'"):
        evaluate_retrieval(load_beir(data, "test"), model=FakeModel(), search="scann")


@pytest.mark.slow
def test_bm25_reproduces_the_measured_scifact_baseline(tmp_path):
    from conftest import SHARED

    if not (SHARED / "data" / "scifact").exists():
        pytest.skip("../shared/data not present")
    report = evaluate_retrieval(load_beir(SHARED / "data" / "scifact", "test"), method="bm25")
    # The measurement on this machine with bm25s: 0.686.
    assert report["metrics"]["NDCG@10"] == pytest.approx(0.686, abs=0.0015)


@pytest.mark.slow
def test_tiny_dual_encoder_evaluates_end_to_end(tmp_path, t5_vocabulary):
    from tf_dualenc.models import build_t5_dual_encoder

    model = build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, query_sequence_length=8, document_sequence_length=16)
    model.save(tmp_path / "m.keras")
    data = write_beir(tmp_path / "data")
    assert cli.main(["evaluate", "--model", str(tmp_path / "m.keras"), "--data", str(data), "--output-dir", str(tmp_path / "out"), "--k", "3", "--measures", "P@1,NDCG@3"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["metrics"]) == {"P@1", "NDCG@3"} and report["timings"]["documents_per_second"] > 0


def test_evaluate_reports_and_warns_about_texts_cut_at_the_token_budget(tmp_path, t5_vocabulary, capsys):
    from tf_dualenc.models import build_t5_dual_encoder
    from tf_dualenc.models.token_budget import count_at_budget, truncation_report

    data = write_beir(tmp_path / "data")
    ds = load_beir(data, "test")
    # A 4-token query budget (EOS included): "capital of france" is cut, "boiling point" just fits or is cut.
    model = build_t5_dual_encoder("tiny", vocabulary=str(t5_vocabulary), query_sequence_length=4, document_sequence_length=64)
    queries = list(ds.queries.values())
    expected = sum(len(model.query_preprocessor.tokenizer(q)) + 1 >= 4 for q in queries)
    assert expected >= 1
    report = truncation_report(model, queries, [ds.document_text(d) for d in ds.corpus])
    assert report["query"] == {"texts": 2, "cut": expected, "fraction": expected / 2, "budget": 4}
    assert report["document"] == {"texts": len(ds.corpus), "cut": 0, "fraction": 0.0, "budget": 64}
    assert count_at_budget(model.query_preprocessor, ["ab"] * 3 + ["capital of france and more words"]) == (1, 4)
    path = tmp_path / "m.keras"
    model.save(path)
    assert cli.main(["evaluate", "--model", str(path), "--data", str(data), "--output-dir", str(tmp_path / "out"), "--k", "3",
                     "--measures", "P@1"]) == 0
    captured = capsys.readouterr()
    assert f"cut at the token budget: {expected}/2 queries at 4 tokens, 0/" in captured.out
    assert f"WARNING: {expected} of 2 queries ({expected / 2:.1%}) fill the 4-token query budget" in captured.err
    assert "--query-length" in captured.err
    assert "document budget" not in captured.err
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["truncation"]["query"]["cut"] == expected
    # A larger budget at evaluation time: nothing cut, no warning.
    assert cli.main(["evaluate", "--model", str(path), "--data", str(data), "--output-dir", str(tmp_path / "out2"), "--k", "3",
                     "--measures", "P@1", "--query-length", "64"]) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_evaluate_shows_encoding_progress_on_stderr_unless_quiet(tmp_path, t5_vocabulary, capsys):
    from tf_dualenc.models import build_t5_dual_encoder

    path = tmp_path / "m.keras"
    build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, query_sequence_length=8, document_sequence_length=16).save(path)
    data = write_beir(tmp_path / "data")
    argv = ["evaluate", "--model", str(path), "--data", str(data), "--depth", "3", "--measures", "P@1", "--batch-size", "2"]
    assert cli.main([*argv, "--output-dir", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    # The corpus (3 documents) and the queries with qrels (2), each done in under the interval between lines: the last
    # line only.
    assert "encoding documents: 3/3 (100.0%), " in err and " documents/s, took 0:00:" in err
    assert "encoding queries: 2/2 (100.0%), " in err and "encoding documents:" not in out
    assert cli.main([*argv, "--output-dir", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert "encoding documents:" not in capsys.readouterr().err


def test_bm25_logs_nothing_below_warning_even_under_a_debug_root_handler(caplog):
    import logging

    from tf_dualenc.evaluation.bm25_baseline import BM25Index

    caplog.set_level(logging.DEBUG)  # what TFX/absl leave on the root logger during a pipeline run
    BM25Index(["d1", "d2"], ["paris is the capital of france", "water boils at 100 degrees"]).run(["q"], ["capital"])
    assert [r.getMessage() for r in caplog.records if r.name.startswith("bm25s") and r.levelno < logging.WARNING] == []
