"""Cross-encoder, listwise losses, hard-negative mining and denoising, re-ranking and joint training."""

import json

import numpy as np
import pytest
import tensorflow as tf

from pipeline_data import write_tiny_beir
from test_export import run_fresh
from tf_dualenc.losses import listwise_kl_divergence, listwise_softmax_loss


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_listwise_softmax_loss_matches_numpy():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 4)).astype(np.float32) * 3
    expected = -np.mean(_log_softmax(scores / 0.5)[:, 0])
    np.testing.assert_allclose(listwise_softmax_loss(scores, temperature=0.5).numpy(), expected, rtol=1e-5)
    mask = np.ones_like(scores, bool)
    mask[:, 3] = False
    np.testing.assert_allclose(listwise_softmax_loss(scores, mask=mask).numpy(), -np.mean(_log_softmax(scores[:, :3])[:, 0]), rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[batch, candidates\]"):
        listwise_softmax_loss(np.zeros(4, np.float32))


@pytest.mark.parametrize("direction", ["student_teacher", "teacher_student"])
def test_listwise_kl_divergence_matches_numpy(direction):
    rng = np.random.default_rng(1)
    student, teacher = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32) * 2
    log_s, log_t = _log_softmax(student / 0.05), _log_softmax(teacher / 2.0)
    log_p, log_q = (log_s, log_t) if direction == "student_teacher" else (log_t, log_s)
    expected = np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=-1))
    got = listwise_kl_divergence(student, teacher, 0.05, 2.0, direction).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert abs(float(listwise_kl_divergence(teacher, teacher))) < 1e-6
    with pytest.raises(ValueError, match="direction"):
        listwise_kl_divergence(student, teacher, direction="sideways")


def test_reranker_loss_adds_a_calibrating_pointwise_term():
    from tf_dualenc.reranking.listwise_training import reranker_loss

    scores = np.array([[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]], np.float32)
    labels = np.array([[1, 0, 0], [1, 0, 0]], np.float32)
    bce = np.mean(np.log1p(np.exp(-scores)) * labels + np.log1p(np.exp(scores)) * (1 - labels))
    expected = -np.mean(_log_softmax(scores)[:, 0]) + 0.5 * bce
    np.testing.assert_allclose(reranker_loss(scores, pointwise_weight=0.5).numpy(), expected, rtol=1e-5)
    # The listwise term alone ignores a shift of every score; the pointwise term does not.
    shifted = scores + 3.0
    assert float(reranker_loss(shifted, pointwise_weight=0.0)) == pytest.approx(float(reranker_loss(scores, pointwise_weight=0.0)), rel=1e-5)
    assert float(reranker_loss(shifted)) != pytest.approx(float(reranker_loss(scores)), rel=1e-3)


def _table_scorer(table):
    """A scorer whose score for (query, document) is looked up in `table[document]`."""
    return lambda queries, documents: np.asarray([table[d] for d in documents], np.float32)


def test_denoising_keeps_and_drops_the_right_candidates():
    from tf_dualenc.reranking import denoise_candidates

    # Logits → probabilities 0.018, 0.5, 0.982, 0.881, 0.924.
    table = {"about cats": -4.0, "neutral": 0.0, "the answer": 4.0, "nearly": 2.0, "likely": 2.5}
    candidates = [(f"d{i}", text) for i, text in enumerate(table)]
    kept, dropped = denoise_candidates("q", candidates, _table_scorer(table), threshold=0.9)
    assert [d for d, _, _ in kept] == ["d0", "d1", "d3"]
    assert [d for d, _, _ in dropped] == ["d2", "d4"]
    assert dropped[0][2] == pytest.approx(1 / (1 + np.exp(-4.0)))
    kept, dropped = denoise_candidates("q", candidates, _table_scorer(table), threshold=0.5)
    assert [d for d, _, _ in dropped] == ["d2", "d3", "d4"]  # 0.5 itself is not above the threshold: kept
    with pytest.raises(ValueError, match="probability"):
        denoise_candidates("q", candidates, _table_scorer(table), threshold=1.0)


