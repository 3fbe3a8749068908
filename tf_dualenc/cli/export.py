"""`tf-dualenc export`: a dual encoder or cross-encoder as a versioned SavedModel for TF Serving, with its op audit and
model card; with `--index`, the retrieval model (query text → top-k document ids and scores) over an index folder."""

import sys

from tf_dualenc.cli._flags import add_json, add_renamed
from tf_dualenc.index_config import INDEX_TYPES
from tf_dualenc.loading import load_model, load_retrieval_model
from tf_dualenc.precision import PRECISIONS


def add_parser(subparsers):
    p = subparsers.add_parser("export", help="export a dual encoder (or, with --index, a search over an index) as a versioned SavedModel for TF Serving")
    p.add_argument("--model", required=True, help="a .keras dual encoder or cross-encoder, 'all-MiniLM-L6-v2', or a HF BERT folder")
    add_renamed(p, "--output-dir", "--export-base", required=True, metavar="DIR",
                help="the TF Serving model base folder: writes DIR/<model-name>/<version>/")
    p.add_argument("--model-name", default=None,
                   help="TF Serving model name (default: dual_encoder_retrieval with --index, else dual_encoder)")
    p.add_argument("--version", type=int, default=None, help="default: one more than the largest existing version")
    p.add_argument("--query-length", type=int, default=None, help="query token budget (default: the model's)")
    p.add_argument("--document-length", type=int, default=None, help="document token budget (default: the model's)")
    p.add_argument("--index", default=None,
                   help="an index folder (build-index): export the retrieval model, queries in, top-k document ids and scores out")
    # None until given, so that either flag without --index is an error rather than ignored.
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="with --index: hits returned per query (default: 10)")
    p.add_argument("--dense-only", action="store_true",
                   help="with --index: export the dense ranking although the index records a fusion with BM25 (the blessed "
                        "search), which a retrieval export cannot compute in-graph")
    p.add_argument("--index-type", choices=INDEX_TYPES, default=None,
                   help="with --index: tfrs BruteForce (exact, stock TF Serving) or ScaNN (needs ScaNN's ops in the server) "
                        "(default: brute_force)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="what the dual encoder's graph computes in: bfloat16 runs its layers in bfloat16 with float32 variables; "
                        "the signatures stay string in, float32 embedding out; recorded in the manifest and model card "
                        "(default: %(default)s)")
    p.add_argument("--allow-custom-ops", action="store_true", help="do not fail when stock TF Serving lacks an op of the graph")
    add_json(p, "the export's path, version and manifest (token budgets and op audit included)")
    p.set_defaults(func=run)


def _export_index(args, model, index):
    """The retrieval export over the documents and embeddings of an index folder, checked against `model` first."""
    import numpy as np

    from tf_dualenc.export import export_retrieval_model

    top_k, index_type = args.top_k or 10, args.index_type or "brute_force"
    search = index.recorded_search or {}
    if search.get("rerank") and not args.dense_only:
        raise ValueError(f"--index {args.index} records its search as a cascade: {search.get('fusion', 'dense')} retrieval, then the "
                         f"cross-encoder {search['rerank']['model_name']} on the top {search['rerank']['k']} (chosen on validation); "
                         "a retrieval export ranks by the dense score alone, so it would not serve that ranking. Serve the encoder "
                         "and the re-ranker exports with the index instead (`tf-dualenc search --index DIR --server ...` answers "
                         "the recorded search; docs/serving.md), or pass --dense-only.")
    if search.get("fusion", "dense") != "dense" and not args.dense_only:
        raise ValueError(f"--index {args.index} records its search as BM25 fused with dense ({search['fusion']}, dense weight "
                         f"{search.get('weight')}, chosen on validation); a retrieval export ranks by the dense score alone, so it "
                         "would not serve that ranking. Serve the encoder export with the index instead (`tf-dualenc search "
                         "--index DIR --server ...` answers the recorded search; docs/serving.md), or pass --dense-only.")
    if index.dimension != model.embedding_dim:
        raise ValueError(f"--index {args.index}: its embeddings have size {index.dimension} (manifest.json 'dimension'), but --model "
                         f"{args.model} embeds into {model.embedding_dim}; build the index with this model's export "
                         "(`tf-dualenc build-index --model EXPORT`).")
    if not 1 <= top_k <= len(index):
        raise ValueError(f"--top-k {top_k}: must be in [1, {len(index)}] (the documents of {args.index}).")
    # The same size is no proof of the same model: re-embedding a few documents catches an index of another model.
    sample = range(min(4, len(index)))
    drift = float(np.abs(model.encode_documents([index.document(row)["text"] for row in sample]) - index.embeddings[list(sample)]).max())
    # bfloat16 keeps 8 significant bits: the same model's vectors move by a few 1e-3 (another model's by ~1e-1).
    if drift > (2e-2 if args.precision == "bfloat16" else 1e-3):
        print(f"warning: --model {args.model} embeds the first documents of {args.index} differently from the index "
              f"(max |Δ| {drift:.3g}): was the index built with another model or token budget?", file=sys.stderr)
    return export_retrieval_model(model, index.ids, index.embeddings, args.output_dir, args.model_name or "dual_encoder_retrieval",
                                  args.version, index=index_type, k=top_k, source=args.model, index_folder=args.index,
                                  stock_compatible=not args.allow_custom_ops and index_type == "brute_force")


