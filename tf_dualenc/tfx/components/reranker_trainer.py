"""Reranker trainer: the optional second stage of the pushed search (the pipeline config's `reranker` section).

For a blessed model it
1. mines candidate lists for the training queries of the ingested BEIR folder (the Examples artifact's `beir/`, whose
   "train" split holds no validation query): BM25, or the trained dual encoder (`negatives: dense`);
2. trains a cross-encoder listwise on them (`tf_dualenc.reranking.listwise_training.train_cross_encoder`);
3. re-ranks the blessed search's validation run (the evaluator's `search/run.validation.trec`: dense, or BM25 + dense
   as the evaluator chose) at depth `rerank_k`, with the cross-encoder's share of the final score chosen there
   (`check_reranked_run`), and keeps the cross-encoder only when that *raises* the validation metric. The test run is
   re-ranked the same way for the report only.

Output: a `Model` artifact — `Format-Serving` (the cross-encoder's SavedModel, `score` signature), `Format-Keras/
reranker.keras`, `reranker.json` (lists, training, the check, test) and the custom properties `kept` (1/0), `weight`,
`rerank_k`, `reason`. The pusher serves a kept one beside the encoder and records it in the pushed index, so `search`
(local, or `--server`) answers the cascade that was checked here. An unblessed model trains nothing (`kept` 0).
"""

import json
import os
import shutil
import sys

from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import Channel, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tf_dualenc.tfx.artifacts import RetrievalDataset, RetrievalEvaluation
from tf_dualenc.tfx.components.shared import SERVING_FOLDER, is_blessed, record_unblessed, reported_as, search_run_file, serving_dir

COMPONENT = "RerankerTrainer"
RECORD = "reranker.json"


def is_kept(reranker_artifact):
    return reranker_artifact.get_int_custom_property("kept") == 1


def mine_lists(dataset, section, model=None, progress=False, ignore_identical_ids=False):
    """Fixed-size candidate lists for `dataset`'s training pairs: each query's negatives mined as `section` says (a
    query's own id excluded under `ignore_identical_ids`), then `list_size` − 1 of them drawn with `section.seed`
    (`build_candidate_lists`). Returns (lists, stats)."""
    from tf_dualenc.mining.candidate_lists import build_candidate_lists
    from tf_dualenc.mining.hard_negatives import mine_hard_negatives

    negatives = mine_hard_negatives(dataset, retriever=section.negatives, model=model, depth=section.depth,
                                    skip_top=section.skip_top, progress=progress, ignore_identical_ids=ignore_identical_ids)
    lists = build_candidate_lists(dataset.training_pairs(), negatives, section.list_size, seed=section.seed)
    if len(lists) < section.batch_size:
        raise ValueError(f"reranker: {len(lists)} candidate lists of {section.list_size} were mined from the training queries, "
                         f"fewer than reranker.batch_size={section.batch_size}; lower it, or raise reranker.depth")
    return lists, {"queries": len(negatives), "lists": len(lists), "negatives": section.negatives}


def cascade_decision(qrels, run, cross_scores, metric, weight):
    """(kept, check): the re-ranked `run` must score strictly above `run` on `qrels` (`check_reranked_run`, which also
    chooses an "auto" weight); `check` holds both values, the weight and the reason."""
    from tf_dualenc.evaluation.rerank_evaluation import RerankerRegression, check_reranked_run

    try:
        check = check_reranked_run(qrels, run, cross_scores, metric=metric, weight=weight)
    except RerankerRegression as regression:
        return False, {"reason": str(regression)}
    if check["reranked"] <= check["retrieval"]:
        return False, dict(check, reason=f"re-ranking leaves validation {metric} at {check['retrieval']:.4f}: it does not help")
    return True, dict(check, reason=f"re-ranking raises validation {metric} from {check['retrieval']:.4f} to "
                                    f"{check['reranked']:.4f} (cross-encoder weight {check['weight']})")


