"""Multi-seed evidence from `benchmarks/quality.py` results: per-seed values, mean ± std per cell, and paired tests
between two losses.

    .venv/bin/python benchmarks/compare_losses.py [--dataset scifact] [--recipe strong] [--architecture sde]
                                                  [--a samtone --b in_batch] [--split test] [--measure NDCG@10]
    .venv/bin/python benchmarks/compare_losses.py --summary [--dataset scifact] [--recipe strong]
    .venv/bin/python benchmarks/compare_losses.py --ablations --architecture ade_spl --a samtone

Paired tests (a − b), on the queries of `--split`:
- over queries: each query's score averaged over the seeds both losses have, then a paired t-test and a paired
  bootstrap (10,000 resamples of queries; two-sided p = 2 × the smaller tail share) on the per-query differences;
- over seeds: the per-seed means, paired by seed (a t-test with n = seeds − 1 degrees of freedom; weak at 3 seeds).
Prints a Markdown table for docs/benchmarks.md and writes the numbers to
benchmarks/results/quality/compare_<dataset>_<recipe>_<architecture>_<a>_vs_<b>_<split>_<measure>.json.
"""

import argparse
import json
import pathlib

import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "quality"
METHODS = ("dense", "hybrid_rrf", "hybrid_interpolate")


def load_cells(dataset, recipe, architecture, loss):
    """{seed: result} for one (dataset, recipe, architecture, loss)."""
    cells = {}
    for path in sorted(RESULTS.glob(f"{dataset}_{recipe}_{architecture}_{loss}_seed*.json")):
        result = json.loads(path.read_text())
        cells[int(result["seed"])] = result
    return cells


def paired_tests(a, b, rng_seed=0, resamples=10_000):
    """Paired t-test and paired bootstrap on per-item differences a − b (arrays of equal length)."""
    from scipy import stats

    differences = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    t = stats.ttest_rel(a, b) if len(differences) > 1 and np.any(differences) else None
    rng = np.random.default_rng(rng_seed)
    means = differences[rng.integers(0, len(differences), (resamples, len(differences)))].mean(axis=1)
    tail = min(np.mean(means <= 0), np.mean(means >= 0))
    return {
        "n": int(len(differences)), "mean_difference": float(differences.mean()),
        "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))],
        "t_test_p": float(t.pvalue) if t is not None else 1.0, "bootstrap_p": float(min(1.0, 2 * tail)),
        "wins": int(np.sum(differences > 0)), "losses": int(np.sum(differences < 0)), "ties": int(np.sum(differences == 0)),
    }


