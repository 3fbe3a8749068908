"""Honest model selection (the validation split carved from training queries), hard negatives in `train`, and
hybrid (BM25 + dense) retrieval."""

import json
import os
import pathlib

import numpy as np
import pytest

from pipeline_data import write_tiny_beir
from tf_dualenc.data import load_beir
from tf_dualenc.data.pairs import load_training_pairs
from tf_dualenc.data.validation_split import (carve_validation, is_validation_query, load_training_split, load_validation,
                                              sample_query_ids, validation_query_ids)
from tf_dualenc.evaluation import evaluate_run
from tf_dualenc.evaluation.hybrid import (choose_interpolation_weight, evaluate_hybrid, fuse_runs, interpolate_runs,
                                          reciprocal_rank_fusion)
from tf_dualenc.training import TrainConfig, train


def test_validation_split_is_deterministic_disjoint_and_stable_as_data_grows():
    ids = [f"q{i}" for i in range(2000)]
    held_out = validation_query_ids(ids, 0.2)
    assert held_out == validation_query_ids(list(reversed(ids)), 0.2)
    assert 0.17 < len(held_out) / len(ids) < 0.23
    # More queries never move an existing one between the splits.
    assert validation_query_ids(ids + [f"new{i}" for i in range(500)], 0.2) & set(ids) == held_out
    # A larger fraction only adds queries; another seed gives another split.
    assert held_out < validation_query_ids(ids, 0.3)
    assert validation_query_ids(ids, 0.2, seed=1) != held_out
    assert all(is_validation_query(q, 0.2) == (q in held_out) for q in ids[:50])
    assert validation_query_ids(ids, 0.0) == set()
    for bad in (1.0, -0.1, "0.2", True):
        with pytest.raises(ValueError, match="validation_fraction"):
            validation_query_ids(ids, bad)


def test_query_samples_are_deterministic_independent_of_order_and_of_the_validation_split():
    ids = [f"q{i}" for i in range(2000)]
    sample = sample_query_ids(ids, 300)
    assert len(sample) == 300 and sample == sample_query_ids(list(reversed(ids)), 300)
    assert sample_query_ids(ids, 100) < sample  # a smaller sample is nested in a larger one
    assert sample_query_ids(ids, 300, seed=1) != sample
    assert sample_query_ids(ids[:10], 300) == set(ids[:10])
    # Not the validation split's hash: the sample holds validation queries in about their share.
    assert 0.1 < len(sample & validation_query_ids(ids, 0.2)) / 300 < 0.3
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="count"):
            sample_query_ids(ids, bad)


def test_carved_splits_partition_the_queries_and_training_pairs_leave_validation_out(tmp_path):
    data = write_tiny_beir(tmp_path / "beir")
    full = load_beir(data, "train")
    train_part, validation = carve_validation(full, 0.25)
    assert set(train_part.qrels).isdisjoint(validation.qrels)
    assert set(train_part.qrels) | set(validation.qrels) == set(full.qrels)
    assert validation.corpus is full.corpus and validation.split == "train[validation 0.25]"
    assert load_validation(data, fraction=0.25).qrels == validation.qrels
    assert load_training_split(data, fraction=0.25).qrels == train_part.qrels
    pairs = load_training_pairs(data, validation_fraction=0.25)
    assert set(pairs.query_ids) == set(train_part.qrels)
    assert len(load_training_pairs(data)) == 48
    with pytest.raises(ValueError, match=r"leaves no validation query among the 48 queries of .*beir \(train\)"):
        carve_validation(full, 1e-9)