def test_reranking_changes_the_order_exactly_as_the_scores_say():
    from tf_dualenc.reranking import rerank_hits

    hits = [{"id": f"d{i}", "score": 1.0 - i / 10, "text": f"t{i}"} for i in range(5)]
    table = {"t0": 0.1, "t1": 0.9, "t2": 0.5, "t3": 0.9, "t4": -1.0}
    reranked = rerank_hits("q", hits, _table_scorer(table))
    assert [h["id"] for h in reranked] == ["d1", "d3", "d2", "d0", "d4"]  # ties keep the first-stage order
    assert [h["score"] for h in reranked] == pytest.approx([0.9, 0.9, 0.5, 0.1, -1.0])
    assert [h["retrieval_score"] for h in reranked] == pytest.approx([0.9, 0.7, 0.8, 1.0, 0.6])
    assert [h["id"] for h in rerank_hits("q", hits, _table_scorer(table), top_n=2)] == ["d1", "d3"]
    with pytest.raises(ValueError, match="needs each hit's text"):
        rerank_hits("q", [{"id": "d0", "score": 1.0}], _table_scorer(table))


def test_rerank_run_puts_the_reranked_head_first_then_the_rest_in_order():
    from tf_dualenc.evaluation import rerank_run

    run = {"q1": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}}
    table = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 99.0}
    out = rerank_run(run, {"q1": "query"}, lambda d: d, _table_scorer(table), rerank_k=3)
    assert sorted(out["q1"], key=lambda d: -out["q1"][d]) == ["c", "b", "a", "d"]


def test_hard_negatives_exclude_known_positives(tmp_path):
    from tf_dualenc.data import load_beir
    from tf_dualenc.reranking import build_candidate_lists, mine_hard_negatives

    dataset = load_beir(write_tiny_beir(tmp_path / "data"), "train")
    mined = mine_hard_negatives(dataset, retriever="bm25", depth=10)
    assert set(mined) == set(dataset.qrels)
    for qid, negatives in mined.items():
        positives = {d for d, s in dataset.qrels[qid].items() if s > 0}
        assert not positives & {d for d, _ in negatives}
        assert all(text == dataset.document_text(d) for d, text in negatives)
    # BM25 leaves out documents sharing no term with the query, so a few lists may be empty, not most.
    assert sum(bool(negatives) for negatives in mined.values()) > len(mined) // 2

    class Identity:  # a "dense" model that embeds texts by their position in a fixed list: exact matches rank first
        def __init__(self, texts):
            self.index = {t: i for i, t in enumerate(texts)}

        def encode(self, texts, batch_size=64):
            out = np.zeros((len(texts), len(self.index)), np.float32)
            for row, text in enumerate(texts):
                out[row, self.index.get(text, 0)] = 1.0
            return out

        encode_queries = encode_documents = encode

    docs = [dataset.document_text(d) for d in dataset.corpus]
    dense = mine_hard_negatives(dataset, retriever="dense", model=Identity(docs), depth=5, skip_top=1)
    for qid, negatives in dense.items():
        assert len(negatives) <= 4 and not {d for d, s in dataset.qrels[qid].items() if s > 0} & {d for d, _ in negatives}
    lists = build_candidate_lists(dataset.training_pairs(), mined, list_size=4)
    assert lists and all(len(item.documents) == 4 and item.document_ids[0] in dataset.qrels[item.query_id] for item in lists)
    with pytest.raises(ValueError, match="list_size"):
        build_candidate_lists(dataset.training_pairs(), mined, list_size=1)


