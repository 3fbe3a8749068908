"""The statistics behind the multi-seed loss comparison (benchmarks/compare_losses.py)."""

import json
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import compare_losses  # noqa: E402


def test_paired_tests_separate_a_consistent_gain_from_noise():
    from scipy import stats

    rng = np.random.default_rng(0)
    base = rng.uniform(size=300)
    gain = compare_losses.paired_tests(base + 0.05, base)
    assert gain["mean_difference"] == pytest.approx(0.05) and gain["wins"] == 300 and gain["bootstrap_p"] == 0.0
    noise = rng.normal(scale=0.1, size=300)
    tie = compare_losses.paired_tests(base + noise, base)
    assert tie["t_test_p"] == pytest.approx(stats.ttest_rel(base + noise, base).pvalue)
    assert tie["ci95"][0] < tie["mean_difference"] < tie["ci95"][1]
    same = compare_losses.paired_tests(base, base)
    assert same["t_test_p"] == 1.0 and same["ties"] == 300


def test_compare_averages_seeds_per_query_and_pairs_by_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_losses, "RESULTS", tmp_path)
    queries = [f"q{i}" for i in range(40)]
    rng = np.random.default_rng(1)
    for loss, shift in (("a", 0.1), ("b", 0.0)):
        for seed in (0, 1, 2):
            per_query = {q: float(np.clip(rng.uniform() * 0.5 + shift, 0, 1)) for q in queries}
            methods = {m: {"NDCG@10": per_query} for m in compare_losses.METHODS}
            metrics = {m: {"NDCG@10": float(np.mean(list(per_query.values())))} for m in compare_losses.METHODS}
            (tmp_path / f"d_r_sde_{loss}_seed{seed}.json").write_text(json.dumps(
                {"seed": seed, "metrics": {"test": metrics}, "per_query": {"test": methods}}))
    report = compare_losses.compare("d", "r", "sde", "a", "b")
    dense = report["methods"]["dense"]
    assert report["seeds"] == [0, 1, 2] and dense["over_seeds"]["n"] == 3
    assert dense["a"]["mean"] - dense["b"]["mean"] == pytest.approx(dense["over_queries"]["mean_difference"])
    assert dense["over_queries"]["n"] == 40 and dense["over_queries"]["mean_difference"] > 0.05
    assert "| dense |" in compare_losses.markdown(report) and "a wins" in compare_losses.markdown(report)


def test_quality_trains_on_every_pair_of_a_sample_of_training_queries(tmp_path):
    import quality

    source = tmp_path / "pairs.jsonl"
    records = [{"query_id": f"q{i}", "query": f"query {i}", "document_id": f"d{i}-{j}", "document": f"doc {i} {j}"}
               for i in range(50) for j in range(1 + i % 2)]
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    sampled = [json.loads(line) for line in open(quality._sampled_pairs(source, 10, tmp_path))]
    queries = {r["query_id"] for r in sampled}
    assert len(queries) == 10
    assert sampled == [r for r in records if r["query_id"] in queries]  # both pairs of a two-pair query, in file order


@pytest.mark.parametrize("name", ["strong", "quick"])
def test_each_recipe_file_is_the_benchmark_cell_it_was_chosen_as(name):
    import quality

    from tf_dualenc.training import TrainConfig

    recipe, architecture, variant = quality.RECIPE_FILES[name]
    measured = TrainConfig(**{k: v for k, v in quality.cell_settings(recipe, architecture, variant).items()}).to_dict()
    shipped = TrainConfig.from_recipe(name).to_dict()
    # Keys that change how fast or in how much memory, not what, a run trains: logging, the batch of the corpus
    # encodings, gradient caching (the cached step takes the plain step's gradient; tests/test_cached_step.py).
    differing = {k: (measured[k], shipped[k]) for k in measured if measured[k] != shipped[k]
                 and k not in ("recipe", "log_every", "encode_batch_size", "mini_batch_size")}
    # The one key a recipe file may state differently: precision, "auto" (bfloat16 where the hardware computes it).
    assert differing.pop("mixed_precision", ("float32", "auto"))[1] == "auto"
    assert differing == {}
