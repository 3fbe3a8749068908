"""Writes the retrieval-quality tables of docs/benchmarks.md (between its `<!-- NAME -->` markers) from the result
files of `benchmarks/quality.py` and `benchmarks/cascade.py`, through `benchmarks/compare_losses.py`:

    .venv/bin/python benchmarks/quality_report.py
"""

import json
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "quality"


def compare(*args):
    output = subprocess.run([sys.executable, "benchmarks/compare_losses.py", *args], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    return output.split("\n\nseeds")[0].strip()


def cascade_table(path):
    result = json.loads(path.read_text())
    rows = ["| stage | validation NDCG@10 | test NDCG@10 | test MRR@10 | test P@1 |", "|---|---|---|---|---|"]
    for stage in result["metrics"]["test"]:
        validation, test = result["metrics"]["validation"][stage], result["metrics"]["test"][stage]
        rows.append(f"| {stage} | {validation['NDCG@10']:.4f} | {test['NDCG@10']:.4f} | {test['MRR@10']:.4f} | {test['P@1']:.4f} |")
    text = "\n".join(rows) + (
        f"\n\nHybrid weight {result['hybrid_weight']} (dense share), cross-encoder weight {result['rerank_weight']}, re-ranking "
        f"the top {result['rerank_k']}; both weights chosen on validation. Re-ranking took {result['rerank_ms_per_query']['test']} ms "
        "per test query (machine shared with other jobs).")
    if "reranker_training" in result:
        training = result["reranker_training"]
        text += (f" Cross-encoder: {training['lists']} training lists, {training['seconds']} s; validation list MRR by step "
                 + ", ".join(f"{h['step']}: {h['list_mrr']:.3f}" for h in training["validation"]) + f"; kept step {training['best_step']}.")
    return text


def cascade_seeds_table(paths):
    """Each cascade stage over several first-stage seeds (one cross-encoder): mean ± sample std per measure."""
    import numpy as np

    results = [json.loads(path.read_text()) for path in paths]
    seeds = [path.stem.rsplit("_seed", 1)[1] for path in paths]

    def cell(split, stage, measure):
        values = [r["metrics"][split][stage][measure] for r in results]
        return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else f"{values[0]:.4f}"

    rows = [f"| stage (first-stage seeds {','.join(seeds)}) | validation NDCG@10 | test NDCG@10 | test MRR@10 | test P@1 |",
            "|---|---|---|---|---|"]
    for stage in results[0]["metrics"]["test"]:
        rows.append(f"| {stage} | {cell('validation', stage, 'NDCG@10')} | {cell('test', stage, 'NDCG@10')} | "
                    f"{cell('test', stage, 'MRR@10')} | {cell('test', stage, 'P@1')} |")
    weights = "; ".join(f"seed {seed}: hybrid {r['hybrid_weight']}, cross-encoder {r['rerank_weight']}"
                        for seed, r in zip(seeds, results))
    return "\n".join(rows) + f"\n\nWeights chosen on validation per seed ({weights}); re-ranking the top {results[0]['rerank_k']}."


def main(argv=None):
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    sections = {"SUMMARY": compare("--summary"), "SDE_TEST": compare(), "SDE_VAL": compare("--split", "validation")}
    if list(RESULTS.glob("scifact_strong_ade_spl_*")):
        sections["ADE"] = compare("--architecture", "ade_spl") + "\n\n" + compare("--architecture", "ade_spl", "--split", "validation")
    if list(RESULTS.glob("squad_reqa_strong_*")):
        # QA retrieval is scored as in the paper: P@1 and MRR.
        squad = ("--dataset", "squad_reqa")
        scored = json.loads(next(RESULTS.glob("squad_reqa_strong_*")).read_text())["metrics"]
        sections["SQUAD_SUMMARY"] = "\n\n".join(compare("--summary", *squad, "--measure", m) for m in ("P@1", "MRR@10"))
        sections["SQUAD_LOSSES"] = "\n\n".join(
            compare(*squad, "--architecture", architecture, "--split", split, "--measure", measure)
            for architecture in ("sde", "ade_spl") if list(RESULTS.glob(f"squad_reqa_strong_{architecture}_*"))
            for split in ("test", "validation") if split in scored for measure in ("P@1", "MRR@10"))
    if [path for path in RESULTS.glob("scifact_strong_*_ade_spl_samtone_seed*.json") if "_strong_ade_spl_" not in path.name]:
        sections["ABLATIONS"] = compare("--ablations", "--architecture", "ade_spl", "--a", "samtone")
    cascade = RESULTS / "scifact_cascade_samtone_seed0.json"
    if cascade.exists():
        sections["CASCADE"] = cascade_table(cascade)
    seeds = sorted(RESULTS.glob("scifact_cascade_ade_spl_samtone_seed*.json"))
    if seeds:
        sections["CASCADE_SEEDS"] = cascade_seeds_table(seeds)
    doc_path = REPO / "docs" / "benchmarks.md"
    doc = doc_path.read_text(encoding="utf-8")
    for key, value in sections.items():
        if f"<!-- {key} -->" not in doc:
            raise SystemExit(f"{doc_path} has no <!-- {key} --> ... <!-- /{key} --> markers for the {key} table.")
        doc = re.sub(rf"<!-- {key} -->.*?<!-- /{key} -->", lambda _: f"<!-- {key} -->\n{value}\n<!-- /{key} -->", doc, flags=re.S)
    doc_path.write_text(doc, encoding="utf-8")
    print(f"wrote {sorted(sections)} into {doc_path}")


if __name__ == "__main__":
    main()
