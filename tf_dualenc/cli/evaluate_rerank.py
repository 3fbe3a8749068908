"""`tf-dualenc evaluate --rerank`: a dense run re-ranked by a cross-encoder, which is first checked on a validation
split; the re-ranker's weight and that check are shared with `evaluate --hybrid --rerank`."""

import sys

from tf_dualenc.loading import load_reranker


def rerank_weight(raw):
    if raw == "auto":
        return raw
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise ValueError(f"--rerank-weight {raw!r}: expected 'auto' or a number in [0, 1] (the cross-encoder's share).")
    return value


def skip_check(weight):
    """--skip-rerank-check: 'auto' has nothing left to choose it, and the user is told nothing was checked."""
    if weight == "auto":
        raise ValueError("--rerank-weight auto is chosen by the validation check; it cannot be combined with --skip-rerank-check.")
    print("WARNING: --skip-rerank-check: the re-ranker was not checked on a validation split; it may make retrieval worse.",
          file=sys.stderr)


def validation_split(args):
    """The validation split, read under the same evaluation rules as the evaluated split (`--lenient`: its bad qrels
    rows are skipped and counted too); its folder's beir.json may add rules of its own."""
    from tf_dualenc.cli.evaluate import data_rules
    from tf_dualenc.data.validation_split import load_validation

    folder = args.validation_data or args.data
    validation = load_validation(folder, fraction=args.validation_fraction, split=args.validation_split,
                                 lenient=data_rules(args, folder).lenient)
    if validation.skipped:
        print(f"lenient mode skipped {sum(validation.skipped.values())} records of the validation split: {dict(validation.skipped)}")
    return validation


def run(args, dataset, model, measures):
    from tf_dualenc.evaluation import evaluate_reranking

    if model is None:
        raise ValueError("--rerank re-ranks a dense model's run; --model bm25 is not one.")
    scorer = load_reranker(args.rerank)
    weight = rerank_weight(args.rerank_weight)
    if args.skip_rerank_check:
        skip_check(weight)
    else:
        from tf_dualenc.data.validation_split import check_disjoint
        from tf_dualenc.evaluation.rerank_evaluation import check_reranker

        validation = validation_split(args)
        check_disjoint(validation, dataset)
        check = check_reranker(validation, model=model, scorer=scorer, k=args.depth, rerank_k=args.rerank_k,
                               metric=measures[0], weight=weight, batch_size=args.batch_size, progress=not args.quiet,
                               ignore_identical_ids=args.ignore_identical_ids, title_separator=args.title_separator)
        weight = check["weight"]
        print(f"re-ranker check on {check['split']} ({check['queries']} queries): {check['metric']} "
              f"{check['retrieval']:.4f} -> {check['reranked']:.4f} (cross-encoder weight {weight})")
    report = evaluate_reranking(dataset, model=model, scorer=scorer, k=args.depth, rerank_k=args.rerank_k, weight=weight,
                                measures=measures, batch_size=args.batch_size, output_dir=args.output_dir, progress=not args.quiet,
                                ignore_identical_ids=args.ignore_identical_ids, title_separator=args.title_separator,
                                description={"retriever": args.model, "retriever_precision": args.precision, "reranker": args.rerank})
    print(f"{args.model} + re-ranking by {args.rerank} on {args.data} ({args.split}: {report['config']['queries']} queries)")
    print(f"  {'measure':<12} {'retrieval':>10} {'re-ranked':>10}")
    for name in report["retrieval"]:
        print(f"  {name:<12} {report['retrieval'][name]:>10.4f} {report['reranked'][name]:>10.4f}")
    latency = report["latency_ms_per_query"]
    print(f"  latency per query: retrieval {latency['retrieval']:.1f} ms, re-ranking top {args.rerank_k} {latency['rerank']:.1f} ms")
    print(f"wrote {args.output_dir}/report.json, run.retrieval.trec and run.reranked.trec")
    return report