def compare(dataset, recipe, architecture, loss_a, loss_b, split="test", measure="NDCG@10"):
    cells = {loss: load_cells(dataset, recipe, architecture, loss) for loss in (loss_a, loss_b)}
    seeds = sorted(set(cells[loss_a]) & set(cells[loss_b]))
    report = {"dataset": dataset, "recipe": recipe, "architecture": architecture, "split": split, "measure": measure,
              "losses": [loss_a, loss_b], "seeds": seeds, "methods": {}}
    for method in METHODS:
        if not all(method in cells[loss][s]["metrics"].get(split, {}) for loss in (loss_a, loss_b) for s in cells[loss]):
            continue  # e.g. no interpolation for runs scored without a validation split
        entry = {}
        for loss in (loss_a, loss_b):
            values = [cells[loss][s]["metrics"][split][method][measure] for s in sorted(cells[loss])]
            entry[loss] = {"per_seed": dict(zip(sorted(cells[loss]), values)), "mean": float(np.mean(values)) if values else None,
                           "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}
        if seeds:
            queries = sorted(cells[loss_a][seeds[0]]["per_query"][split][method][measure])
            per_query = {loss: np.mean([[cells[loss][s]["per_query"][split][method][measure][q] for q in queries] for s in seeds], axis=0)
                         for loss in (loss_a, loss_b)}
            entry["over_queries"] = paired_tests(per_query[loss_a], per_query[loss_b])
            if len(seeds) > 1:
                from scipy import stats

                a = [cells[loss_a][s]["metrics"][split][method][measure] for s in seeds]
                b = [cells[loss_b][s]["metrics"][split][method][measure] for s in seeds]
                entry["over_seeds"] = {"n": len(seeds), "mean_difference": float(np.mean(np.subtract(a, b))),
                                       "t_test_p": float(stats.ttest_rel(a, b).pvalue) if np.any(np.subtract(a, b)) else 1.0}
        report["methods"][method] = entry
    return report


def _cell(entry):
    if entry["mean"] is None:
        return "—"
    std = f" ± {entry['std']:.4f}" if entry["std"] is not None else ""
    return f"{entry['mean']:.4f}{std} (n={len(entry['per_seed'])})"


def markdown(report):
    a, b = report["losses"]
    lines = [f"| {report['dataset']} {report['architecture']} ({report['split']}, {report['measure']}) | {a} | {b} | "
             f"{a} − {b} | paired t (queries) | bootstrap (queries) | t (seeds) | verdict |", "|---|---|---|---|---|---|---|---|"]
    for method, entry in report["methods"].items():
        q = entry.get("over_queries")
        s = entry.get("over_seeds")
        verdict = "—"
        if q:
            significant = q["t_test_p"] < 0.05 and q["bootstrap_p"] < 0.05
            verdict = ("tie" if not significant else (f"{a} wins" if q["mean_difference"] > 0 else f"{b} wins"))
        lines.append(
            f"| {method} | {_cell(entry[a])} | {_cell(entry[b])} | "
            + (f"{q['mean_difference']:+.4f} [{q['ci95'][0]:+.4f}, {q['ci95'][1]:+.4f}] | p={q['t_test_p']:.3f} | p={q['bootstrap_p']:.3f} | "
               if q else "— | — | — | ")
            + (f"p={s['t_test_p']:.3f} |" if s else "— |") + f" {verdict} |")
    return "\n".join(lines)


def summary_table(dataset, recipe, measure="NDCG@10"):
    """Markdown: zero-shot, BM25 and every (architecture, loss) cell of `recipe`, dense and hybrid, validation and
    test, mean ± std over the seeds present."""
    rows = []
    zero_shot = RESULTS / f"{dataset}_zero_shot.json"
    if zero_shot.exists():
        result = json.loads(zero_shot.read_text())
        for method, label in (("bm25", "BM25"), ("dense", "zero-shot all-MiniLM-L6-v2"), ("hybrid_rrf", "zero-shot + BM25, RRF"),
                              ("hybrid_interpolate", "zero-shot + BM25, interpolation")):
            values = [f"{result['metrics'][split][method][measure]:.4f}" if method in result["metrics"].get(split, {}) else "—"
                      for split in ("validation", "test")]
            if any(value != "—" for value in values):
                rows.append((label, "—", *values))
    cells = {}
    for path in sorted(RESULTS.glob(f"{dataset}_{recipe}_*_seed*.json")):
        result = json.loads(path.read_text())
        if result.get("recipe") != recipe:  # "strong_*" variants share the prefix
            continue
        cells.setdefault((result["architecture"], result["loss"]), []).append(result)
    for (architecture, loss), results in sorted(cells.items()):
        for method, label in (("dense", "dense"), ("hybrid_rrf", "+ BM25, RRF"), ("hybrid_interpolate", "+ BM25, interpolation")):
            values = {split: [r["metrics"][split][method][measure] for r in results if method in r["metrics"].get(split, {})]
                      for split in ("validation", "test")}
            if not any(values.values()):
                continue
            text = {split: "—" if not v else f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}" if len(v) > 1 else f"{v[0]:.4f}"
                    for split, v in values.items()}
            seeds = ",".join(str(r["seed"]) for r in sorted(results, key=lambda r: r["seed"]))
            rows.append((f"{architecture} {loss} ({recipe}) {label}", seeds, text["validation"], text["test"]))
    lines = [f"| {dataset} ({measure}) | seeds | validation | test |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def ablation_table(dataset, architecture, loss, base="strong", measure="NDCG@10", method="dense"):
    """Markdown: each recipe that changes one piece of `base`, against `base` on the same seeds, per split: its
    mean (± sample std over seeds when there are several), the paired difference over queries (per-query scores
    averaged over the shared seeds) and its p-values."""
    runs = {}
    for path in sorted(RESULTS.glob(f"{dataset}_*_{architecture}_{loss}_seed*.json")):
        result = json.loads(path.read_text())
        if result.get("architecture") == architecture and result.get("loss") == loss and "recipe" in result:
            runs.setdefault(result["recipe"], {})[int(result["seed"])] = result
    base_runs = runs.pop(base, {})
    lines = [f"| {dataset} {architecture} {loss}: {base} with one change ({method} {measure}) | seeds | validation | "
             f"Δ vs {base} (p) | test | Δ vs {base} (p) |", "|---|---|---|---|---|---|"]
    for recipe, cells in sorted(runs.items()):
        seeds = sorted(set(cells) & set(base_runs))
        if not seeds:
            continue
        row = [recipe, ",".join(map(str, seeds))]
        for split in ("validation", "test"):
            if split not in cells[seeds[0]]["metrics"]:
                row += ["—", "—"]
                continue
            values = [cells[s]["metrics"][split][method][measure] for s in seeds]
            value = f"{np.mean(values):.4f}" + (f" ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else "")
            queries = sorted(base_runs[seeds[0]]["per_query"][split][method][measure])
            per_query = [np.mean([[r[s]["per_query"][split][method][measure][q] for q in queries] for s in seeds], axis=0)
                         for r in (cells, base_runs)]
            test = paired_tests(*per_query)
            row += [value, f"{test['mean_difference']:+.4f} (t p={test['t_test_p']:.3f}, bootstrap p={test['bootstrap_p']:.3f})"]
        lines.append(f"| {' | '.join(row)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--recipe", default="strong")
    parser.add_argument("--architecture", default="sde")
    parser.add_argument("--a", default="samtone")
    parser.add_argument("--b", default="in_batch")
    parser.add_argument("--split", default="test", choices=["test", "validation"])
    parser.add_argument("--measure", default="NDCG@10")
    parser.add_argument("--summary", action="store_true", help="print the table of every cell of the recipe instead")
    parser.add_argument("--ablations", action="store_true",
                        help="print each recipe that changes one piece of --recipe against it, for --architecture and --a")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary_table(args.dataset, args.recipe, args.measure))
        return
    if args.ablations:
        print(ablation_table(args.dataset, args.architecture, args.a, args.recipe, args.measure))
        return
    report = compare(args.dataset, args.recipe, args.architecture, args.a, args.b, args.split, args.measure)
    measure = args.measure.lower().replace("@", "")
    out = RESULTS / f"compare_{args.dataset}_{args.recipe}_{args.architecture}_{args.a}_vs_{args.b}_{args.split}_{measure}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(report))
    print(f"\nseeds with both losses: {report['seeds']}; wrote {out}")


if __name__ == "__main__":
    main()