def test_a_dev_split_is_the_validation_split_when_the_folder_has_one(tmp_path):
    data = write_tiny_beir(tmp_path / "beir")
    (tmp_path / "beir" / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq50\td50\t1\nq51\td51\t1\n")
    assert set(load_validation(data, fraction=0.25).qrels) == {"q50", "q51"}
    # Training keeps its whole split then: the dev queries are held out already.
    assert len(load_training_pairs(data, validation_fraction=0.25)) == 48


def test_config_validation_names_the_new_fields(tmp_path):
    data = write_tiny_beir(tmp_path / "beir")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"query": "q", "document": "d"}) + "\n")
    with pytest.raises(ValueError) as error:
        TrainConfig(data=str(pairs), model="bert", preset="x", validation_fraction=0.2, validation_metric="NDCG",
                    hard_negatives="bm25", warmup_steps=10, steps=10).validate()
    message = str(error.value)
    for expected in ("validation_fraction=0.2 needs a BEIR folder", "validation_metric='NDCG' (valid forms: NDCG@k",
                     "hard_negatives='bm25' mines from a BEIR folder", "hard_negatives='bm25' needs num_negatives >= 1"):
        assert expected in message
    # A warm-up as long as the run is cut to steps - 1 when the run starts (TrainConfig.schedule), not refused.
    assert "warmup_steps" not in message
    with pytest.raises(ValueError, match=r"hard_negatives='mined\.jsonl' \(valid: \['bm25', 'dense'\], a pair JSONL file"):
        TrainConfig(data=data, model="bert", preset="x", hard_negatives="mined.jsonl", num_negatives=1).validate()
    with pytest.raises(ValueError, match=r"validation_fraction=1\.5 \(must be in \[0, 1\)\)"):
        TrainConfig(data=data, model="bert", preset="x", validation_fraction=1.5).validate()
    TrainConfig(data=data, model="bert", preset="x", validation_fraction=0.2, hard_negatives="bm25", num_negatives=1).validate()


