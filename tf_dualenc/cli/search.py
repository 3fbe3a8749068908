"""`tf-dualenc search`: query an index folder (dense, hybrid with BM25, or re-ranked by a cross-encoder), or a served
retrieval export (`tf-dualenc export --index`), which searches on the server."""

import sys

from tf_dualenc.cli._flags import add_json, add_renamed
from tf_dualenc.loading import load_reranker


def add_parser(subparsers):
    p = subparsers.add_parser("search", help="search an index folder, or a served retrieval export, by query text")
    p.add_argument("--index", default=None,
                   help="index folder written by build-index; optional when --server serves a retrieval export (then it adds the texts)")
    p.add_argument("--query", action="append", help="query text; repeatable")
    p.add_argument("--queries-file", help="queries: one per line, or JSONL with 'text' (a BEIR queries.jsonl)")
    add_renamed(p, "--top-k", "--k", type=int, default=None, metavar="K",
                help="hits shown per query (default: 10; a served retrieval export: the k it was exported with)")
    p.add_argument("--model", default=None, help="encoder export (default: the one recorded in the index)")
    p.add_argument("--server", default=None,
                   help="TF Serving (host:port gRPC, http://host:port REST): an encoder export encodes the queries for --index; "
                        "a retrieval export (export --index) searches by itself")
    p.add_argument("--model-name", default=None, help="served model name with --server (default: the index's)")
    p.add_argument("--exact", action="store_true", help="exact search instead of ScaNN")
    add_json(p, "each query with its hits", form="JSON lines (one object a query)")
    p.add_argument("--skip-checksums", action="store_true", help="do not verify file checksums on load")
    p.add_argument("--rerank", default=None, help="re-rank with a cross-encoder (export folder or .keras); --top-k hits are kept")
    p.add_argument("--rerank-model-name", default=None, help="re-rank with the cross-encoder served under this name at --server")
    p.add_argument("--rerank-k", type=int, default=100, help="first-stage candidates re-ranked (default: %(default)s)")
    p.add_argument("--hybrid", choices=["rrf", "interpolate"], default=None,
                   help="fuse the dense hits with BM25 over the index's documents (reciprocal rank fusion, or score interpolation)")
    p.add_argument("--hybrid-weight", type=float, default=None,
                   help="interpolate: the dense share in [0, 1], as `evaluate --hybrid interpolate` chose it on validation")
    p.add_argument("--dense", action="store_true",
                   help="dense retrieval alone, although the index records a fusion with BM25 chosen on validation (by default "
                        "an index answers the search recorded in it: the pipeline's blessed search)")
    p.add_argument("--first-stage", action="store_true",
                   help="the index's recorded search without the re-ranker the pipeline pushed with it (its cascade)")
    p.set_defaults(func=run)


def _query_encoder(args, index, client):
    from tf_dualenc.indexing.query_encoders import local_query_encoder, serving_query_encoder

    if client is not None:
        return serving_query_encoder(args.server, client.model_name)
    model_dir = args.model or index.manifest.get("model", {}).get("export")
    if not model_dir:
        raise ValueError(f"{args.index} records no query encoder; pass --model <encoder export version folder>.")
    return local_query_encoder(model_dir)


def _rerank(args, index, encoder, texts):
    from tf_dualenc.reranking import TwoStageRetriever

    if args.rerank_k < args.top_k:
        raise ValueError(f"--rerank-k {args.rerank_k} must be at least --top-k {args.top_k} (re-ranking keeps the best k of rerank-k).")
    if args.rerank_model_name:
        from tf_dualenc.reranking import serving_reranker

        scorer = serving_reranker(args.server, args.rerank_model_name)
    else:
        scorer = load_reranker(args.rerank)
    retriever = TwoStageRetriever(index, encoder, scorer, k=args.rerank_k, top_n=args.top_k, exact=args.exact)
    results = retriever.search(texts)
    timings = retriever.last_timings
    print(f"retrieval {1000 * timings['retrieval_seconds'] / len(texts):.1f} ms/query, "
          f"re-ranking {args.rerank_k} candidates {1000 * timings['rerank_seconds'] / len(texts):.1f} ms/query", file=sys.stderr)
    return results


def _served_kind(args, index):
    """The served model's client and kind ("encoder", "retrieval", ...: told from its signatures)."""
    from tf_dualenc.serving.client import ServingClient

    model_name = args.model_name or (index.manifest.get("model", {}).get("model_name") if index else None)
    if not model_name:
        raise ValueError(f"{args.index or 'no --index'}: no served model name recorded; pass --model-name with --server.")
    client = ServingClient(args.server, model_name)
    return client, client.export_kind()


