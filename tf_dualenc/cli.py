"""The `tf-dualenc` command line. Heavy modules load inside each command, so `--help` stays instant."""

import argparse
import os
import sys

from tf_dualenc.loading import load_cross_encoder, load_model, load_reranker, load_retrieval_model


def _doctor(args):
    from tf_dualenc import doctor

    return doctor.run()


def _demo(args):
    from tf_dualenc import demo

    demo.run(output_dir=args.output_dir, steps=args.steps, seed=args.seed, vocabulary=args.vocabulary)
    return 0


def _train_vocab(args):
    from tf_dualenc import vocabulary

    path = vocabulary.train_sentencepiece_vocabulary(
        args.input, args.output, vocabulary_size=args.vocabulary_size, text_fields=tuple(args.fields.split(","))
    )
    print(f"wrote {path}")
    return 0


def _train(args):
    from tf_dualenc.training import TrainConfig, train

    config = TrainConfig.from_file(args.config, args.set) if args.config else TrainConfig().with_overrides(args.set)
    if args.output_dir:
        config = config.with_overrides([f"output_dir={args.output_dir}"])
    train(config.validate(), stop_after_steps=args.stop_after_steps)
    return 0


def _evaluate(args):
    from tf_dualenc.data import load_beir
    from tf_dualenc.evaluation import evaluate_retrieval, parse_measure

    measures = tuple(m.strip() for m in args.measures.split(","))
    for m in measures:
        parse_measure(m)  # fail on a typo before loading anything heavy
    dataset = load_beir(args.data, args.split, lenient=args.lenient)
    if dataset.skipped:
        print(f"lenient mode skipped {sum(dataset.skipped.values())} records: {dict(dataset.skipped)}")
    model, method = None, "dense"
    if args.model == "bm25":
        method = "bm25"
    else:
        model = load_retrieval_model(args.model, args.query_length, args.document_length)
    if args.hybrid:  # with --rerank too: the full cascade
        return _evaluate_hybrid(args, dataset, model, measures)
    if args.rerank:
        from tf_dualenc.evaluation import evaluate_reranking

        if method != "dense":
            raise ValueError("--rerank re-ranks a dense model's run; --model bm25 is not one.")
        scorer = load_reranker(args.rerank)
        weight = _rerank_weight(args.rerank_weight)
        if args.skip_rerank_check and weight == "auto":
            raise ValueError("--rerank-weight auto is chosen by the validation check; it cannot be combined with --skip-rerank-check.")
        if args.skip_rerank_check:
            print("WARNING: --skip-rerank-check: the re-ranker was not checked on a validation split; it may make retrieval worse.",
                  file=sys.stderr)
        else:
            from tf_dualenc.data.validation_split import load_validation
            from tf_dualenc.evaluation.rerank_evaluation import check_reranker

            from tf_dualenc.data.validation_split import check_disjoint

            validation = load_validation(args.validation_data or args.data, fraction=args.validation_fraction, split=args.validation_split)
            check_disjoint(validation, dataset)
            check = check_reranker(validation, model=model, scorer=scorer, k=args.k, rerank_k=args.rerank_k,
                                   metric=measures[0], weight=weight, batch_size=args.batch_size)
            weight = check["weight"]
            print(f"re-ranker check on {check['split']} ({check['queries']} queries): {check['metric']} "
                  f"{check['retrieval']:.4f} -> {check['reranked']:.4f} (cross-encoder weight {weight})")
        report = evaluate_reranking(dataset, model=model, scorer=scorer, k=args.k, rerank_k=args.rerank_k, weight=weight,
                                    measures=measures, batch_size=args.batch_size, output_dir=args.output_dir,
                                    description={"retriever": args.model, "reranker": args.rerank})
        print(f"{args.model} + re-ranking by {args.rerank} on {args.data} ({args.split}: {report['config']['queries']} queries)")
        print(f"  {'measure':<12} {'retrieval':>10} {'re-ranked':>10}")
        for name in report["retrieval"]:
            print(f"  {name:<12} {report['retrieval'][name]:>10.4f} {report['reranked'][name]:>10.4f}")
        latency = report["latency_ms_per_query"]
        print(f"  latency per query: retrieval {latency['retrieval']:.1f} ms, re-ranking top {args.rerank_k} {latency['rerank']:.1f} ms")
        print(f"wrote {args.output_dir}/report.json, run.retrieval.trec and run.reranked.trec")
        return 0
    report = evaluate_retrieval(
        dataset,
        model=model,
        method=method,
        k=args.k,
        measures=measures,
        batch_size=args.batch_size,
        ignore_identical_ids=args.ignore_identical_ids,
        output_dir=args.output_dir,
        search=args.search,
        model_description=args.model,
    )
    print(f"{args.model} on {args.data} ({args.split}: {report['dataset']['queries']} queries, {report['dataset']['documents']} documents)")
    for name, value in report["metrics"].items():
        print(f"  {name:<12} {value:.4f}")
    if "documents_per_second" in report["timings"]:
        print(f"  encoded {report['timings']['documents_per_second']:.1f} documents/s")
    if report["truncation"]:
        from tf_dualenc.models.token_budget import PLURAL, truncation_warnings

        cut = report["truncation"]
        print("  cut at the token budget: " + ", ".join(f"{e['cut']}/{e['texts']} {PLURAL[side]} at {e['budget']} tokens"
                                                          for side, e in cut.items()))
        for warning in truncation_warnings(cut):
            print(warning, file=sys.stderr)
    print(f"wrote {args.output_dir}/report.json and run.trec")
    return 0