def test_learning_rate_warms_up_then_decays_linearly():
    from tf_dualenc.training.trainer import make_optimizer

    def rates(config, steps):
        optimizer = make_optimizer(config)
        values = []
        for step in steps:
            optimizer.iterations.assign(step)
            values.append(float(optimizer.learning_rate))
        return values

    warm = TrainConfig(learning_rate=1.0, steps=10, warmup_steps=4, optimizer="adam")
    np.testing.assert_allclose(rates(warm, (0, 1, 3, 4, 7, 10)), [0.25, 0.5, 1.0, 1.0, 0.5, 0.0], atol=1e-6)
    # Without warm-up: the paper's linear decay from the first step.
    np.testing.assert_allclose(rates(TrainConfig(learning_rate=1.0, steps=4), range(5)), [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-6)


def _brute_force_rrf(runs, k=60):
    fused = {}
    for run in runs:
        for qid, scores in run.items():
            ranked = sorted(scores, key=lambda d: (-scores[d], [-ord(c) for c in d]))
            for position, doc in enumerate(ranked, 1):
                fused.setdefault(qid, {}).setdefault(doc, 0.0)
                fused[qid][doc] += 1.0 / (k + position)
    return fused


def _random_run(rng, queries=5, docs=30, depth=12):
    return {f"q{q}": {f"d{i}": float(s) for i, s in zip(rng.choice(docs, depth, replace=False), rng.normal(size=depth))}
            for q in range(queries)}


def test_reciprocal_rank_fusion_matches_the_formula():
    rng = np.random.default_rng(0)
    runs = [_random_run(rng), _random_run(rng)]
    fused = reciprocal_rank_fusion(runs)
    expected = _brute_force_rrf(runs)
    assert fused.keys() == expected.keys()
    for qid in fused:
        assert fused[qid].keys() == expected[qid].keys()
        np.testing.assert_allclose([fused[qid][d] for d in sorted(fused[qid])], [expected[qid][d] for d in sorted(fused[qid])])
    top = reciprocal_rank_fusion(runs, depth=3)
    assert all(len(docs) == 3 for docs in top.values())
    assert set(top["q0"]) == set(sorted(expected["q0"], key=lambda d: -expected["q0"][d])[:3])


def test_interpolation_min_max_normalises_each_run_per_query():
    dense = {"q": {"a": 0.9, "b": 0.5, "c": 0.1}}
    lexical = {"q": {"b": 30.0, "d": 10.0}}
    fused = interpolate_runs(dense, lexical, 0.25)["q"]
    # dense normalised: a 1, b 0.5, c 0; lexical: b 1, d 0; missing counts 0.
    assert fused == pytest.approx({"a": 0.25, "b": 0.25 * 0.5 + 0.75, "c": 0.0, "d": 0.0})
    assert interpolate_runs(dense, lexical, 1.0)["q"]["a"] == pytest.approx(1.0)
    assert interpolate_runs({"q": {"x": 2.0, "y": 2.0}}, {}, 0.5)["q"] == {"x": 0.5, "y": 0.5}
    with pytest.raises(ValueError, match=r"weight=1\.5 must be in \[0, 1\]"):
        interpolate_runs(dense, lexical, 1.5)
    with pytest.raises(ValueError, match=r"fusion='max' \(valid: \['rrf', 'interpolate'\]\)"):
        fuse_runs(dense, lexical, "max")
    with pytest.raises(ValueError, match="needs a weight"):
        fuse_runs(dense, lexical, "interpolate")


def test_interpolation_weight_is_the_best_on_the_given_qrels():
    # Dense finds q1's document, BM25 finds q2's: only a mix gets both to rank 1.
    dense = {"q1": {"a": 1.0, "x": 0.5, "b": 0.0}, "q2": {"y": 1.0, "c": 0.8, "z": 0.0}}
    lexical = {"q1": {"x": 10.0, "a": 9.0, "z": 0.0}, "q2": {"c": 10.0, "y": 0.0, "b": 5.0}}
    qrels = {"q1": {"a": 1}, "q2": {"c": 1}}
    weight, curve = choose_interpolation_weight(qrels, dense, lexical, metric="P@1")
    assert curve[weight] == 1.0 and curve[0.0] == 0.5 and curve[1.0] == 0.5
    assert evaluate_run(qrels, interpolate_runs(dense, lexical, weight), measures=("P@1",))["aggregate"]["P@1"] == 1.0


class _KeywordEncoder:
    """A deterministic stand-in dual encoder: bag of known words, L2-normalised."""

    WORDS = ("alpha", "beta", "gamma", "delta")

    def _encode(self, texts, batch_size=64, verbose=0):
        vectors = np.array([[t.count(w) for w in self.WORDS] for t in texts], np.float32) + 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    encode_queries = encode_documents = _encode


def test_evaluate_hybrid_chooses_the_weight_on_validation_and_reports_components(tmp_path):
    corpus = [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(
        ["alpha alpha report", "beta notes", "gamma gamma gamma", "delta log", "alpha beta mix", "plain words here"])]
    queries = [{"_id": f"q{i}", "text": t} for i, t in enumerate(["alpha", "beta notes", "gamma", "delta log", "plain words"])]
    root = tmp_path / "beir"
    from test_beir import write_beir

    write_beir(root, corpus, queries, ["query-id\tcorpus-id\tscore", "q0\td0\t1", "q1\td1\t1", "q2\td2\t1"], split="train")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td3\t1\nq4\td5\t1\n")
    test = load_beir(root, "test")
    validation = load_beir(root, "train")
    report = evaluate_hybrid(test, model=_KeywordEncoder(), fusion="interpolate", validation=validation, k=5,
                             measures=("NDCG@10", "P@1"))
    assert report["hybrid"]["chosen_on"]["split"] == "train" and report["hybrid"]["chosen_on"]["queries"] == 3
    from tf_dualenc.evaluation.hybrid import dense_runs, lexical_run

    dense = dense_runs(_KeywordEncoder(), {"validation": validation}, k=5)[0]["validation"]
    weight, _ = choose_interpolation_weight(validation.qrels, dense, lexical_run(validation, k=5))
    assert report["hybrid"]["weight"] == weight
    assert set(report["components"]) == {"dense", "bm25"} and set(report["metrics"]) == {"NDCG@10", "P@1"}
    assert set(report["run"]) == {"q3", "q4"}
    fixed = evaluate_hybrid(test, model=_KeywordEncoder(), fusion="rrf", k=5, measures=("P@1",))
    assert fixed["hybrid"] == {"fusion": "rrf", "weight": None, "chosen_on": None, "validation_curve": None}
    with pytest.raises(ValueError, match="a validation split is needed to choose the interpolation weight"):
        evaluate_hybrid(test, model=_KeywordEncoder(), fusion="interpolate")


def _tiny_t5(data, output_dir, vocabulary, **overrides):
    values = dict(data=str(data), model="t5", size="tiny", vocabulary=vocabulary, architecture="sde", query_length=12,
                  document_length=20, batch_size=8, steps=4, checkpoint_every=2, learning_rate=1e-2, dropout=0.0,
                  output_dir=str(output_dir), log_every=1)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.slow
def test_training_validates_keeps_the_best_model_and_mines_negatives_without_validation_queries(tmp_path, t5_vocabulary):
    data = write_tiny_beir(tmp_path / "beir")
    config = _tiny_t5(data, tmp_path / "run", t5_vocabulary, validation_fraction=0.25, validation_every=2,
                      hard_negatives="bm25", num_negatives=1, hard_negatives_depth=4, warmup_steps=1)
    lines = []
    summary, _ = train(config, progress=False, print_fn=lines.append)
    validation = summary["validation"]
    assert [h["step"] for h in validation["history"]] == [2, 4]
    best = max(validation["history"], key=lambda h: h["NDCG@10"])
    assert validation["best_step"] == best["step"] and validation["best_value"] == best["NDCG@10"]
    assert summary["best_model"] == str(tmp_path / "run" / "best_model.keras") and os.path.isfile(summary["best_model"])
    assert validation["queries"] == len(load_validation(data, fraction=0.25).queries)
    mined = [json.loads(line) for line in open(next((tmp_path / "run").glob("hard_negatives-*.jsonl")))]
    held_out = set(load_validation(data, fraction=0.25).qrels)
    assert mined and not {r["query_id"] for r in mined} & held_out
    assert all(len(r["negatives"]) == 1 and r["negative_ids"][0] != r["document_id"] for r in mined)
    assert any("hard negatives (bm25)" in line for line in lines)
    # The mined file is reused by a second run of the same configuration (another seed shares it too).
    again = []
    train(_tiny_t5(data, tmp_path / "run2", t5_vocabulary, validation_fraction=0.25, hard_negatives="bm25", num_negatives=1,
                   hard_negatives_depth=4, hard_negatives_cache=str(tmp_path / "run"), seed=1, steps=2),
          progress=False, print_fn=again.append)
    assert any(line.startswith("hard negatives: cached") for line in again)
    # Re-running a finished run reports it instead of overwriting its figures.
    before = (tmp_path / "run" / "summary.json").read_text()
    rerun, model = train(config, progress=False, print_fn=lambda *_: None)
    assert (tmp_path / "run" / "summary.json").read_text() == before and rerun["validation"] == validation
    assert model is not None


@pytest.mark.slow
def test_evaluate_cli_hybrid_chooses_its_weight_on_validation_never_on_the_evaluated_split(tmp_path, t5_vocabulary, capsys):
    from tf_dualenc import cli
    from tf_dualenc.models import build_t5_dual_encoder

    data = write_tiny_beir(tmp_path / "beir")
    build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, query_sequence_length=8, document_sequence_length=16).save(tmp_path / "m.keras")
    base = ["evaluate", "--model", str(tmp_path / "m.keras"), "--data", data, "--k", "10", "--measures", "NDCG@10,P@1"]
    assert cli.main(base + ["--output-dir", str(tmp_path / "out"), "--hybrid", "interpolate"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["hybrid"]["chosen_on"]["split"] == "train[validation 0.2]"
    assert report["hybrid"]["chosen_on"]["queries"] == len(load_validation(data, fraction=0.2).queries)
    assert 0.0 <= report["hybrid"]["weight"] <= 1.0 and set(report["components"]) == {"dense", "bm25"}
    assert len({line.split()[0] for line in (tmp_path / "out" / "run.trec").read_text().splitlines()}) == 16
    assert "hybrid" in capsys.readouterr().out
    assert cli.main(base + ["--output-dir", str(tmp_path / "rrf"), "--hybrid", "rrf"]) == 0
    assert json.loads((tmp_path / "rrf" / "report.json").read_text())["hybrid"]["fusion"] == "rrf"
    assert cli.main(base + ["--output-dir", str(tmp_path / "x"), "--hybrid", "interpolate", "--split", "train"]) == 2
    assert "the split the weights are chosen on" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model", "bm25", "--data", data, "--output-dir", str(tmp_path / "y"), "--hybrid", "rrf"]) == 2
    assert "--model bm25 is not a dense model" in capsys.readouterr().err


class _OracleEncoder:
    """A perfect first stage on a tiny BEIR set: query i and document i get the same one-hot vector."""

    def __init__(self, data):
        from tf_dualenc.demo import load_sample

        self.index = {}
        for i, (query, document) in enumerate(load_sample()):
            self.index[query] = self.index[document] = i
        self.size = len(self.index)

    def _encode(self, texts, batch_size=64, verbose=0):
        vectors = np.zeros((len(texts), self.size), np.float32)
        vectors[np.arange(len(texts)), [self.index[t] for t in texts]] = 1.0
        return vectors

    encode_queries = encode_documents = _encode


class _NearMissEncoder(_OracleEncoder):
    """Ranks each query's true document second, behind the next query's."""

    def encode_queries(self, texts, batch_size=64):
        exact = self._encode(texts)
        return 0.5 * exact + np.roll(exact, 1, axis=1)


def test_a_reranker_that_lowers_the_validation_metric_is_refused(tmp_path):
    from tf_dualenc.evaluation.rerank_evaluation import RerankerRegression, check_reranker

    data = write_tiny_beir(tmp_path / "beir")
    validation = load_validation(data, fraction=0.2)
    model = _OracleEncoder(data)
    # Scores every document the same except the true one, which it puts last.
    positives = {validation.queries[q]: {validation.document_text(d) for d in docs} for q, docs in validation.qrels.items()}
    backwards = lambda queries, documents: [-1.0 if d in positives.get(q, ()) else 0.0 for q, d in zip(queries, documents)]
    with pytest.raises(RerankerRegression, match=r"re-ranking lowers validation P@1 from 1\.0000 to 0\.0000 \(\d+ queries of train\[validation 0\.2\], cross-encoder weight 1\.0\)"):
        check_reranker(validation, model=model, scorer=backwards, k=5, rerank_k=5, metric="P@1")
    faithful = lambda queries, documents: [1.0 if d in positives.get(q, ()) else 0.0 for q, d in zip(queries, documents)]
    assert check_reranker(validation, model=model, scorer=faithful, k=5, rerank_k=5, metric="P@1")["reranked"] == 1.0


@pytest.mark.slow
def test_evaluate_refuses_an_untrained_reranker_unless_told_to_skip_the_check(tmp_path, t5_vocabulary, monkeypatch, capsys):
    from tf_dualenc import cli
    from tf_dualenc.models import build_t5_cross_encoder

    data = write_tiny_beir(tmp_path / "beir")
    build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=32).save(tmp_path / "untrained.keras")
    monkeypatch.setattr(cli.evaluate, "load_retrieval_model", lambda *args: _OracleEncoder(data))
    args = ["evaluate", "--model", "oracle", "--data", data, "--k", "10", "--measures", "P@1,NDCG@10", "--rerank",
            str(tmp_path / "untrained.keras"), "--rerank-k", "10"]
    assert cli.main(args + ["--output-dir", str(tmp_path / "refused")]) == 2
    assert "re-ranking lowers validation P@1 from 1.0000 to" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    assert cli.main(args + ["--output-dir", str(tmp_path / "forced"), "--skip-rerank-check"]) == 0
    assert "WARNING: --skip-rerank-check" in capsys.readouterr().err
    report = json.loads((tmp_path / "forced" / "report.json").read_text())
    assert report["retrieval"]["P@1"] == 1.0 and report["reranked"]["P@1"] < 1.0


def test_index_hybrid_search_fuses_dense_and_bm25_over_stored_documents(tmp_path):
    from tf_dualenc.evaluation.bm25_baseline import bm25_run
    from tf_dualenc.indexing import RetrievalIndex, build_index

    texts = ["alpha alpha report", "beta notes", "gamma gamma gamma", "delta log", "alpha beta mix", "plain words here"]
    encoder = _KeywordEncoder()
    vectors = encoder._encode(texts)
    build_index(((f"d{i}", t, v) for i, (t, v) in enumerate(zip(texts, vectors))), tmp_path / "index", dimension=4,
                count=len(texts), print_fn=lambda *_: None)
    index = RetrievalIndex.load(str(tmp_path / "index"))
    queries = ["alpha report", "plain words"]
    hits = index.search_hybrid(queries, encoder._encode, k=3, fusion="rrf", depth=6)
    dense = {str(i): {h["id"]: h["score"] for h in row} for i, row in enumerate(index.search(queries, encoder._encode, k=6))}
    lexical = bm25_run([f"d{i}" for i in range(6)], texts, ["0", "1"], queries, k=6)
    expected = reciprocal_rank_fusion([dense, lexical])
    for i, row in enumerate(hits):
        assert [h["id"] for h in row] == sorted(expected[str(i)], key=lambda d: (-expected[str(i)][d], [-ord(c) for c in d]))[:3]
        assert row[0]["text"] == texts[int(row[0]["id"][1:])]
    # The dense side alone cannot find "plain words here" (no keyword); BM25 brings it to the top.
    assert hits[1][0]["id"] == "d5"
    assert index.search_hybrid(queries, encoder._encode, k=2, fusion="interpolate", weight=1.0, depth=6)[0][0]["id"] == "d0"


def test_reranking_interpolates_with_the_first_stage_and_picks_the_weight_on_validation():
    from tf_dualenc.evaluation.rerank_evaluation import choose_rerank_weight, combine_reranking

    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.1, "tail": 0.05}}
    cross = {"q": {"a": 0.0, "b": 1.0, "c": 0.9}}
    # First stage normalised over the head: a 1, b 0.875, c 0; cross-encoder: a 0, b 1, c 0.9.
    order = lambda w: sorted(combine_reranking(run, cross, w)["q"], key=lambda d: -combine_reranking(run, cross, w)["q"][d])
    assert order(1.0) == ["b", "c", "a", "tail"] and order(0.0) == ["a", "b", "c", "tail"]
    assert order(0.5) == ["b", "a", "c", "tail"]  # b 0.9375, a 0.5, c 0.45
    weight, curve = choose_rerank_weight({"q": {"a": 1}}, run, cross, metric="P@1")
    assert curve[0.0] == 1.0 and curve[1.0] == 0.0 and weight == 0.0  # ties go to the first stage
    with pytest.raises(ValueError, match=r"weight=2 must be in \[0, 1\]"):
        combine_reranking(run, cross, 2)