def _head_queries(run, limit):
    kept = sorted(run)[:limit] if limit else sorted(run)
    return {q: run[q] for q in kept}


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from tf_dualenc.data import load_beir
        from tf_dualenc.evaluation import evaluate_run, write_trec_run
        from tf_dualenc.evaluation.rerank_evaluation import combine_reranking, cross_encoder_scores
        from tf_dualenc.evaluation.trec_metrics import read_trec_run
        from tf_dualenc.progress import components_show_progress
        from tf_dualenc.tfx.components.retrieval_example_gen import TRAINING_FOLDER
        from tf_dualenc.tfx.reranker_section import RerankerSection

        examples = artifact_utils.get_single_instance(input_dict["examples"])
        model = artifact_utils.get_single_instance(input_dict["model"])
        blessing = artifact_utils.get_single_instance(input_dict["blessing"])
        evaluation = artifact_utils.get_single_instance(input_dict["evaluation"])
        validation_artifact = artifact_utils.get_single_instance(input_dict["validation_dataset"])
        test_artifacts = input_dict.get("eval_dataset") or []
        output = artifact_utils.get_single_instance(output_dict["reranker"])
        if not is_blessed(blessing):
            record_unblessed(blessing, output, "kept", 0)
            return
        metric, title_separator = exec_properties["metric"], exec_properties["title_separator"]
        measures = tuple(json.loads(exec_properties["measures"]))
        progress = components_show_progress()
        with reported_as(COMPONENT):
            section = RerankerSection.from_dict(json.loads(exec_properties["section"]))
            problems = section.errors()
            if problems:
                raise ValueError("; ".join(problems))
            from tf_dualenc.data.evaluation_rules import resolve_rules

            folder = os.path.join(examples.uri, TRAINING_FOLDER)
            training = load_beir(folder, "train")
            first_stage = None
            if section.negatives == "dense":
                from tf_dualenc.export import ExportedDualEncoder

                first_stage = ExportedDualEncoder(serving_dir(model))
            lists, list_stats = mine_lists(training, section, first_stage, progress, resolve_rules(folder).ignore_identical_ids)
            import keras

            from tf_dualenc.reranking.listwise_training import train_cross_encoder

            keras.utils.set_random_seed(section.seed)
            cross_encoder = section.build()
            settings = {"steps": section.steps, "batch_size": section.batch_size, "learning_rate": section.learning_rate,
                        "warmup_steps": section.warmup_steps, "pointwise_weight": section.pointwise_weight, "seed": section.seed}
            history = train_cross_encoder(cross_encoder, lists, log_every=max(1, section.steps // 10), **settings)
            splits = {"validation": load_beir(validation_artifact.uri, validation_artifact.get_string_custom_property("split"))}
            if test_artifacts:
                splits["test"] = load_beir(test_artifacts[0].uri, test_artifacts[0].get_string_custom_property("split"))
            report = {"lists": list_stats, "settings": section.to_dict(), "training": history, "metric": metric, "splits": {}}
            runs, cross = {}, {}
            for name, split in splits.items():
                run = read_trec_run(search_run_file(evaluation, name))
                runs[name] = _head_queries(run, section.check_queries) if name == "validation" else run
                if progress:  # minutes on a real corpus: one cross-encoder pass per (query, candidate) pair
                    print(f"{COMPONENT}: scoring the top {section.rerank_k} of {len(runs[name])} {name} queries with the "
                          "cross-encoder", file=sys.stderr, flush=True)
                cross[name] = cross_encoder_scores(runs[name], split.queries, lambda d, s=split: s.document_text(d, title_separator),
                                                   cross_encoder.score_pairs, section.rerank_k)
            kept, check = cascade_decision(splits["validation"].qrels, runs["validation"], cross["validation"], metric, section.weight)
            report["check"] = check
            weight = check.get("weight", section.weight if section.weight != "auto" else None)
            for name, split in splits.items():
                entry = {"search": evaluate_run(split.qrels, runs[name], measures=measures)["aggregate"]}
                if weight:
                    reranked = combine_reranking(runs[name], cross[name], weight)
                    write_trec_run(os.path.join(output.uri, f"run.{name}.reranked.trec"), reranked, tag=f"cascade-{name}")
                    entry["cascade"] = evaluate_run(split.qrels, reranked, measures=measures)["aggregate"]
                report["splits"][name] = entry
            _write_model(output.uri, cross_encoder)
        from tf_dualenc.atomic_write import write_json_atomic

        report.update(kept=kept, weight=weight, rerank_k=section.rerank_k, model=model.uri)
        write_json_atomic(os.path.join(output.uri, RECORD), report)
        output.set_int_custom_property("kept", int(kept))
        output.set_string_custom_property("reason", check["reason"])
        output.set_int_custom_property("rerank_k", section.rerank_k)
        output.set_float_custom_property("weight", float(weight) if weight else -1.0)
        output.set_string_custom_property("served_name", exec_properties["served_name"])
        for split, entry in report["splits"].items():
            prefix = "" if split == "validation" else f"{split}_"
            for kind in ("search", "cascade"):
                if kind in entry:
                    output.set_float_custom_property(f"{prefix}{kind}_{metric}", float(entry[kind][metric]))


def _write_model(folder, cross_encoder):
    """`Format-Serving` (the SavedModel the pusher serves) and `Format-Keras/reranker.keras`."""
    from tf_dualenc.export import export_cross_encoder

    staging = os.path.join(folder, ".export")
    result = export_cross_encoder(cross_encoder, staging, model_name="reranker", version=1)
    target = os.path.join(folder, SERVING_FOLDER)
    if os.path.exists(target):
        shutil.rmtree(target)
    shutil.move(result.path, target)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(folder, "Format-Keras"), exist_ok=True)
    cross_encoder.save(os.path.join(folder, "Format-Keras", "reranker.keras"))


class RerankerTrainerSpec(ComponentSpec):
    PARAMETERS = {
        "section": ExecutionParameter(type=str),
        "served_name": ExecutionParameter(type=str),
        "metric": ExecutionParameter(type=str),
        "measures": ExecutionParameter(type=str),
        "title_separator": ExecutionParameter(type=str),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "model": ChannelParameter(type=standard_artifacts.Model),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "evaluation": ChannelParameter(type=RetrievalEvaluation),
        "validation_dataset": ChannelParameter(type=RetrievalDataset),
        "eval_dataset": ChannelParameter(type=RetrievalDataset, optional=True),
    }
    OUTPUTS = {"reranker": ChannelParameter(type=standard_artifacts.Model)}


class RerankerTrainer(base_component.BaseComponent):
    """Trains and checks the cascade's cross-encoder (see the module docstring).

    Args:
        examples: RetrievalExampleGen's `examples` (its `beir/` folder: the training queries and corpus).
        model, blessing, evaluation: the Trainer's model and the evaluator's blessing and evaluation (whose blessed
            search's runs are re-ranked).
        validation_dataset: decides (kept or not, the weight); eval_dataset: test, reported only.
        reranker: the pipeline config's `reranker` mapping (`RerankerSection` keys).
        served_name: the name the pusher serves a kept cross-encoder under.
    """

    SPEC_CLASS = RerankerTrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples, model, blessing, evaluation, validation_dataset, eval_dataset=None, *, reranker, served_name,
                 metric="NDCG@10", measures=("NDCG@10", "MRR@10", "P@1", "Recall@100", "MAP@100"), title_separator=" "):
        super().__init__(spec=RerankerTrainerSpec(
            examples=examples, model=model, blessing=blessing, evaluation=evaluation, validation_dataset=validation_dataset,
            eval_dataset=eval_dataset, section=json.dumps(dict(reranker), sort_keys=True), served_name=served_name, metric=metric,
            measures=json.dumps(list(measures)), title_separator=title_separator, reranker=Channel(type=standard_artifacts.Model),
        ))