def test_hybrid_negatives_take_denoised_first_then_fill_from_undenoised():
    from tf_dualenc.reranking import hybrid_negatives

    undenoised = [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D"), ("e", "E")]
    denoised = [("a", "A", 0.1), ("c", "C", 0.2), ("e", "E", 0.3)]  # b and d were dropped as likely positives
    assert hybrid_negatives(denoised, undenoised, 4) == [("a", "A"), ("c", "C"), ("b", "B"), ("d", "D")]
    assert hybrid_negatives(denoised, undenoised, 3, denoised_share=1.0) == [("a", "A"), ("c", "C"), ("e", "E")]
    assert hybrid_negatives(denoised, undenoised, 2, denoised_share=0.0) == [("a", "A"), ("b", "B")]
    # Too few undenoised ones: topped up from the denoised list, never repeated.
    assert hybrid_negatives([("x", "X"), ("y", "Y")], [("x", "X")], 4) == [("x", "X"), ("y", "Y")]
    with pytest.raises(ValueError, match="denoised_share"):
        hybrid_negatives(denoised, undenoised, 2, denoised_share=1.5)


def test_list_ranking_metrics_count_ties_against_the_positive():
    from tf_dualenc.reranking.listwise_training import list_ranking_metrics

    scores = [[3.0, 1.0, 2.0], [1.0, 2.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]
    ranks = np.array([1, 2, 3, 3])
    assert list_ranking_metrics(scores) == pytest.approx({"list_accuracy": 0.25, "list_mrr": float(np.mean(1 / ranks))})
    from tf_dualenc.reranking.listwise_training import validate_cross_encoder

    with pytest.raises(ValueError, match="no validation candidate lists"):
        validate_cross_encoder(None, [])
    with pytest.raises(ValueError, match="validation candidate lists must all have the same size"):
        validate_cross_encoder(None, _lists(2) + [_lists(1)[0].__class__("q", "q", ["p", "n"], ["p", "n"])])


def test_warmup_linear_decay_follows_the_formula():
    from tf_dualenc.reranking.listwise_training import warmup_linear_decay

    schedule = warmup_linear_decay(1e-3, 10, warmup_steps=4)
    expected = [1e-3 * (s + 1) / 4 if s < 4 else 1e-3 * (10 - s) / 6 for s in range(12)]
    expected = [max(e, 0.0) for e in expected]
    np.testing.assert_allclose([float(schedule(s)) for s in range(12)], expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose([float(warmup_linear_decay(1.0, 4)(s)) for s in range(4)], [1.0, 0.75, 0.5, 0.25])
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_linear_decay(1e-3, 10, warmup_steps=10)


def test_candidate_lists_round_trip_through_the_pair_file(tmp_path):
    from tf_dualenc.data import iter_pair_records
    from tf_dualenc.reranking import read_candidate_lists, write_candidate_lists

    lists = _lists(6)
    path = write_candidate_lists(lists, str(tmp_path / "lists" / "mined.jsonl"))
    # The file is a training-pair file `tf-dualenc train` reads with hard negatives.
    records = list(iter_pair_records([path], num_negatives=3))
    assert [r.negatives for r in records] == [tuple(item.documents[1:]) for item in lists]
    back, skipped = read_candidate_lists(path, 4)
    assert skipped == {} and [(b.query_id, b.document_ids, b.documents) for b in back] == [
        (a.query_id, a.document_ids, a.documents) for a in lists]
    hardest, _ = read_candidate_lists(path, 2)
    assert [b.document_ids for b in hardest] == [a.document_ids[:2] for a in lists]
    sampled, _ = read_candidate_lists(path, 3, seed=0)
    for a, b in zip(lists, sampled):
        assert b.document_ids[0] == a.document_ids[0] and set(b.document_ids[1:]) <= set(a.document_ids[1:])
        assert len(set(b.document_ids)) == 3 and [a.documents[a.document_ids.index(i)] for i in b.document_ids] == b.documents
    with pytest.raises(ValueError, match=r"mined.jsonl.*has 3 negatives; list_size=5"):
        read_candidate_lists(path, 5)
    assert read_candidate_lists(path, 5, lenient=True) == ([], {"too few negatives": 6})
    (tmp_path / "bad.jsonl").write_text('{"query": "q", "document": "d", "negatives": ["n"]}\n{"query": "q2"}\n')
    with pytest.raises(Exception, match=r"bad.jsonl:2"):
        read_candidate_lists(str(tmp_path / "bad.jsonl"), 2)
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_candidate_lists(str(tmp_path / "missing.jsonl"), 2)


def test_mined_candidate_lists_are_denoised_and_counted(tmp_path):
    from tf_dualenc.data import load_beir
    from tf_dualenc.reranking import mine_candidate_lists, mine_hard_negatives

    dataset = load_beir(write_tiny_beir(tmp_path / "data"), "train")
    mined = mine_hard_negatives(dataset, retriever="bm25", depth=10)
    plain, stats = mine_candidate_lists(dataset, retriever="bm25", depth=10, negatives_per_query=3)
    assert stats["dropped_by_denoising"] == 0 and stats["negatives_mined"] == sum(min(len(v), 3) for v in mined.values())
    for item in plain:
        assert item.document_ids[1:] == [d for d, _ in mined[item.query_id][:3]]
    # A scorer that calls every document whose id ends in an even digit a likely positive.
    even = {d for d in dataset.corpus if d[-1] in "02468"}
    scorer = lambda queries, documents: np.asarray(  # noqa: E731
        [5.0 if any(dataset.document_text(d) == text for d in even) else -5.0 for text in documents], np.float32)
    denoised, stats = mine_candidate_lists(dataset, retriever="bm25", depth=10, negatives_per_query=3, scorer=scorer)
    dropped = sum(len([d for d, _ in mined[q][:3] if d in even]) for q in mined)
    assert stats["dropped_by_denoising"] == dropped > 0
    assert all(not set(item.document_ids[1:]) & even for item in denoised)
    hybrid, _ = mine_candidate_lists(dataset, retriever="bm25", depth=10, negatives_per_query=3, scorer=scorer, hybrid=True)
    by_query = {item.query_id: item for item in hybrid}
    for item in denoised:  # ceil(3 × 0.5) = 2 denoised negatives lead each hybrid list
        leading = min(2, len(item.document_ids) - 1)
        assert by_query[item.query_id].document_ids[1 : 1 + leading] == item.document_ids[1 : 1 + leading]
    # Hybrid lists draw from a pool of twice the list's negatives: denoised ones first, then the pool in rank order.
    for query_id, item in by_query.items():
        pool = [d for d, _ in mined[query_id][:6]]
        kept = [d for d in pool if d not in even]
        expected = kept[:2] + [d for d in pool if d not in kept[:2]]
        expected = (expected + [d for d in kept if d not in expected])[:3]
        assert item.document_ids[1:] == expected
    assert any(set(item.document_ids[1:]) & even for item in hybrid)
    with pytest.raises(ValueError, match="hybrid"):
        mine_candidate_lists(dataset, hybrid=True)


@pytest.fixture(scope="module")
def tiny_cross_encoder(t5_vocabulary):
    from tf_dualenc.models import build_t5_cross_encoder

    return build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=48, dropout=0.0)


def test_cross_encoder_scores_lists_and_pairs_consistently(tiny_cross_encoder, tmp_path):
    import keras

    queries = ["who wrote hamlet", "capital of france"]
    documents = [["Hamlet is by Shakespeare.", "Paris is in France.", "x"], ["Paris is the capital.", "y", "Berlin."]]
    listwise = tiny_cross_encoder({"query": tf.constant(queries), "documents": tf.constant(documents)}).numpy()
    pairs = tiny_cross_encoder.score_pairs([q for q, row in zip(queries, documents) for _ in row], sum(documents, []))
    np.testing.assert_allclose(listwise.reshape(-1), pairs, atol=2e-5)
    path = tmp_path / "reranker.keras"
    tiny_cross_encoder.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.score_pairs(["who wrote hamlet"], ["Hamlet is by Shakespeare."]), pairs[:1], atol=1e-6)
    with pytest.raises(ValueError, match="as many queries as documents"):
        tiny_cross_encoder.score_pairs(["a"], ["b", "c"])


def test_cross_encoder_export_reloads_in_a_fresh_process(tiny_cross_encoder, tmp_path):
    from tf_dualenc.export import ExportedCrossEncoder, export_cross_encoder

    result = export_cross_encoder(tiny_cross_encoder, str(tmp_path / "exports"), "reranker")
    assert result.manifest["kind"] == "cross_encoder" and result.op_audit["stock_tf_serving_compatible"]
    queries, documents = ["who wrote hamlet", "q2", "capital of france"], ["Hamlet is by Shakespeare.", "d2", "Paris."]
    expected = tiny_cross_encoder.score_pairs(queries, documents)
    fresh = run_fresh(result.path, [["score", {"query": queries, "document": documents}]], tmp_path)
    np.testing.assert_allclose(fresh[0]["score"], expected, atol=1e-5)
    np.testing.assert_allclose(ExportedCrossEncoder(result.path).score_pairs(queries, documents), expected, atol=1e-5)


def _lists(count=16):
    from tf_dualenc.reranking import CandidateList

    topics = ["cats", "rivers", "music", "stars", "bread", "trains", "snow", "glass"]
    lists = []
    for i in range(count):
        topic = topics[i % len(topics)]
        others = [t for t in topics if t != topic][:3]
        lists.append(CandidateList(f"q{i}", f"tell me about {topic}", [f"p{i}"] + [f"n{i}_{j}" for j in range(3)],
                                   [f"{topic} {topic} facts"] + [f"{o} {o} facts" for o in others]))
    return lists


@pytest.mark.slow
def test_cross_encoder_training_lowers_the_listwise_loss(t5_vocabulary):
    from tf_dualenc.models import build_t5_cross_encoder
    from tf_dualenc.reranking.listwise_training import train_cross_encoder

    model = build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=24, dropout=0.0)
    lists = _lists()
    history = train_cross_encoder(model, lists, steps=30, batch_size=8, learning_rate=3e-3, warmup_steps=3, print_fn=lambda *a: None,
                                  validation_lists=lists[:8], validate_every=15)
    losses = history["loss"]
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3
    assert [v["step"] for v in history["validation"]] == [15, 30]
    assert history["validation"][-1]["list_accuracy"] >= 0.5
    # The model ends with the weights of its best validation step.
    from tf_dualenc.reranking.listwise_training import validate_cross_encoder

    best = max(history["validation"], key=lambda v: v["list_mrr"])
    assert history["best_step"] == best["step"]
    assert validate_cross_encoder(model, lists[:8], 8)["list_mrr"] == pytest.approx(best["list_mrr"])