def test_reranker_check_chooses_the_weight_and_refuses_one_that_only_helps_at_zero(tmp_path):
    from tf_dualenc.evaluation.rerank_evaluation import RerankerRegression, check_reranker

    data = write_tiny_beir(tmp_path / "beir")
    validation = load_validation(data, fraction=0.2)
    positives = {validation.queries[q]: {validation.document_text(d) for d in docs} for q, docs in validation.qrels.items()}
    backwards = lambda queries, documents: [-1.0 if d in positives.get(q, ()) else 0.0 for q, d in zip(queries, documents)]
    with pytest.raises(RerankerRegression, match="the best cross-encoder weight on validation is 0"):
        check_reranker(validation, model=_OracleEncoder(data), scorer=backwards, k=5, rerank_k=5, metric="P@1", weight="auto")
    faithful = lambda queries, documents: [1.0 if d in positives.get(q, ()) else 0.0 for q, d in zip(queries, documents)]
    result = check_reranker(validation, model=_NearMissEncoder(data), scorer=faithful, k=5, rerank_k=5, metric="P@1", weight="auto")
    assert result["retrieval"] == 0.0 and result["reranked"] == 1.0 and set(result["weight_curve"]) == {w / 10 for w in range(11)}
    assert result["weight"] == min(w for w, v in result["weight_curve"].items() if v == 1.0) > 0


