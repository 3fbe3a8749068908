"""`tf-dualenc evaluate`: a retriever's metrics on a BEIR split; `--rerank` and `--hybrid` hand over to their modules."""

from tf_dualenc.cli._flags import add_json, add_renamed
from tf_dualenc.loading import load_retrieval_model
from tf_dualenc.precision import PRECISIONS


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="evaluate a retriever on a BEIR-layout split (JSON report + TREC run)")
    p.add_argument("--model", required=True, help="a .keras dual encoder, 'bm25', 'all-MiniLM-L6-v2', or a HF BERT folder")
    p.add_argument("--data", required=True, help="BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/)")
    p.add_argument("--split", default="test", help="the qrels split evaluated (default: %(default)s)")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="folder for report.json and run.trec")
    add_renamed(p, "--depth", "--k", type=int, default=100, metavar="N",
                help="run depth: documents retrieved per query, in the run and its metrics (default: %(default)s)")
    p.add_argument("--measures", default="NDCG@10,MRR@10,P@1,Recall@100,MAP@100",
                   help="comma-separated MEASURE@k; the first decides --rerank-weight auto and the re-ranker check (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass when encoding (default: %(default)s)")
    p.add_argument("--query-length", type=int, default=None, help="query token budget (default: the model's)")
    p.add_argument("--document-length", type=int, default=None, help="document token budget (default: the model's)")
    p.add_argument("--ignore-identical-ids", action="store_true", default=None,
                   help="BEIR's rule: drop hits whose id equals the query id, in every run scored (test, validation, BM25, hybrid, "
                        "re-ranked) (default: the data folder's beir.json, else off)")
    p.add_argument("--search", choices=["exact", "brute_force"], default="exact",
                   help="exact: chunked matmul, any corpus size; brute_force: tfrs BruteForce, corpus in memory (default: %(default)s)")
    p.add_argument("--lenient", action="store_true", default=None,
                   help="skip and count bad records instead of failing, in the evaluated split and the validation split "
                        "(default: the data folder's beir.json, else off)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="what the dense model computes in: bfloat16 runs its layers in bfloat16 (variables, embeddings and "
                        "scores stay float32); recorded in report.json (default: %(default)s)")
    p.add_argument("--rerank", default=None, help="re-rank with a cross-encoder (export folder or .keras): metrics before and after")
    p.add_argument("--rerank-k", type=int, default=100, help="first-stage hits re-ranked per query (default: %(default)s)")
    p.add_argument("--rerank-weight", default="1.0",
                   help="the cross-encoder's share of the final score, w·CE + (1−w)·first stage (min-max per query), or 'auto': "
                        "chosen on the validation split (default: %(default)s, the cross-encoder alone)")
    p.add_argument("--skip-rerank-check", action="store_true",
                   help="use --rerank without first checking, on the validation split, that re-ranking does not lower the first measure")
    p.add_argument("--hybrid", choices=["rrf", "interpolate"], default=None,
                   help="fuse the dense run with BM25: reciprocal rank fusion, or min-max normalised score interpolation")
    p.add_argument("--hybrid-weight", type=float, default=None,
                   help="interpolate: the dense run's weight in [0, 1] (default: chosen on the validation split)")
    p.add_argument("--validation-data", default=None,
                   help="BEIR folder of the validation split (the hybrid weight and the re-ranker check; default: --data)")
    p.add_argument("--validation-split", default="train",
                   help="its split to carve the validation queries from (a folder's dev split is used when it has one; default: %(default)s)")
    p.add_argument("--validation-fraction", type=float, default=0.2,
                   help="share of those queries held out as validation, as `train --set validation_fraction` (default: %(default)s)")
    add_json(p, "the report (as report.json holds it)")
    p.set_defaults(func=run)


def data_rules(args, folder):
    """The evaluation rules for `folder` (`tf_dualenc.data.evaluation_rules`): its beir.json, under the flags given."""
    from tf_dualenc.data.evaluation_rules import resolve_rules

    return resolve_rules(folder, ignore_identical_ids=args.ignore_identical_ids, lenient=args.lenient)


def run(args):
    from tf_dualenc.data import load_beir
    from tf_dualenc.evaluation import evaluate_retrieval, parse_measure

    measures = tuple(m.strip() for m in args.measures.split(","))
    for m in measures:
        parse_measure(m)  # fail on a typo before loading anything heavy
    rules = data_rules(args, args.data)
    args.ignore_identical_ids, args.lenient, args.title_separator = rules.ignore_identical_ids, rules.lenient, rules.title_separator
    dataset = load_beir(args.data, args.split, lenient=args.lenient)
    if dataset.skipped:
        print(f"lenient mode skipped {sum(dataset.skipped.values())} records: {dict(dataset.skipped)}")
    model, method = None, "dense"
    if args.model == "bm25":
        if args.precision != "float32":
            raise ValueError(f"--precision {args.precision}: BM25 has no model to compute in it; give a dense --model.")
        method = "bm25"
    else:
        model = load_retrieval_model(args.model, args.query_length, args.document_length, args.precision)
    if args.hybrid:  # with --rerank too: the full cascade
        from tf_dualenc.cli import evaluate_hybrid

        return evaluate_hybrid.run(args, dataset, model, measures)
    if args.rerank:
        from tf_dualenc.cli import evaluate_rerank

        return evaluate_rerank.run(args, dataset, model, measures)
    report = evaluate_retrieval(
        dataset,
        model=model,
        method=method,
        k=args.depth,
        measures=measures,
        batch_size=args.batch_size,
        ignore_identical_ids=args.ignore_identical_ids,
        output_dir=args.output_dir,
        search=args.search,
        model_description=args.model,
        progress=not args.quiet,
        rules=rules.to_dict(),
        title_separator=rules.title_separator,
    )
    print(f"{args.model} on {args.data} ({args.split}: {report['dataset']['queries']} queries, {report['dataset']['documents']} documents)"
          + (", identical ids ignored" if rules.ignore_identical_ids else ""))
    for name, value in report["metrics"].items():
        print(f"  {name:<12} {value:.4f}")
    if "documents_per_second" in report["timings"]:
        print(f"  encoded {report['timings']['documents_per_second']:.1f} documents/s")
    from tf_dualenc.models.token_budget import print_truncation

    print_truncation(report["truncation"])
    print(f"wrote {args.output_dir}/report.json and run.trec")
    return report