def _served_search(args, client, index, texts):
    """Hits from a served retrieval export; the texts come from --index when given."""
    if args.rerank or args.rerank_model_name or args.hybrid or args.exact or args.dense:
        raise ValueError(f"{client.model_name} at {args.server} is a retrieval export, which searches by itself: --rerank, "
                         "--rerank-model-name, --hybrid, --dense and --exact need its encoder export and an --index.")
    results = client.search(texts)
    served_k = len(results[0]) if results else 0
    top_k = args.top_k or served_k
    if top_k > served_k:
        raise ValueError(f"--top-k {top_k}: the retrieval export {client.model_name} at {args.server} returns {served_k} hits per query; "
                         f"export it again with `tf-dualenc export --index DIR --top-k {top_k}`.")
    results = [hits[:top_k] for hits in results]
    if index is not None:
        row_of = {doc_id: row for row, doc_id in enumerate(index.ids)}
        for hit in (hit for hits in results for hit in hits):
            if hit["id"] not in row_of:
                raise ValueError(f"{client.model_name} at {args.server} returned document {hit['id']!r}, which {args.index} does not hold: "
                                 "the export was built from another index.")
            hit["text"] = index.document(row_of[hit["id"]])["text"]
    return results


def run(args):
    if args.hybrid and (args.rerank or args.rerank_model_name):
        raise ValueError("--hybrid and re-ranking are separate modes of search; use one.")
    if args.dense and args.hybrid:
        raise ValueError("--dense and --hybrid ask for different rankings; use one.")
    if args.first_stage and (args.dense or args.hybrid or args.rerank or args.rerank_model_name):
        raise ValueError("--first-stage is the index's recorded search without its re-ranker; it takes no --dense, --hybrid or re-ranking flags.")
    if args.rerank_model_name and (args.rerank or not args.server):
        raise ValueError("--rerank-model-name re-ranks through --server; give --server and leave out --rerank (a local re-ranker).")
    if not args.index and not args.server:
        raise ValueError("Give --index DIR (an index folder), or --server with a served retrieval export (`tf-dualenc export --index`).")
    from tf_dualenc.data import read_query_texts
    from tf_dualenc.indexing import RetrievalIndex

    texts = list(args.query or []) + (read_query_texts(args.queries_file) if args.queries_file else [])
    if not texts:
        raise ValueError("Give --query TEXT (repeatable) or --queries-file.")
    index = RetrievalIndex.load(args.index, verify_checksums=not args.skip_checksums) if args.index else None
    client, kind = _served_kind(args, index) if args.server else (None, None)
    if kind == "retrieval":
        results = _served_search(args, client, index, texts)
        return _print_hits(args, texts, results)
    if args.server and kind != "encoder":
        raise ValueError(f"{client.model_name} at {args.server} is {f'a {kind} export' if kind else 'not a tf_dualenc export'}: "
                         "--server needs an encoder export (with --index) or a retrieval export (`tf-dualenc export --index`).")
    if index is None:
        raise ValueError(f"{client.model_name} at {args.server} is an encoder export: give --index DIR to search with it, or serve a "
                         "retrieval export (`tf-dualenc export --index`), which searches by itself.")
    args.top_k = args.top_k or 10
    encoder = _query_encoder(args, index, client)
    if args.rerank or args.rerank_model_name:
        results = _rerank(args, index, encoder, texts)
    elif args.hybrid:
        if args.hybrid == "interpolate" and args.hybrid_weight is None:
            raise ValueError("--hybrid interpolate needs --hybrid-weight (choose it on a validation split with "
                             "`tf-dualenc evaluate --hybrid interpolate`, which prints it), or use --hybrid rrf.")
        results = index.search_hybrid(texts, encoder, k=args.top_k, fusion=args.hybrid, weight=args.hybrid_weight, exact=args.exact)
    elif args.dense:
        results = index.search(texts, encoder, k=args.top_k, exact=args.exact)
    else:
        results = _recorded(args, index, encoder, texts)
    return _print_hits(args, texts, results)


def _recorded(args, index, encoder, texts):
    """The search recorded in the index (the pipeline's blessed search, and its cascade when a re-ranker was kept)."""
    from tf_dualenc.reranking import recorded_reranker, rerank_recorded_search

    recorded = index.recorded_search or {}
    if recorded.get("fusion") not in (None, "dense"):
        print(f"search: the index's recorded search, BM25 + dense ({recorded['fusion']}, dense weight {recorded.get('weight')}, "
              f"chosen on {recorded.get('chosen_on', 'validation')}); --dense for dense alone", file=sys.stderr)
    rerank = recorded_reranker(index)
    if rerank is None or args.first_stage:
        return index.search_recorded(texts, encoder, k=args.top_k, exact=args.exact)
    if args.server:
        from tf_dualenc.reranking import serving_reranker

        scorer = serving_reranker(args.server, rerank["model_name"], version=rerank.get("version"))
    else:
        scorer = load_reranker(rerank["export"])
    print(f"search: re-ranking the top {rerank['k']} with {rerank['model_name']} (cross-encoder weight {rerank['weight']}, "
          f"chosen on {rerank.get('chosen_on', 'validation')}); --first-stage without it", file=sys.stderr)
    return rerank_recorded_search(index, texts, encoder, scorer, k=args.top_k, exact=args.exact)


def _print_hits(args, texts, results):
    """Prints the hits (unless --json) and returns the result, one {"query", "hits"} per query."""
    if not args.json:
        for text, hits in zip(texts, results):
            print(f"query: {text}")
            for rank, hit in enumerate(hits, 1):
                print(f"  {rank:>3}. {hit['score']:.4f}  {hit['id']}  {hit.get('text', '')[:100]}")
    return [{"query": text, "hits": hits} for text, hits in zip(texts, results)]