def test_a_failed_train_leaves_no_output_folder_behind(tmp_path, t5_vocabulary):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"query": "q", "document": "d"}) + "\n{broken\n")
    config = _tiny_t5(bad, tmp_path / "run", t5_vocabulary, batch_size=2)
    with pytest.raises(Exception, match=r"pairs\.jsonl:2"):
        train(config, progress=False, print_fn=lambda *_: None)
    assert not (tmp_path / "run").exists()


def test_the_cascade_reranks_the_hybrid_run_and_checks_the_reranker_on_validation(tmp_path):
    from tf_dualenc.evaluation.rerank_evaluation import RerankerRegression

    data = write_tiny_beir(tmp_path / "beir")
    test, validation = load_beir(data, "test"), load_validation(data, fraction=0.2)
    texts = {}
    for split in (test, validation):
        for q, docs in split.qrels.items():
            texts[split.queries[q]] = {split.document_text(d) for d in docs}
    faithful = lambda queries, documents: [1.0 if d in texts.get(q, ()) else 0.0 for q, d in zip(queries, documents)]
    backwards = lambda queries, documents: [-1.0 if d in texts.get(q, ()) else 0.0 for q, d in zip(queries, documents)]
    model = _NearMissEncoder(data)
    report = evaluate_hybrid(test, model=model, fusion="rrf", validation=validation, k=10, measures=("P@1", "NDCG@10"),
                             scorer=faithful, rerank_k=5, rerank_weight=1.0)
    assert report["components"]["dense"]["P@1"] < 0.1 and report["metrics"]["P@1"] == 1.0
    assert set(report["components"]) == {"dense", "bm25", "hybrid"} and report["rerank"]["weight"] > 0
    assert report["rerank"]["validation"]["reranked"] >= report["rerank"]["validation"]["hybrid"]
    with pytest.raises(RerankerRegression, match="re-ranking the hybrid run lowers validation P@1"):
        evaluate_hybrid(test, model=model, fusion="rrf", validation=validation, k=10, measures=("P@1",), scorer=backwards, rerank_k=5)
    unchecked = evaluate_hybrid(test, model=model, fusion="rrf", k=10, measures=("P@1",), scorer=backwards, rerank_k=5, rerank_check=False)
    assert unchecked["rerank"]["validation"] is None