def _rerank_weight(raw):
    if raw == "auto":
        return raw
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise ValueError(f"--rerank-weight {raw!r}: expected 'auto' or a number in [0, 1] (the cross-encoder's share).")
    return value


def _evaluate_hybrid(args, dataset, model, measures):
    from tf_dualenc.data.validation_split import load_validation
    from tf_dualenc.evaluation.hybrid import evaluate_hybrid
    from tf_dualenc.evaluation.trec_metrics import write_trec_run

    if model is None:
        raise ValueError("--hybrid fuses a dense model's run with BM25; --model bm25 is not a dense model.")
    scorer = load_reranker(args.rerank) if args.rerank else None
    rerank_weight = _rerank_weight(args.rerank_weight)
    if scorer is not None and args.skip_rerank_check:
        if rerank_weight == "auto":
            raise ValueError("--rerank-weight auto is chosen by the validation check; it cannot be combined with --skip-rerank-check.")
        print("WARNING: --skip-rerank-check: the re-ranker was not checked on a validation split; it may make retrieval worse.",
              file=sys.stderr)
    validation = None
    if (args.hybrid == "interpolate" and args.hybrid_weight is None) or (scorer is not None and not args.skip_rerank_check):
        validation = load_validation(args.validation_data or args.data, fraction=args.validation_fraction, split=args.validation_split)
        if args.split == args.validation_split and os.path.abspath(args.validation_data or args.data) == os.path.abspath(args.data):
            raise ValueError(f"--split {args.split} is the split the weights are chosen on; evaluate another split, or give "
                             "--hybrid-weight (and --skip-rerank-check).")
    report = evaluate_hybrid(dataset, model=model, fusion=args.hybrid, validation=validation, weight=args.hybrid_weight, k=args.k,
                             measures=measures, batch_size=args.batch_size, scorer=scorer, rerank_k=args.rerank_k,
                             rerank_weight=rerank_weight, rerank_check=not args.skip_rerank_check)
    run = report.pop("run")
    report.update(model=args.model, dataset={"path": os.path.abspath(args.data), "split": args.split, "queries": len(dataset.queries)})
    os.makedirs(args.output_dir, exist_ok=True)
    write_trec_run(os.path.join(args.output_dir, "run.trec"), run, tag=f"hybrid_{args.hybrid}")
    _write_json(os.path.join(args.output_dir, "report.json"), report)
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
    return 0


def _export(args):
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


def _mine_negatives(args):
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
    dataset = load_beir(args.data, args.split)
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
                                        hybrid=args.hybrid, queries=queries)
    if not lists:
        raise ValueError(f"no training lists: none of the {stats['queries']} queries of {args.data} ({args.split}) kept a negative.")
    write_candidate_lists(lists, args.output)
    print(f"mined {stats['negatives_mined']} negatives for {stats['queries']} queries ({args.retriever}, depth {args.depth})"
          + (f"; denoising dropped {stats['dropped_by_denoising']} (threshold {args.threshold})" if scorer else "")
          + (f"; {stats['queries_without_negatives']} queries left without a negative" if stats["queries_without_negatives"] else ""))
    print(f"wrote {len(lists)} training lists to {args.output} (train with --set num_negatives=N, or tf-dualenc train-reranker)")
    return 0