def run(args):
    from tf_dualenc.export import MODEL_CARD_PATH, export_cross_encoder, export_encoder
    from tf_dualenc.models import CrossEncoder

    if args.dense_only and not args.index:
        raise ValueError("--dense-only applies to --index (a retrieval export over an index folder).")
    if not args.index and (args.top_k is not None or args.index_type is not None):
        raise ValueError("--top-k and --index-type set the search of a retrieval export: give --index DIR too.")
    index = None
    if args.index:
        from tf_dualenc.indexing import RetrievalIndex

        # Before the model, which takes far longer to load than a wrong folder takes to refuse.
        index = RetrievalIndex.load(args.index)
    model = load_model(args.model) if args.model.endswith(".keras") else None
    if isinstance(model, CrossEncoder):
        if args.query_length or args.document_length:
            raise ValueError(f"{args.model} is a cross-encoder: its token budget is the pair's ({model.preprocessor.sequence_length}); "
                             "--query-length / --document-length do not apply.")
        if args.index:
            raise ValueError(f"{args.model} is a cross-encoder: --index needs a dual encoder, whose query tower searches the index.")
        if args.precision != "float32":
            raise ValueError(f"{args.model} is a cross-encoder: --precision {args.precision} applies to dual encoders only.")
        result = export_cross_encoder(model, args.output_dir, args.model_name or "dual_encoder", args.version,
                                      stock_compatible=not args.allow_custom_ops, source=args.model)
    else:
        model = load_retrieval_model(args.model, args.query_length, args.document_length, args.precision)
        if args.index:
            result = _export_index(args, model, index)
        else:
            result = export_encoder(model, args.output_dir, args.model_name or "dual_encoder", args.version,
                                    stock_compatible=not args.allow_custom_ops, source=args.model)
    from tf_dualenc.models.token_budget import budget_summary, export_budgets

    audit = result.op_audit
    print(f"exported {result.path} (signatures: {', '.join(result.manifest['signatures'])}); model card {MODEL_CARD_PATH}")
    budgets = export_budgets(result.manifest)
    print(f"  {budget_summary(budgets)}; longer " + ("pairs are cut" if "pair" in budgets else
                                                     "texts are cut (--query-length / --document-length set them)"))
    for provider, ops in audit["non_core_ops"].items():
        print(f"  non-core ops from {provider}: {', '.join(ops)}")
    print("  stock TF Serving: " + ("can serve it" if audit["stock_tf_serving_compatible"]
                                    else f"CANNOT serve it (missing {', '.join(audit['not_in_stock_tf_serving'])}); see docs/serving.md"))
    return {"path": result.path, "version": result.version, "manifest": result.manifest}
