"""`tf-dualenc evaluate --hybrid`: the dense run fused with BM25, optionally re-ranked after (the full cascade)."""

import os

from tf_dualenc.atomic_write import write_json_atomic
from tf_dualenc.cli.evaluate_rerank import rerank_weight, skip_check, validation_split
from tf_dualenc.loading import load_reranker


def run(args, dataset, model, measures):
    from tf_dualenc.evaluation.hybrid import evaluate_hybrid
    from tf_dualenc.evaluation.trec_metrics import write_trec_run

    if model is None:
        raise ValueError("--hybrid fuses a dense model's run with BM25; --model bm25 is not a dense model.")
    scorer = load_reranker(args.rerank) if args.rerank else None
    weight = rerank_weight(args.rerank_weight)
    if scorer is not None and args.skip_rerank_check:
        skip_check(weight)
    validation = None
    if (args.hybrid == "interpolate" and args.hybrid_weight is None) or (scorer is not None and not args.skip_rerank_check):
        validation = validation_split(args)
        if args.split == args.validation_split and os.path.abspath(args.validation_data or args.data) == os.path.abspath(args.data):
            raise ValueError(f"--split {args.split} is the split the weights are chosen on; evaluate another split, or give "
                             "--hybrid-weight (and --skip-rerank-check).")
    report = evaluate_hybrid(dataset, model=model, fusion=args.hybrid, validation=validation, weight=args.hybrid_weight, k=args.depth,
                             measures=measures, batch_size=args.batch_size, scorer=scorer, rerank_k=args.rerank_k,
                             rerank_weight=weight, rerank_check=not args.skip_rerank_check, progress=not args.quiet,
                             ignore_identical_ids=args.ignore_identical_ids, title_separator=args.title_separator)
    run = report.pop("run")
    report.update(model=args.model, precision=args.precision, dataset={"path": os.path.abspath(args.data), "split": args.split, "queries": len(dataset.queries)},
                  rules={"ignore_identical_ids": args.ignore_identical_ids, "lenient": args.lenient, "title_separator": args.title_separator})
    os.makedirs(args.output_dir, exist_ok=True)
    write_trec_run(os.path.join(args.output_dir, "run.trec"), run, tag=f"hybrid_{args.hybrid}")
    write_json_atomic(os.path.join(args.output_dir, "report.json"), report)
    hybrid = report["hybrid"]
    how = f"weight {hybrid['weight']} (dense share)" if args.hybrid == "interpolate" else "reciprocal rank fusion, k=60"
    chosen = f", chosen on {hybrid['chosen_on']['split']} ({hybrid['chosen_on']['queries']} queries)" if hybrid["chosen_on"] else ""
    print(f"{args.model} + BM25, {how}{chosen}, on {args.data} ({args.split}: {len(dataset.queries)} queries)")
    if "rerank" in report:
        print(f"  then the top {args.rerank_k} re-ranked by {args.rerank} (cross-encoder weight {report['rerank']['weight']})")
    columns = ["dense", "bm25"] + (["hybrid"] if "rerank" in report else [])
    final = "re-ranked" if "rerank" in report else "hybrid"
    print(f"  {'measure':<12} " + " ".join(f"{c:>9}" for c in columns + [final]))
    for name, value in report["metrics"].items():
        print(f"  {name:<12} " + " ".join(f"{report['components'][c][name]:>9.4f}" for c in columns) + f" {value:>9.4f}")
    print(f"wrote {args.output_dir}/report.json and run.trec")
    return report