@pytest.mark.slow
def test_cross_encoder_training_keeps_the_best_validation_weights(t5_vocabulary):
    from tf_dualenc.models import build_t5_cross_encoder
    from tf_dualenc.reranking.listwise_training import train_cross_encoder, validate_cross_encoder

    model = build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=24, dropout=0.0)
    lists = _lists()
    # Validation lists whose labels contradict training (the "positive" is an off-topic document): the more the model
    # learns, the worse it validates, so the best step comes early and the last one is worse.
    from tf_dualenc.reranking import CandidateList

    contrary = [CandidateList(c.query_id, c.query, c.document_ids, [c.documents[1], c.documents[0]] + c.documents[2:])
                for c in lists[:8]]
    history = train_cross_encoder(model, lists, steps=12, batch_size=8, learning_rate=3e-3, print_fn=lambda *a: None,
                                  validation_lists=contrary, validate_every=1)
    scores = [v["list_mrr"] for v in history["validation"]]
    assert history["best_step"] == history["validation"][int(np.argmax(scores))]["step"] < 12
    assert scores[-1] < max(scores)
    assert validate_cross_encoder(model, contrary, 8)["list_mrr"] == pytest.approx(max(scores))


@pytest.mark.slow
def test_joint_training_updates_both_models_and_aligns_them(t5_vocabulary):
    from tf_dualenc.models import build_t5_cross_encoder, build_t5_dual_encoder
    from tf_dualenc.reranking.listwise_training import train_jointly

    retriever = build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, architecture="sde", query_sequence_length=12,
                                      document_sequence_length=12, dropout=0.0)
    reranker = build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=24, dropout=0.0)
    before = [v.numpy().copy() for v in (retriever.trainable_variables[0], reranker.trainable_variables[0])]
    history = train_jointly(retriever, reranker, _lists(), steps=30, batch_size=8, retriever_learning_rate=3e-3,
                            reranker_learning_rate=3e-3, print_fn=lambda *a: None)
    after = [v.numpy() for v in (retriever.trainable_variables[0], reranker.trainable_variables[0])]
    assert all(np.abs(a - b).max() > 0 for a, b in zip(after, before))
    assert np.mean(history["reranker_loss"][-5:]) < np.mean(history["reranker_loss"][:5])
    assert all(np.isfinite(history["loss"]))