def _training_lists(args):
    from tf_dualenc.reranking import read_candidate_lists

    lists, skipped = read_candidate_lists(args.data, args.list_size, seed=args.seed, lenient=args.lenient)
    validation = read_candidate_lists(args.validation_data, args.list_size, lenient=args.lenient)[0] if getattr(args, "validation_data", None) else None
    if skipped:
        print(f"lenient mode skipped {sum(skipped.values())} records: {skipped}")
    return lists, validation


def _new_output_dir(path, names):
    existing = [name for name in names if os.path.exists(os.path.join(path, name))]
    if existing:
        raise FileExistsError(f"{path} already holds {', '.join(existing)}; choose another --output-dir.")
    os.makedirs(path, exist_ok=True)


def _write_json(path, value):
    import json

    with open(f"{path}.tmp", "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(f"{path}.tmp", path)


def _train_reranker(args):
    from tf_dualenc.models import build_bert_cross_encoder, build_t5_cross_encoder
    from tf_dualenc.reranking.listwise_training import train_cross_encoder

    if args.tower == "t5" and not args.vocabulary:
        raise ValueError("--tower t5 needs --vocabulary (a SentencePiece model, e.g. ../shared/models/t5/spiece.model).")
    _new_output_dir(args.output_dir, ["reranker.keras"])
    lists, validation = _training_lists(args)
    if args.tower == "bert":
        model = build_bert_cross_encoder(args.preset or "all-MiniLM-L6-v2", sequence_length=args.pair_length)
    else:
        model = build_t5_cross_encoder(args.size, vocabulary=args.vocabulary, sequence_length=args.pair_length, preset=args.preset)
    history = train_cross_encoder(model, lists, steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                  warmup_steps=args.warmup_steps, pointwise_weight=args.pointwise_weight, seed=args.seed,
                                  validation_lists=validation, validate_every=args.validate_every, log_every=args.log_every)
    path = os.path.join(args.output_dir, "reranker.keras")
    model.save(path)
    _write_json(os.path.join(args.output_dir, "training.json"), {"config": vars(args) | {"func": None}, "lists": len(lists), **history})
    print(f"wrote {path} (export it with `tf-dualenc export --model {path} --export-base DIR --model-name reranker`)")
    return 0


def _train_joint(args):
    from tf_dualenc.reranking.listwise_training import train_jointly

    _new_output_dir(args.output_dir, ["dual_encoder.keras", "reranker.keras"])
    dual_encoder = load_retrieval_model(args.dual_encoder, args.query_length, args.document_length)
    reranker = load_cross_encoder(args.reranker)
    lists, _ = _training_lists(args)
    history = train_jointly(dual_encoder, reranker, lists, steps=args.steps, batch_size=args.batch_size,
                            retriever_learning_rate=args.retriever_learning_rate, reranker_learning_rate=args.reranker_learning_rate,
                            warmup_steps=args.warmup_steps, retriever_temperature=args.retriever_temperature, seed=args.seed,
                            log_every=args.log_every)
    dual_encoder.save(os.path.join(args.output_dir, "dual_encoder.keras"))
    reranker.save(os.path.join(args.output_dir, "reranker.keras"))
    _write_json(os.path.join(args.output_dir, "training.json"), {"config": vars(args) | {"func": None}, "lists": len(lists), **history})
    print(f"wrote {args.output_dir}/dual_encoder.keras and {args.output_dir}/reranker.keras")
    return 0


def _build_index(args):
    from tf_dualenc.indexing import build_index_pipeline

    build_index_pipeline.run(args.pipeline_args)
    return 0


def _analyze(args):
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
        analyses.append(analyze_model(name, model, dataset, num_queries=args.queries, num_documents=args.documents, seed=args.seed))
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in analyses[-1].summary.items() if isinstance(v, float)))
    context = {"data": f"{args.data} ({args.split})", "models": dict(specs), "seed": args.seed,
               "sampled queries": args.queries, "sampled documents": args.documents}
    paths = write_report(analyses, args.output_dir, context=context)
    print(f"wrote {paths['report']} and {len(paths['images'])} PNGs")
    return 0


def _serve(args):
    from serving import local_server

    local_server.main(args.server_args, prog="tf-dualenc serve")
    return 0


def _search(args):
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
    from tf_dualenc.indexing.query_encoders import local_query_encoder, serving_query_encoder

    if args.server:
        model_name = args.model_name or index.manifest.get("model", {}).get("model_name")
        if not model_name:
            raise ValueError(f"{args.index} records no served model name; pass --model-name with --server.")
        encoder = serving_query_encoder(args.server, model_name)
    else:
        model_dir = args.model or index.manifest.get("model", {}).get("export")
        if not model_dir:
            raise ValueError(f"{args.index} records no query encoder; pass --model <encoder export version folder>.")
        encoder = local_query_encoder(model_dir)
    if args.rerank or args.rerank_model_name:
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


