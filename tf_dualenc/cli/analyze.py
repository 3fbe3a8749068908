"""`tf-dualenc analyze`: the embedding-space analysis of one or more models (PNGs + an HTML report)."""

from tf_dualenc.cli._flags import add_json
from tf_dualenc.loading import load_retrieval_model


def add_parser(subparsers):
    p = subparsers.add_parser("analyze", help="embedding-space analysis of one or more models: PNGs + an HTML report")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH", help="a model to analyse; repeatable")
    p.add_argument("--data", required=True, help="BEIR-layout folder")
    p.add_argument("--split", default="test", help="the qrels split whose queries are sampled (default: %(default)s)")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="folder for the PNGs and report.html")
    p.add_argument("--queries", type=int, default=300, help="queries sampled (default: %(default)s)")
    p.add_argument("--documents", type=int, default=2000, help="documents sampled, positives included (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the query and document samples (default: %(default)s)")
    p.add_argument("--query-length", type=int, default=None, help="query token budget (default: the model's)")
    p.add_argument("--document-length", type=int, default=None, help="document token budget (default: the model's)")
    add_json(p, "each model's summary and the files written")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.analysis import analyze_model, write_report
    from tf_dualenc.data import load_beir

    specs = []
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--model expects NAME=PATH (a .keras model, all-MiniLM-L6-v2 or a HF folder); got {item!r}.")
        specs.append((name, path))
    dataset = load_beir(args.data, args.split)
    analyses = []
    for name, path in specs:
        model = load_retrieval_model(path, args.query_length, args.document_length)
        analyses.append(analyze_model(name, model, dataset, num_queries=args.queries, num_documents=args.documents, seed=args.seed,
                                      progress=not args.quiet))
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in analyses[-1].summary.items() if isinstance(v, float)))
    context = {"data": f"{args.data} ({args.split})", "models": dict(specs), "seed": args.seed,
               "sampled queries": args.queries, "sampled documents": args.documents}
    paths = write_report(analyses, args.output_dir, context=context)
    print(f"wrote {paths['report']} and {len(paths['images'])} PNGs")
    return {"models": {analysis.name: analysis.summary for analysis in analyses}, "context": context, **paths}