@pytest.mark.slow
def test_two_stage_retriever_reranks_the_first_stage_hits(tmp_path, t5_vocabulary, tiny_cross_encoder, capsys):
    from tf_dualenc.evaluation import evaluate_reranking
    from tf_dualenc.data import load_beir
    from tf_dualenc.indexing import RetrievalIndex, build_index
    from tf_dualenc.models import build_t5_dual_encoder
    from tf_dualenc.export import ExportedDualEncoder, export_cross_encoder, export_encoder
    from tf_dualenc.reranking import TwoStageRetriever, rerank_hits
    from tf_dualenc import cli

    dataset = load_beir(write_tiny_beir(tmp_path / "data"), "test")
    model = build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, architecture="sde", query_sequence_length=16, document_sequence_length=32)
    doc_ids = list(dataset.corpus)
    texts = [dataset.document_text(d) for d in doc_ids]
    vectors = model.encode_documents(texts)
    encoder_export = export_encoder(model, str(tmp_path / "exports"), "retriever").path
    build_index(iter(zip(doc_ids, texts, vectors)), str(tmp_path / "index"), dimension=vectors.shape[1], count=len(doc_ids),
                method="brute_force", model_info={"export": encoder_export}, print_fn=lambda *a: None)
    index = RetrievalIndex.load(str(tmp_path / "index"))
    retriever = TwoStageRetriever(index, model.encode_queries, tiny_cross_encoder.score_pairs, k=8, top_n=3)
    query = "Where is the Eiffel Tower?"
    results = retriever.search([query])
    first = index.search_embeddings(model.encode_queries([query]), k=8)[0]
    assert [h["id"] for h in results[0]] == [h["id"] for h in rerank_hits(query, first, tiny_cross_encoder.score_pairs, 3)]
    assert set(retriever.last_timings) == {"retrieval_seconds", "rerank_seconds", "queries"}

    report = evaluate_reranking(dataset, model=model, scorer=tiny_cross_encoder.score_pairs, k=20, rerank_k=10,
                                output_dir=str(tmp_path / "eval"))
    assert set(report["retrieval"]) == set(report["reranked"]) >= {"NDCG@10", "MRR@10", "P@1"}
    assert report["latency_ms_per_query"]["rerank"] > 0
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["config"] == {"k": 20, "rerank_k": 10, "weight": 1.0, "queries": 16, "documents": 64, "measures": saved["config"]["measures"],
                               "ignore_identical_ids": False}

    # The same through the command line, with both models exported.
    reranker_export = export_cross_encoder(tiny_cross_encoder, str(tmp_path / "exports"), "reranker").path
    assert cli.main(["search", "--index", str(tmp_path / "index"), "--query", query, "--k", "3", "--rerank", reranker_export,
                     "--rerank-k", "8", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    exported_first = index.search_embeddings(ExportedDualEncoder(encoder_export).encode_queries([query]), k=8)[0]
    expected = rerank_hits(query, exported_first, tiny_cross_encoder.score_pairs, 3)
    assert [h["id"] for h in printed["hits"]] == [h["id"] for h in expected]
    np.testing.assert_allclose([h["score"] for h in printed["hits"]], [h["score"] for h in expected], atol=1e-5)


def test_dense_mine_negatives_shows_encoding_progress_unless_quiet(tmp_path, t5_vocabulary, capsys):
    from test_beir import write_beir
    from tf_dualenc import cli
    from tf_dualenc.models import build_t5_dual_encoder

    path = tmp_path / "m.keras"
    build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, query_sequence_length=8, document_sequence_length=16).save(path)
    data = write_beir(tmp_path / "data")
    argv = ["mine-negatives", "--data", str(data), "--split", "test", "--retriever", "dense", "--model", str(path), "--depth", "3"]
    assert cli.main([*argv, "--output", str(tmp_path / "lists.jsonl")]) == 0
    err = capsys.readouterr().err
    # The corpus (3 documents) and the queries with a positive (2): the last line of each.
    assert "encoding documents: 3/3 (100.0%), " in err and "encoding queries: 2/2 (100.0%), " in err
    assert cli.main([*argv, "--output", str(tmp_path / "quiet.jsonl"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "encoding documents:" not in err and "encoding queries:" not in err


@pytest.mark.slow
def test_cli_mines_trains_exports_and_trains_jointly(tmp_path, t5_vocabulary, capsys):
    from tf_dualenc import cli
    from tf_dualenc.export import ExportedCrossEncoder
    from tf_dualenc.models import build_t5_dual_encoder
    from tf_dualenc.reranking import read_candidate_lists

    data = write_tiny_beir(tmp_path / "data")
    mined = str(tmp_path / "mined.jsonl")
    assert cli.main(["mine-negatives", "--data", data, "--output", mined, "--depth", "10", "--negatives", "3"]) == 0
    lists, _ = read_candidate_lists(mined, 2)
    assert len(lists) > 24 and "wrote" in capsys.readouterr().out
    assert cli.main(["mine-negatives", "--data", data, "--output", mined]) == 2  # never overwrites silently
    assert cli.main(["mine-negatives", "--data", data, "--output", str(tmp_path / "x.jsonl"), "--hybrid"]) == 2
    assert "--hybrid mixes" in capsys.readouterr().err

    reranker_dir = tmp_path / "reranker"
    args = ["--data", mined, "--list-size", "3", "--steps", "4", "--batch-size", "4", "--lenient", "--log-every", "2"]
    assert cli.main(["train-reranker", *args, "--output-dir", str(reranker_dir), "--tower", "t5", "--vocabulary", t5_vocabulary,
                     "--pair-length", "32", "--validation-data", mined, "--warmup-steps", "1"]) == 0
    training = json.loads((reranker_dir / "training.json").read_text())
    assert len(training["loss"]) == 4 and training["validation"][-1]["step"] == 4
    # The record holds what the run was given, not the parser's namespace.
    assert training["settings"] == {"steps": 4, "batch_size": 4, "learning_rate": 5e-5, "warmup_steps": 1, "pointwise_weight": 0.5,
                                    "seed": 0, "validate_every": None, "log_every": 2}
    assert training["inputs"]["data"] == mined and training["inputs"]["pair_length"] == 32 and "func" not in json.dumps(training)
    assert cli.main(["train-reranker", *args, "--output-dir", str(reranker_dir), "--tower", "t5", "--vocabulary", t5_vocabulary]) == 2
    assert "already holds reranker.keras" in capsys.readouterr().err

    assert cli.main(["export", "--model", str(reranker_dir / "reranker.keras"), "--export-base", str(tmp_path / "exports"),
                     "--model-name", "reranker"]) == 0
    exported = ExportedCrossEncoder(str(tmp_path / "exports" / "reranker" / "1"))
    assert exported.score_pairs(["q"], ["d"]).shape == (1,)

    retriever = build_t5_dual_encoder("tiny", vocabulary=t5_vocabulary, architecture="sde", query_sequence_length=12,
                                      document_sequence_length=16)
    retriever.save(tmp_path / "retriever.keras")
    joint_dir = tmp_path / "joint"
    assert cli.main(["train-joint", *args, "--output-dir", str(joint_dir), "--dual-encoder", str(tmp_path / "retriever.keras"),
                     "--reranker", str(reranker_dir / "reranker.keras")]) == 0
    assert {p.name for p in joint_dir.iterdir()} == {"dual_encoder.keras", "reranker.keras", "training.json"}
    assert len(json.loads((joint_dir / "training.json").read_text())["kl"]) == 4
    # A dual encoder where a cross-encoder belongs is named as such.
    assert cli.main(["train-joint", *args, "--output-dir", str(tmp_path / "joint2"), "--dual-encoder", str(tmp_path / "retriever.keras"),
                     "--reranker", str(tmp_path / "retriever.keras")]) == 2
    assert "not a CrossEncoder" in capsys.readouterr().err
