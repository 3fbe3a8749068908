"""`tf-dualenc pipeline run`: run the TFX pipeline here and summarise it; `tf-dualenc pipeline compile`: compile it for
Kubeflow V2 / Vertex AI. Two subcommands, each with only its own flags."""

import os
import sys


def add_parser(subparsers):
    import argparse

    from tf_dualenc.cli._flags import add_json, add_renamed

    p = subparsers.add_parser("pipeline", help="the TFX pipeline: ingest → train → evaluate/bless → index → push (run or compile)",
                              description="The TFX pipeline: `run` runs it here, `compile` writes it for Kubeflow V2 / Vertex AI.")
    # --config and --set are the two subcommands' own (each subcommand's --help lists them).
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", default=None, help="pipeline YAML/JSON file, or the name of a shipped config: scifact_minilm, "
                        "vertex (tf_dualenc/tfx/configs/; default: scifact_minilm)")
    config.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (train.KEY for training); repeatable")
    actions = p.add_subparsers(dest="action", required=True, metavar="{run,compile}")
    run_p = actions.add_parser("run", parents=[config], help="run the pipeline here (local or Beam runner) and summarise it",
                               description="Run the TFX pipeline here, print each component's outcome and answer a query from the pushed model.")
    run_p.add_argument("--runner", choices=["local", "beam"], default=None, help="the DAG runner (default: the config's `runner`)")
    run_p.add_argument("--query", default=None, help="the query answered from the pushed model (default: the config's, else the "
                       "first evaluation query)")
    add_renamed(run_p, "--top-k", "--k", type=int, default=5, metavar="K", help="hits shown for the query (default: %(default)s)")
    add_json(run_p, "the components' outputs, the query and its hits")
    # SUPPRESS: `tf-dualenc --verbose pipeline run` counts too (the command line's --verbose: TensorFlow's C++ lines).
    run_p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="keep TFX's and Beam's INFO logging and TensorFlow's C++ log lines")
    run_p.set_defaults(func=run)
    compile_p = actions.add_parser("compile", parents=[config], help="compile the pipeline JSON for Kubeflow V2 / Vertex AI",
                                   description="Compile the TFX pipeline into a Kubeflow V2 / Vertex AI pipeline JSON.")
    compile_p.add_argument("--output", default="pipeline.json", metavar="FILE",
                           help="the pipeline JSON file to write (default: %(default)s)")
    add_json(compile_p, "the file written and the config it was compiled from")
    compile_p.set_defaults(func=compile_)


def _config(args):
    from tf_dualenc.extras import require

    require("tfx", feature="tf-dualenc pipeline")
    from tf_dualenc.tfx.pipeline_config import PipelineConfig, config_file

    path = config_file(args.config)
    return path, PipelineConfig.from_file(path, args.set)


def compile_(args):
    from tf_dualenc.tfx.run_pipeline import compile_pipeline

    config_path, config = _config(args)
    path = compile_pipeline(config, args.output)
    return {"output": path, "config": config_path, "runner": "kubeflow_v2", "pipeline_name": config.pipeline_name,
            "pipeline_root": config.pipeline_root, "image": config.image}


def run(args):
    import logging

    config_path, config = _config(args)
    from tf_dualenc.progress import components_progress
    from tf_dualenc.tfx.run_pipeline import PipelineError, answer_query, run_pipeline

    if args.runner:
        config = config.with_overrides([f"runner={args.runner}"])
    if not args.verbose:
        # TFX and Beam log every artifact at INFO; the summary below says what matters.
        from absl import logging as absl_logging

        logging.getLogger().setLevel(logging.ERROR)
        absl_logging.set_verbosity(absl_logging.ERROR)
    print(f"config: {config_path}")
    try:
        # The evaluator's and the indexer's encodings show progress unless --quiet (TFX runs them: no argument reaches them).
        with components_progress(not args.quiet):
            outputs = run_pipeline(config)
    except PipelineError as error:
        print(f"tf-dualenc pipeline: {error}", file=sys.stderr)
        return 1
    config = config.resolved(print_fn=lambda *a: None)
    _print_outputs(outputs, config)
    query = args.query or config.query
    if not query:
        from tf_dualenc.data import read_queries

        query = next(iter(read_queries(os.path.join(outputs["RetrievalExampleGen"]["eval_dataset"]["uri"], "queries.jsonl")).values()))
    hits = answer_query(outputs, query, k=args.top_k)
    print(f"\nquery: {query}")
    for rank, hit in enumerate(hits, 1):
        text = hit.get("text", "")
        print(f"  {rank}. {hit['id']}  {hit['score']:.4f}  {text[:100]}{'...' if len(text) > 100 else ''}")
    return {"outputs": outputs, "query": query, "hits": hits}


def _print_outputs(outputs, config):
    """Each component's state, where its artifacts are, and the model's metrics beside the starting model's and BM25's."""
    from tf_dualenc.tfx.run_pipeline import components_run

    evaluation = outputs["RetrievalEvaluator"]["evaluation"]
    pushed = outputs["ServingPusher"]["pushed_model"]
    print("\ncomponents: " + ", ".join(f"{name} {outputs[name]['state']}" for name in components_run(outputs)))
    print(f"model:    {outputs['Trainer']['model']['uri']}  (Format-Serving: SavedModel; Format-Keras: model.keras)")
    print(f"metrics:  {evaluation['uri']}/evaluation.json")
    metric = config.metric
    print(f"  {metric:<22} {'validation (decides)':>20} {'test (reported only)':>20}")
    blessing = outputs["RetrievalEvaluator"]["blessing"]
    fusion = blessing.get("search_fusion")
    search_label = ("pushed search (dense)" if fusion == "dense" else
                    f"pushed search (+bm25 w={blessing.get('search_weight'):.2f})" if fusion else None)
    for label, key in (("this model (dense)", metric), ("starting model", f"starting_model_{metric}"), ("bm25", f"bm25_{metric}"),
                       (search_label, f"search_{metric}")):
        if label and key in evaluation:
            test = evaluation.get(f"test_{key}")
            print(f"  {label:<22} {evaluation[key]:>20.4f} {test if test is None else format(test, '.4f'):>20}")
    print(f"blessing: {blessing.get('reason', '')}")
    reranker = outputs.get("RerankerTrainer", {}).get("reranker")
    if reranker:
        for label, key in (("blessed search", f"search_{metric}"), ("+ re-ranker (cascade)", f"cascade_{metric}")):
            if key in reranker:
                test = reranker.get(f"test_{key}")
                print(f"  {label:<22} {reranker[key]:>20.4f} {test if test is None else format(test, '.4f'):>20}")
        print(f"re-ranker: {'kept' if reranker.get('kept') else 'not kept'}: {reranker.get('reason', '')}  ({reranker['uri']})")
    index = outputs["RetrievalIndexer"]["index"]
    print(f"index:    {index['uri']}/index" + (f"  (document embeddings {index['embeddings']})" if index.get("embeddings") else ""))
    print(f"pushed:   {pushed['pushed_destination']} (version {pushed['pushed_version']}); index {pushed['index_destination']}"
          + (f"; re-ranker {pushed['reranker_destination']}" if pushed.get("reranker_destination") else ""))
    print(f"serving:  {os.path.join(config.serving_dir, 'models.config')}")
