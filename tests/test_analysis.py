"""Embedding-space analysis: the numbers behind each figure against direct computation, PNGs, HTML, CLI, errors."""

import json

import numpy as np
import pytest

from tf_dualenc import cli
from tf_dualenc.analysis import AnalysisError, analyze_embeddings, sample_evaluation_set, write_report


def synthetic(n=40, d=16, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, d))
    p = q + 0.3 * rng.normal(size=(n, d))
    # A shared direction keeps cross-tower cosines positive, as in trained models (the ratio's denominator).
    q[:, 1] += 3.0
    p[:, 1] += 3.0
    q[:, 0] += shift  # moves the query cloud away from the document cloud
    others = rng.normal(size=(20, d))
    doc_ids = [f"p{i}" for i in range(n)] + [f"x{i}" for i in range(20)]
    qrels = {f"q{i}": {f"p{i}": 1, f"x{i % 20}": 0} for i in range(n)}
    return [f"q{i}" for i in range(n)], q, doc_ids, np.concatenate([p, others]), qrels


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_numbers_match_direct_computation():
    qids, q, dids, d, qrels = synthetic()
    a = analyze_embeddings("m", qids, q, dids, d, qrels, num_pairs=300, seed=3, tsne=False)
    qn, dn = unit(q), unit(d)
    np.testing.assert_allclose(a.top1_cosines, (qn @ dn.T).max(axis=1), atol=1e-12)
    assert len(a.ratios) == 300 and np.all(a.pair_indices[:, 0] != a.pair_indices[:, 1])
    for (i, j), r in zip(a.pair_indices[:10], a.ratios[:10]):
        assert r == pytest.approx((qn[i] @ qn[j]) / (qn[i] @ dn[j]))
    own = np.array([qn[i] @ dn[i] for i in range(len(q))])
    off = np.mean([qn[i] @ dn[j] for i in range(len(q)) for j in range(len(q)) if i != j])
    assert a.summary["alignment_positive_minus_random"] == pytest.approx(own.mean() - off)
    assert a.summary["centroid_distance"] == pytest.approx(np.linalg.norm(qn.mean(0) - dn[: len(q)].mean(0)))
    assert a.summary["ratio_median"] == pytest.approx(np.median(a.ratios))
    # Same seed, same numbers.
    again = analyze_embeddings("m", qids, q, dids, d, qrels, num_pairs=300, seed=3, tsne=False)
    np.testing.assert_array_equal(again.ratios, a.ratios)


def test_separated_towers_show_in_the_summaries():
    aligned = analyze_embeddings("aligned", *synthetic(), tsne=False)
    apart = analyze_embeddings("apart", *synthetic(shift=6.0), tsne=False)
    assert apart.summary["centroid_distance"] > 3 * aligned.summary["centroid_distance"]
    # Queries moved away from documents are closer to each other than to other queries' documents.
    assert apart.summary["ratio_median"] > 1.3 > 1.1 > aligned.summary["ratio_median"] > 0.9


def test_mismatches_get_clear_errors():
    qids, q, dids, d, qrels = synthetic()
    with pytest.raises(AnalysisError, match=r"need the same dimension"):
        analyze_embeddings("m", qids, q, dids, d[:, :8], qrels)
    with pytest.raises(AnalysisError, match=r"positive 'p3' of query 'q3' is not among the documents"):
        analyze_embeddings("m", qids, q, [x for x in dids if x != "p3"], np.delete(d, 3, axis=0), qrels)
    with pytest.raises(AnalysisError, match=r"query 'q0' has no positive document"):
        analyze_embeddings("m", qids, q, dids, d, dict(qrels, q0={"p0": 0}))
    with pytest.raises(AnalysisError, match=r"40 query ids for 39 vectors"):
        analyze_embeddings("m", qids, q[:39], dids, d, qrels)


def test_report_writes_readable_pngs_and_one_html(tmp_path):
    from PIL import Image

    analyses = [analyze_embeddings("in-batch", *synthetic(shift=4.0)), analyze_embeddings("SamToNe", *synthetic())]
    paths = write_report(analyses, str(tmp_path), context={"data": "synthetic"})
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["same_tower_ratio.png", "top1_cosine.png", "tsne_SamToNe.png", "tsne_in-batch.png"]
    for path in paths["images"].values():
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (640, 480)
            # Not a blank canvas: a plot has many colours.
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 20
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "SamToNe" in page and "mean top-1 cosine" in page
    assert json.loads((tmp_path / "summary.json").read_text())["models"]["SamToNe"]["queries"] == 40
    with pytest.raises(ValueError, match=r"unique"):
        write_report([analyses[0], analyses[0]], str(tmp_path))


def test_sampling_is_deterministic_and_keeps_positives(tmp_path):
    from test_beir import write_beir

    from tf_dualenc.data import load_beir

    dataset = load_beir(write_beir(tmp_path / "data"), "test")
    first = sample_evaluation_set(dataset, num_queries=1, num_documents=2, seed=5)
    assert first == sample_evaluation_set(dataset, num_queries=1, num_documents=2, seed=5)
    qids, dids = sample_evaluation_set(dataset, num_queries=10, num_documents=1, seed=0)
    for qid in qids:
        assert any(doc in dids for doc, grade in dataset.qrels[qid].items() if grade > 0)


def test_analyze_cli_compares_models(tmp_path, t5_vocabulary, capsys):
    from test_beir import write_beir
    from test_models import tiny

    data = write_beir(tmp_path / "data")
    for name, architecture in (("sde", "sde"), ("ade_spl", "ade_spl")):
        tiny(t5_vocabulary, architecture).save(tmp_path / f"{name}.keras")
    assert cli.main(["analyze", "--model", f"SDE={tmp_path / 'sde.keras'}", "--model", f"ADE-SPL={tmp_path / 'ade_spl.keras'}",
                     "--data", str(data), "--output-dir", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.html").exists() and (tmp_path / "report" / "tsne_ADE-SPL.png").exists()
    # Each model encodes the sampled queries (the 2 with a positive) and documents (all 3), with progress on stderr.
    err = capsys.readouterr().err
    assert err.count("encoding queries: 2/2 (100.0%), ") == 2 and err.count("encoding documents: 3/3 (100.0%), ") == 2
    assert cli.main(["analyze", "--model", f"SDE={tmp_path / 'sde.keras'}", "--data", str(data), "--output-dir",
                     str(tmp_path / "quiet"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "encoding queries:" not in err and "encoding documents:" not in err
    assert cli.main(["analyze", "--model", "nameonly", "--data", str(data), "--output-dir", str(tmp_path / "r")]) == 2
    assert "--model expects NAME=PATH" in capsys.readouterr().err
