"""The pipeline definition: one pure `create_pipeline()` for every runner (local, Beam, Kubeflow V2 / Vertex AI).

    RetrievalExampleGen ─ examples ─▶ Trainer (run_fn=tf_dualenc.tfx.trainer_module.run_fn) ─ model ─┐
            └─ validation_dataset (decides), eval_dataset (test: reported, indexed) ──────────┤
    latest_blessed_model_resolver ─ baseline_model ──▶ RetrievalEvaluator ─ blessing ─▶ RetrievalIndexer ─ index ─▶ ServingPusher
                                                          └─ corpus_embeddings (test corpus, blessed model) ─▲          ▲
    with a `reranker` section:  examples, model, blessing, evaluation ─▶ RerankerTrainer ─ reranker (kept or not) ──────┘
"""

from tfx import v1 as tfx

from tf_dualenc.tfx.components.baseline_model_strategy import LastBlessedBaselineStrategy
from tf_dualenc.tfx.components.reranker_trainer import RerankerTrainer
from tf_dualenc.tfx.components.retrieval_evaluator import RetrievalEvaluator
from tf_dualenc.tfx.components.retrieval_example_gen import RetrievalExampleGen
from tf_dualenc.tfx.components.retrieval_indexer import RetrievalIndexer
from tf_dualenc.tfx.components.serving_pusher import ServingPusher

RUN_FN = "tf_dualenc.tfx.trainer_module.run_fn"
BASELINE_STRATEGIES = ("last_blessed_other", "latest_blessed")


def create_pipeline(config, *, metadata_connection_config=None, beam_pipeline_args=(), input_fingerprint="",
                    baseline_strategy="last_blessed_other"):
    """Builds the TFX pipeline from a validated, resolved `PipelineConfig`; runs nothing.

    Args:
        config: a `tf_dualenc.tfx.pipeline_config.PipelineConfig` (`resolved()` and `validate()`d).
        metadata_connection_config: MLMD connection (local runners); None for Kubeflow V2 / Vertex AI.
        beam_pipeline_args: Beam options for the Beam-based components (the indexer).
        input_fingerprint: digest of the input files (`fingerprint_inputs`), so a changed file re-runs ingest.
        baseline_strategy: "last_blessed_other" (the last blessed model other than the one being evaluated; keeps
            re-runs cached) or "latest_blessed" (TFX's LatestBlessedModelStrategy; what Vertex AI can run).
    """
    if baseline_strategy not in BASELINE_STRATEGIES:
        raise ValueError(f"baseline_strategy={baseline_strategy!r} (valid: {list(BASELINE_STRATEGIES)})")
    example_gen = RetrievalExampleGen(
        data=config.data, eval_data=config.eval_data, data_format=config.data_format, split=config.split,
        eval_split=config.eval_split, validation_data=config.validation_data or config.data,
        validation_fraction=config.validation_fraction, title_separator=config.title_separator, lenient=config.lenient,
        num_shards=config.num_shards, input_fingerprint=input_fingerprint, ignore_identical_ids=config.ignore_identical_ids,
    )
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        # num_steps 0 reaches run_fn as None: the train config's epochs decide.
        train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=0),
        custom_config={"train": dict(config.train), "stock_compatible": config.stock_compatible},
    )
    strategy = (LastBlessedBaselineStrategy if baseline_strategy == "last_blessed_other"
                else tfx.dsl.experimental.LatestBlessedModelStrategy)
    baseline = tfx.dsl.Resolver(
        strategy_class=strategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    # Resolve after training, so the newest Model artifact is the one about to be evaluated (see the strategy).
    baseline.add_upstream_node(trainer)
    evaluator = RetrievalEvaluator(
        model=trainer.outputs["model"], validation_dataset=example_gen.outputs["validation_dataset"],
        eval_dataset=example_gen.outputs["eval_dataset"], baseline_model=baseline.outputs["model"], metric=config.metric,
        threshold=config.threshold, k=config.eval_k, batch_size=config.eval_batch_size, bless_against=config.bless_against,
        starting_model=config.train, title_separator=config.title_separator, search_fusion=config.search_fusion,
    )
    indexer = RetrievalIndexer(
        model=trainer.outputs["model"], blessing=evaluator.outputs["blessing"], eval_dataset=example_gen.outputs["eval_dataset"],
        corpus_embeddings=evaluator.outputs["corpus_embeddings"], corpus=config.index_corpus, method=config.index_method,
        brute_force_below=config.brute_force_below, batch_size=config.eval_batch_size, title_separator=config.title_separator,
    )
    cascade = []
    if config.reranker:
        from tf_dualenc.tfx.reranker_section import RerankerSection

        cascade = [RerankerTrainer(
            examples=example_gen.outputs["examples"], model=trainer.outputs["model"], blessing=evaluator.outputs["blessing"],
            evaluation=evaluator.outputs["evaluation"], validation_dataset=example_gen.outputs["validation_dataset"],
            eval_dataset=example_gen.outputs["eval_dataset"], reranker=config.reranker,
            served_name=RerankerSection.from_dict(config.reranker).served_name(config.model_name), metric=config.metric,
            title_separator=config.title_separator,
        )]
    pusher = ServingPusher(
        model=trainer.outputs["model"], blessing=evaluator.outputs["blessing"], index=indexer.outputs["index"],
        reranker=cascade[0].outputs["reranker"] if cascade else None, serving_dir=config.serving_dir, model_name=config.model_name,
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[example_gen, trainer, baseline, evaluator, indexer, *cascade, pusher],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
