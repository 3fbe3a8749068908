"""Baselines on the shared BEIR-layout sets: BM25 (bm25s) and zero-shot all-MiniLM-L6-v2.

    .venv/bin/python benchmarks/baselines.py [--models bm25,all-MiniLM-L6-v2] [--sets scifact:test,squad_reqa_test:test]

Writes benchmarks/results/baseline_<model>_<set>.json (the evaluate report) and prints a table row each.
"""

import argparse
import json
import pathlib
import sys

import tf_dualenc  # noqa: F401

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="bm25,all-MiniLM-L6-v2")
    parser.add_argument("--sets", default="scifact:test,squad_reqa_test:test")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--length", type=int, default=256, help="query and document token budget")
    args = parser.parse_args(argv)

    from tf_dualenc.loading import load_retrieval_model
    from tf_dualenc.data import load_beir
    from tf_dualenc.evaluation import evaluate_retrieval

    for model_name in args.models.split(","):
        model = None if model_name == "bm25" else load_retrieval_model(model_name, args.length, args.length)
        for spec in args.sets.split(","):
            name, split = spec.split(":")
            dataset = load_beir(DATA / name, split)
            report = evaluate_retrieval(
                dataset,
                model=model,
                method="bm25" if model_name == "bm25" else "dense",
                batch_size=args.batch_size,
                model_description=model_name,
            )
            report["command"] = "python benchmarks/baselines.py " + " ".join(sys.argv[1:] if argv is None else argv)
            out = HERE / "results" / f"baseline_{model_name}_{name}.json"
            out.write_text(json.dumps(report, indent=2) + "\n")
            metrics = " ".join(f"{k}={v:.4f}" for k, v in report["metrics"].items())
            print(f"{model_name:<20} {name:<16} {metrics} {report['timings']}", flush=True)


if __name__ == "__main__":
    main()