def test_a_dev_split_never_ends_up_both_chosen_on_and_evaluated_or_trained_on(tmp_path):
    from tf_dualenc.data.validation_split import check_disjoint

    data = write_tiny_beir(tmp_path / "beir")
    (tmp_path / "beir" / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\n")
    with pytest.raises(ValueError, match="dev split is the validation split, so it cannot also be the training split"):
        load_validation(data, fraction=0.2, split="dev")
    with pytest.raises(ValueError, match="dev split is the validation split"):
        load_training_split(data, fraction=0.2, split="dev")
    validation = load_validation(data, fraction=0.2)
    with pytest.raises(ValueError, match=r"shares 2 queries .* with the validation split 'dev'"):
        check_disjoint(validation, load_beir(data, "dev"))
    check_disjoint(validation, load_beir(data, "test"))
    from tf_dualenc.tfx.pipeline_config import PipelineConfig

    with pytest.raises(ValueError, match=r"eval_split='dev' is the split the validation queries come from"):
        PipelineConfig(data=data, eval_split="dev", train={"model": "bert", "preset": "x"}).validate()


def test_ingest_drops_every_pair_of_a_validation_query_from_pair_files_too(tmp_path):
    from tf_dualenc.tfx.components.retrieval_example_gen import _training_records

    data = write_tiny_beir(tmp_path / "beir")
    held_out = set(load_validation(data, fraction=0.2).qrels)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query_id": f"q{i}", "query": f"query {i}", "document_id": f"d{i}", "document": f"doc {i}"}) + "\n"
                             for i in range(48)))
    for source in (str(pairs), data):
        _, records = _training_records({"data": source, "data_format": "auto", "split": "train", "title_separator": " ",
                                        "lenient": 0}, held_out)
        kept = {r.query_id for r in records}
        assert kept == {f"q{i}" for i in range(48)} - held_out


