"""`tf-dualenc search`: query an index folder; dense, hybrid with BM25, or re-ranked by a cross-encoder."""

import sys

from tf_dualenc.loading import load_reranker


def add_parser(subparsers):
    p = subparsers.add_parser("search", help="search an index folder by query text")
    p.add_argument("--index", required=True, help="index folder written by build-index")
    p.add_argument("--query", action="append", help="query text; repeatable")
    p.add_argument("--queries-file", help="one query per line")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--model", default=None, help="encoder export (default: the one recorded in the index)")
    p.add_argument("--server", default=None, help="encode queries through TF Serving: host:port (gRPC) or http://host:port (REST)")
    p.add_argument("--model-name", default=None, help="served model name with --server (default: the index's)")
    p.add_argument("--exact", action="store_true", help="exact search instead of ScaNN")
    p.add_argument("--json", action="store_true", help="one JSON line per query")
    p.add_argument("--skip-checksums", action="store_true", help="do not verify file checksums on load")
    p.add_argument("--rerank", default=None, help="re-rank with a cross-encoder (export folder or .keras); --k hits are kept")
    p.add_argument("--rerank-model-name", default=None, help="re-rank with the cross-encoder served under this name at --server")
    p.add_argument("--rerank-k", type=int, default=100, help="first-stage candidates re-ranked (default: %(default)s)")
    p.add_argument("--hybrid", choices=["rrf", "interpolate"], default=None,
                   help="fuse the dense hits with BM25 over the index's documents (reciprocal rank fusion, or score interpolation)")
    p.add_argument("--hybrid-weight", type=float, default=None,
                   help="interpolate: the dense share in [0, 1], as `evaluate --hybrid interpolate` chose it on validation")
    p.set_defaults(func=run)


def _query_encoder(args, index):
    from tf_dualenc.indexing.query_encoders import local_query_encoder, serving_query_encoder

    if args.server:
        model_name = args.model_name or index.manifest.get("model", {}).get("model_name")
        if not model_name:
            raise ValueError(f"{args.index} records no served model name; pass --model-name with --server.")
        return serving_query_encoder(args.server, model_name)
    model_dir = args.model or index.manifest.get("model", {}).get("export")
    if not model_dir:
        raise ValueError(f"{args.index} records no query encoder; pass --model <encoder export version folder>.")
    return local_query_encoder(model_dir)


def _rerank(args, index, encoder, texts):
    from tf_dualenc.reranking import TwoStageRetriever

    if args.rerank_k < args.k:
        raise ValueError(f"--rerank-k {args.rerank_k} must be at least --k {args.k} (re-ranking keeps the best k of rerank-k).")
    if args.rerank_model_name:
        from tf_dualenc.reranking import serving_reranker

        scorer = serving_reranker(args.server, args.rerank_model_name)
    else:
        scorer = load_reranker(args.rerank)
    retriever = TwoStageRetriever(index, encoder, scorer, k=args.rerank_k, top_n=args.k, exact=args.exact)
    results = retriever.search(texts)
    timings = retriever.last_timings
    print(f"retrieval {1000 * timings['retrieval_seconds'] / len(texts):.1f} ms/query, "
          f"re-ranking {args.rerank_k} candidates {1000 * timings['rerank_seconds'] / len(texts):.1f} ms/query", file=sys.stderr)
    return results


def run(args):
    import json

    if args.hybrid and (args.rerank or args.rerank_model_name):
        raise ValueError("--hybrid and re-ranking are separate modes of search; use one.")
    if args.rerank_model_name and (args.rerank or not args.server):
        raise ValueError("--rerank-model-name re-ranks through --server; give --server and leave out --rerank (a local re-ranker).")
    from tf_dualenc.indexing import RetrievalIndex

    index = RetrievalIndex.load(args.index, verify_checksums=not args.skip_checksums)
    texts = list(args.query or [])
    if args.queries_file:
        with open(args.queries_file, encoding="utf-8") as f:
            texts += [line.strip() for line in f if line.strip()]
    if not texts:
        raise ValueError("Give --query TEXT (repeatable) or --queries-file.")
    encoder = _query_encoder(args, index)
    if args.rerank or args.rerank_model_name:
        results = _rerank(args, index, encoder, texts)
    elif args.hybrid:
        if args.hybrid == "interpolate" and args.hybrid_weight is None:
            raise ValueError("--hybrid interpolate needs --hybrid-weight (choose it on a validation split with "
                             "`tf-dualenc evaluate --hybrid interpolate`, which prints it), or use --hybrid rrf.")
        results = index.search_hybrid(texts, encoder, k=args.k, fusion=args.hybrid, weight=args.hybrid_weight, exact=args.exact)
    else:
        results = index.search(texts, encoder, k=args.k, exact=args.exact)
    for text, hits in zip(texts, results):
        if args.json:
            print(json.dumps({"query": text, "hits": hits}, ensure_ascii=False))
            continue
        print(f"query: {text}")
        for rank, hit in enumerate(hits, 1):
            print(f"  {rank:>3}. {hit['score']:.4f}  {hit['id']}  {hit['text'][:100]}")
    return 0
