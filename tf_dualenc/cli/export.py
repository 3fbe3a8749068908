"""`tf-dualenc export`: a dual encoder or cross-encoder as a versioned SavedModel for TF Serving, with its op audit."""

from tf_dualenc.loading import load_model, load_retrieval_model


def add_parser(subparsers):
    p = subparsers.add_parser("export", help="export a dual encoder as a versioned SavedModel for TF Serving (+ op audit)")
    p.add_argument("--model", required=True, help="a .keras dual encoder, 'all-MiniLM-L6-v2', or a HF BERT folder")
    p.add_argument("--export-base", required=True, help="TF Serving model base folder; writes <base>/<model-name>/<version>/")
    p.add_argument("--model-name", default="dual_encoder")
    p.add_argument("--version", type=int, default=None, help="default: one more than the largest existing version")
    p.add_argument("--query-length", type=int, default=None)
    p.add_argument("--document-length", type=int, default=None)
    p.add_argument("--allow-custom-ops", action="store_true", help="do not fail when stock TF Serving lacks an op of the graph")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.export import export_cross_encoder, export_encoder
    from tf_dualenc.models import CrossEncoder

    model = load_model(args.model) if args.model.endswith(".keras") else None
    if isinstance(model, CrossEncoder):
        if args.query_length or args.document_length:
            raise ValueError(f"{args.model} is a cross-encoder: its token budget is the pair's ({model.preprocessor.sequence_length}); "
                             "--query-length / --document-length do not apply.")
        result = export_cross_encoder(model, args.export_base, args.model_name, args.version, stock_compatible=not args.allow_custom_ops)
    else:
        model = load_retrieval_model(args.model, args.query_length, args.document_length)
        result = export_encoder(model, args.export_base, args.model_name, args.version, stock_compatible=not args.allow_custom_ops)
    audit = result.op_audit
    print(f"exported {result.path} (signatures: {', '.join(result.manifest['signatures'])})")
    for provider, ops in audit["non_core_ops"].items():
        print(f"  non-core ops from {provider}: {', '.join(ops)}")
    print("  stock TF Serving: " + ("can serve it" if audit["stock_tf_serving_compatible"]
                                    else f"CANNOT serve it (missing {', '.join(audit['not_in_stock_tf_serving'])}); see docs/serving.md"))
    return 0