def _pipeline(args):
    import json
    import logging

    from pipelines.pipeline_config import DEFAULT_CONFIG, PipelineConfig
    from pipelines.run_pipeline import COMPONENT_ORDER, PipelineError, answer_query, compile_pipeline, run_pipeline

    config_path = args.config or DEFAULT_CONFIG
    config = PipelineConfig.from_file(config_path, args.set)
    if args.runner:
        config = config.with_overrides([f"runner={args.runner}"])
    if args.action == "compile":
        compile_pipeline(config, args.output)
        return 0
    if not args.verbose:
        # TFX and Beam log every artifact at INFO; the summary below says what matters.
        from absl import logging as absl_logging

        logging.getLogger().setLevel(logging.ERROR)
        absl_logging.set_verbosity(absl_logging.ERROR)
    print(f"config: {config_path}")
    try:
        outputs = run_pipeline(config)
    except PipelineError as error:
        print(f"tf-dualenc pipeline: {error}", file=sys.stderr)
        return 1
    config = config.resolved(print_fn=lambda *a: None)
    evaluation = outputs["RetrievalEvaluator"]["evaluation"]
    pushed = outputs["ServingPusher"]["pushed_model"]
    print("\ncomponents: " + ", ".join(f"{name} {outputs[name]['state']}" for name in COMPONENT_ORDER))
    print(f"model:    {outputs['Trainer']['model']['uri']}  (Format-Serving: SavedModel; Format-Keras: model.keras)")
    print(f"metrics:  {evaluation['uri']}/evaluation.json")
    metric = config.metric
    print(f"  {metric:<22} {'validation (decides)':>20} {'test (reported only)':>20}")
    for label, key in (("this model", metric), ("starting model", f"starting_model_{metric}"), ("bm25", f"bm25_{metric}")):
        if key in evaluation:
            test = evaluation.get(f"test_{key}")
            print(f"  {label:<22} {evaluation[key]:>20.4f} {test if test is None else format(test, '.4f'):>20}")
    print(f"blessing: {outputs['RetrievalEvaluator']['blessing'].get('reason', '')}")
    print(f"index:    {outputs['RetrievalIndexer']['index']['uri']}/index")
    print(f"pushed:   {pushed['pushed_destination']} (version {pushed['pushed_version']}); index {pushed['index_destination']}")
    print(f"serving:  {os.path.join(config.serving_dir, 'models.config')}")
    query = args.query or config.query
    if not query:
        from tf_dualenc.data import read_queries

        query = next(iter(read_queries(os.path.join(outputs["RetrievalExampleGen"]["eval_dataset"]["uri"], "queries.jsonl")).values()))
    hits = answer_query(outputs, query, k=args.k)
    print(f"\nquery: {query}")
    for rank, hit in enumerate(hits, 1):
        text = hit.get("text", "")
        print(f"  {rank}. {hit['id']}  {hit['score']:.4f}  {text[:100]}{'...' if len(text) > 100 else ''}")
    if args.json:
        print(json.dumps({"outputs": outputs, "query": query, "hits": hits}, default=str))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="tf-dualenc", description=__doc__.split(".")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="report the installed stack and whether TF ops, tfrs and TFX load")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("demo", help="train a tiny ADE-SPL T5 dual encoder with SamToNe on a built-in sample")
    p.add_argument("--output-dir", default="runs/demo", help="where the model and report go (default: %(default)s)")
    p.add_argument("--steps", type=int, default=60, help="training steps (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--vocabulary",
        default=None,
        help="SentencePiece model; default: ../shared/models/t5/spiece.model if present, else one trained on the sample",
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("train", help="train a dual encoder (resumes from the output folder's last checkpoint)")
    p.add_argument("--config", help="YAML or JSON file of TrainConfig keys (see docs/training.md)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key; repeatable")
    p.add_argument("--output-dir", help="shorthand for --set output_dir=...")
    p.add_argument("--stop-after-steps", type=int, default=None, help="stop this process after N steps (rerun to resume)")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="evaluate a retriever on a BEIR-layout split (JSON report + TREC run)")
    p.add_argument("--model", required=True, help="a .keras dual encoder, 'bm25', 'all-MiniLM-L6-v2', or a HF BERT folder")
    p.add_argument("--data", required=True, help="BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/)")
    p.add_argument("--split", default="test")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--k", type=int, default=100, help="run depth (default: %(default)s)")
    p.add_argument("--measures", default="NDCG@10,MRR@10,P@1,Recall@100,MAP@100")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--query-length", type=int, default=None, help="query token budget (default: the model's)")
    p.add_argument("--document-length", type=int, default=None, help="document token budget (default: the model's)")
    p.add_argument("--ignore-identical-ids", action="store_true", help="BEIR's option: drop hits whose id equals the query id")
    p.add_argument("--search", choices=["exact", "brute_force"], default="exact",
                   help="exact: chunked matmul, any corpus size; brute_force: tfrs BruteForce, corpus in memory (default: %(default)s)")
    p.add_argument("--lenient", action="store_true", help="skip and count bad records instead of failing")
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
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("export", help="export a dual encoder as a versioned SavedModel for TF Serving (+ op audit)")
    p.add_argument("--model", required=True, help="a .keras dual encoder, 'all-MiniLM-L6-v2', or a HF BERT folder")
    p.add_argument("--export-base", required=True, help="TF Serving model base folder; writes <base>/<model-name>/<version>/")
    p.add_argument("--model-name", default="dual_encoder")
    p.add_argument("--version", type=int, default=None, help="default: one more than the largest existing version")
    p.add_argument("--query-length", type=int, default=None)
    p.add_argument("--document-length", type=int, default=None)
    p.add_argument("--allow-custom-ops", action="store_true", help="do not fail when stock TF Serving lacks an op of the graph")
    p.set_defaults(func=_export)

    p = sub.add_parser("build-index", add_help=False,
                       help="Beam job: embed a corpus with an encoder export and build a ScaNN / exact index (--help for options)")
    p.set_defaults(func=_build_index)

    p = sub.add_parser("analyze", help="embedding-space analysis of one or more models: PNGs + an HTML report")
    p.add_argument("--model", action="append", required=True, metavar="NAME=PATH", help="a model to analyse; repeatable")
    p.add_argument("--data", required=True, help="BEIR-layout folder")
    p.add_argument("--split", default="test")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--queries", type=int, default=300, help="queries sampled (default: %(default)s)")
    p.add_argument("--documents", type=int, default=2000, help="documents sampled, positives included (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--query-length", type=int, default=None)
    p.add_argument("--document-length", type=int, default=None)
    p.set_defaults(func=_analyze)

    p = sub.add_parser("serve", add_help=False,
                       help="local TF Serving-compatible gRPC/REST server over exports (--help for options)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("search", help="search an index folder by query text")
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
    p.set_defaults(func=_search)

    p = sub.add_parser("pipeline", help="the TFX pipeline: ingest → train → evaluate/bless → index → push (run or compile)")
    p.add_argument("action", choices=["run", "compile"], help="run: local / Beam runner here; compile: Kubeflow V2 / Vertex AI JSON")
    p.add_argument("--config", default=None, help="pipeline YAML/JSON (default: pipelines/configs/scifact_minilm.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key (train.KEY for training); repeatable")
    p.add_argument("--runner", choices=["local", "beam"], default=None, help="runner for `run` (default: the config's)")
    p.add_argument("--output", default="pipeline.json", help="compile: the pipeline JSON to write (default: %(default)s)")
    p.add_argument("--query", default=None, help="run: the query answered from the pushed model (default: the config's)")
    p.add_argument("--k", type=int, default=5, help="run: hits shown for the query")
    p.add_argument("--json", action="store_true", help="run: also print the outputs and hits as one JSON line")
    p.add_argument("--verbose", action="store_true", help="run: keep TFX's INFO logging")
    p.set_defaults(func=_pipeline)

    p = sub.add_parser("mine-negatives", help="mine hard negatives (BM25 or a dual encoder), optionally denoised by a cross-encoder")
    p.add_argument("--data", required=True, help="BEIR-layout folder whose qrels give the positives")
    p.add_argument("--split", default="train")
    p.add_argument("--output", required=True, help="training-pair JSONL with negatives (for train, train-reranker, train-joint)")
    p.add_argument("--retriever", choices=["bm25", "dense"], default="bm25")
    p.add_argument("--model", default=None, help="dense retriever: a .keras dual encoder, all-MiniLM-L6-v2 or a HF BERT folder")
    p.add_argument("--depth", type=int, default=30, help="documents retrieved per query (default: %(default)s)")
    p.add_argument("--skip-top", type=int, default=0, help="also drop the first N non-positive hits (likely unlabelled positives)")
    p.add_argument("--negatives", type=int, default=8, help="negatives kept per query (default: %(default)s)")
    p.add_argument("--denoise", default=None, help="cross-encoder (export or .keras): drop negatives it scores as likely positive")
    p.add_argument("--threshold", type=float, default=0.9, help="denoising: drop when sigmoid(score) > this (default: %(default)s)")
    p.add_argument("--hybrid", action="store_true", help="RocketQAv2 hybrid lists: half denoised, half undenoised negatives")
    p.add_argument("--max-queries", type=int, default=None, help="mine for a seeded sample of N queries (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--query-length", type=int, default=None)
    p.add_argument("--document-length", type=int, default=None)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.set_defaults(func=_mine_negatives)

    def list_training_arguments(p):
        p.add_argument("--data", required=True, help="training-pair JSONL with negatives (from mine-negatives)")
        p.add_argument("--output-dir", required=True, help="a new folder (existing models are never overwritten)")
        p.add_argument("--list-size", type=int, default=4, help="candidates per list: the positive + N-1 negatives (default: %(default)s)")
        p.add_argument("--steps", type=int, default=500)
        p.add_argument("--batch-size", type=int, default=8, help="lists per step (default: %(default)s)")
        p.add_argument("--warmup-steps", type=int, default=0)
        p.add_argument("--seed", type=int, default=0, help="draws each list's negatives and the list order")
        p.add_argument("--log-every", type=int, default=10)
        p.add_argument("--lenient", action="store_true", help="skip bad records instead of failing")

    p = sub.add_parser("train-reranker", help="train a cross-encoder re-ranker listwise on mined lists")
    list_training_arguments(p)
    p.add_argument("--tower", choices=["bert", "t5"], default="bert")
    p.add_argument("--preset", default=None,
                   help="BERT: all-MiniLM-L6-v2 (default), a keras-hub preset or a HF folder; T5: a keras-hub preset or HF folder")
    p.add_argument("--size", default="tiny", help="T5 tower size without --preset (default: %(default)s)")
    p.add_argument("--vocabulary", default=None, help="T5: SentencePiece model")
    p.add_argument("--pair-length", type=int, default=256, help="tokens of query + document (default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--pointwise-weight", type=float, default=0.5, help="weight of the calibrating BCE term (0: listwise only)")
    p.add_argument("--validation-data", default=None, help="held-out lists (JSONL) scored during training")
    p.add_argument("--validate-every", type=int, default=None, help="validation interval in steps (default: at the end)")
    p.set_defaults(func=_train_reranker)

    p = sub.add_parser("train-joint", help="RocketQAv2 joint training: dual encoder + cross-encoder by dynamic listwise distillation")
    list_training_arguments(p)
    p.add_argument("--dual-encoder", required=True, help="the retriever: a .keras dual encoder, all-MiniLM-L6-v2 or a HF BERT folder")
    p.add_argument("--reranker", required=True, help="the re-ranker: a .keras cross-encoder (from train-reranker)")
    p.add_argument("--retriever-learning-rate", type=float, default=2e-5)
    p.add_argument("--reranker-learning-rate", type=float, default=2e-5)
    p.add_argument("--retriever-temperature", type=float, default=0.05, help="τ of the retriever's softmax over each list")
    p.add_argument("--query-length", type=int, default=None)
    p.add_argument("--document-length", type=int, default=None)
    p.set_defaults(func=_train_joint)

    p = sub.add_parser("train-vocab", help="train a T5-compatible SentencePiece vocabulary on a corpus")
    p.add_argument("--input", nargs="+", required=True, help="text, JSONL or BEIR corpus.jsonl/queries.jsonl files")
    p.add_argument("--output", required=True, help="output path of the .model file")
    p.add_argument("--vocabulary-size", type=int, default=32000)
    p.add_argument("--fields", default="title,text", help="JSONL fields to read, comma-separated (default: %(default)s)")
    p.set_defaults(func=_train_vocab)
    return parser


def main(argv=None):
    parser = build_parser()
    # build-index hands every option to the Beam job's own parser (its options and Beam's pipeline options).
    args, extra = parser.parse_known_args(argv)
    if args.command == "build-index":
        args.pipeline_args = extra
    elif args.command == "serve":
        args.server_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    import tf_dualenc  # noqa: F401  (environment shims before any TensorFlow import, warning filters)

    from serving.client import ServingError

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, FloatingPointError, ServingError) as error:
        print(f"tf-dualenc {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