class _SavingModel:
    def __init__(self, quality):
        self.quality = quality

    def save(self, path):
        pathlib.Path(path).write_text(str(self.quality))


def test_validation_tracker_state_survives_a_killed_run(tmp_path, monkeypatch):
    from tf_dualenc.training import validation_tracker
    from tf_dualenc.training.validation_tracker import ValidationTracker

    scores = iter([0.5, 0.7, 0.6])
    monkeypatch.setattr("tf_dualenc.evaluation.evaluate_retrieval",
                        lambda *a, **k: {"metrics": {"NDCG@10": next(scores), "MRR@10": 0.0, "P@1": 0.0, "Recall@100": 0.0}})
    dataset = load_validation(write_tiny_beir(tmp_path / "beir"), fraction=0.2)
    first = ValidationTracker(dataset, str(tmp_path))
    first.evaluate(_SavingModel("step 10"), 10)
    first.evaluate(_SavingModel("step 20"), 20)
    # The process dies here (no summary.json); a resumed run must not let a worse step replace the best model.
    resumed = ValidationTracker(dataset, str(tmp_path), previous=None)
    assert resumed.best_step == 20 and [h["step"] for h in resumed.history] == [10, 20]
    resumed.evaluate(_SavingModel("step 30"), 30)
    assert (tmp_path / "best_model.keras").read_text() == "step 20" and resumed.best_step == 20
    assert validation_tracker.json.loads((tmp_path / "validation.json").read_text())["best_value"] == 0.7


def test_the_evaluator_needs_the_config_that_rebuilds_its_starting_model():
    from tfx.types import Channel, standard_artifacts

    from tf_dualenc.tfx.artifacts import RetrievalDataset
    from tf_dualenc.tfx.components.retrieval_evaluator import RetrievalEvaluator

    with pytest.raises(ValueError, match="pass `starting_model`"):
        RetrievalEvaluator(model=Channel(type=standard_artifacts.Model), validation_dataset=Channel(type=RetrievalDataset))
