"""`tf-dualenc mine-negatives`: hard negatives from BM25 or a dual encoder, optionally denoised by a cross-encoder."""

import os

from tf_dualenc.cli._flags import add_json
from tf_dualenc.loading import load_reranker, load_retrieval_model


def add_parser(subparsers):
    p = subparsers.add_parser("mine-negatives", help="mine hard negatives (BM25 or a dual encoder), optionally denoised by a cross-encoder")
    p.add_argument("--data", required=True, help="BEIR-layout folder whose qrels give the positives")
    p.add_argument("--split", default="train", help="the qrels split whose queries get negatives (default: %(default)s)")
    p.add_argument("--output", required=True, metavar="FILE", help="the training-pair JSONL file to write, with negatives (for train, train-reranker, train-joint)")
    p.add_argument("--retriever", choices=["bm25", "dense"], default="bm25",
                   help="what retrieves the candidates: BM25, or the dense --model (default: %(default)s)")
    p.add_argument("--model", default=None, help="dense retriever: a .keras dual encoder, all-MiniLM-L6-v2 or a HF BERT folder")
    p.add_argument("--depth", type=int, default=30, metavar="N", help="run depth: documents retrieved per query (default: %(default)s)")
    p.add_argument("--skip-top", type=int, default=0, help="also drop the first N non-positive hits (likely unlabelled positives; default: %(default)s)")
    p.add_argument("--negatives", type=int, default=8, help="negatives kept per query (default: %(default)s)")
    p.add_argument("--denoise", default=None, help="cross-encoder (export or .keras): drop negatives it scores as likely positive")
    p.add_argument("--threshold", type=float, default=0.9, help="denoising: drop when sigmoid(score) > this (default: %(default)s)")
    p.add_argument("--hybrid", action="store_true", help="RocketQAv2 hybrid lists: half denoised, half undenoised negatives")
    p.add_argument("--max-queries", type=int, default=None, help="mine for a seeded sample of N queries (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --max-queries sample (default: %(default)s)")
    p.add_argument("--query-length", type=int, default=None, help="query token budget (default: the model's)")
    p.add_argument("--document-length", type=int, default=None, help="document token budget (default: the model's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--ignore-identical-ids", action="store_true", default=None,
                   help="BEIR's rule: a query's own id is never a negative (default: the data folder's beir.json, else off)")
    p.add_argument("--lenient", action="store_true", default=None,
                   help="skip and count bad qrels rows instead of failing (default: the data folder's beir.json, else off)")
    add_json(p, "what was mined and written")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.data import load_beir
    from tf_dualenc.reranking import mine_candidate_lists, write_candidate_lists

    if args.retriever == "dense" and not args.model:
        raise ValueError("--retriever dense needs --model (a .keras dual encoder, all-MiniLM-L6-v2 or a HF BERT folder).")
    if args.retriever == "bm25" and args.model:
        raise ValueError("--model is the dense retriever's; with --retriever bm25 leave it out.")
    if args.hybrid and not args.denoise:
        raise ValueError("--hybrid mixes denoised and undenoised negatives; give --denoise RERANKER too.")
    if os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it.")
    from tf_dualenc.data.evaluation_rules import resolve_rules

    rules = resolve_rules(args.data, ignore_identical_ids=args.ignore_identical_ids, lenient=args.lenient)
    dataset = load_beir(args.data, args.split, lenient=rules.lenient)
    queries = None
    if args.max_queries:
        import numpy as np

        ids = sorted(dataset.qrels)
        rng = np.random.default_rng(args.seed)
        queries = [ids[i] for i in sorted(rng.choice(len(ids), min(args.max_queries, len(ids)), replace=False))]
    model = load_retrieval_model(args.model, args.query_length, args.document_length) if args.model else None
    scorer = load_reranker(args.denoise) if args.denoise else None
    lists, stats = mine_candidate_lists(dataset, retriever=args.retriever, model=model, depth=args.depth, skip_top=args.skip_top,
                                        negatives_per_query=args.negatives, scorer=scorer, threshold=args.threshold,
                                        hybrid=args.hybrid, queries=queries, progress=not args.quiet,
                                        ignore_identical_ids=rules.ignore_identical_ids)
    if not lists:
        raise ValueError(f"no training lists: none of the {stats['queries']} queries of {args.data} ({args.split}) kept a negative.")
    write_candidate_lists(lists, args.output)
    print(f"mined {stats['negatives_mined']} negatives for {stats['queries']} queries ({args.retriever}, depth {args.depth})"
          + (f"; denoising dropped {stats['dropped_by_denoising']} (threshold {args.threshold})" if scorer else "")
          + (f"; {stats['queries_without_negatives']} queries left without a negative" if stats["queries_without_negatives"] else ""))
    print(f"wrote {len(lists)} training lists to {args.output} (train with --set num_negatives=N, or tf-dualenc train-reranker)")
    return {"output": args.output, "retriever": args.retriever, "depth": args.depth, **stats}  # stats: queries, lists, negatives_mined, ...
