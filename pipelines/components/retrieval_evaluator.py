"""Retrieval evaluator: encodes the evaluation corpus with the trained export, computes the training issue's metrics
(trec_eval definitions), and blesses the model when the chosen metric clears the threshold and is not worse than the
last blessed model (the baseline, when there is one).

The blessing is a standard `ModelBlessing` (`BLESSED` / `NOT_BLESSED` file; custom properties `blessed`,
`current_model_id`, `baseline_model_id` as TFX's Evaluator writes them), so `LatestBlessedModelStrategy` and
TFX tools read it like any other. It also records the metric, its value, the threshold and the reason.
"""

import json
import os

from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import Channel, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from pipelines.artifacts import RetrievalDataset, RetrievalEvaluation
from pipelines.components.component_error import ComponentError

COMPONENT = "RetrievalEvaluator"


def serving_dir(model_artifact):
    """The encoder export of a TFX Model artifact (`<uri>/Format-Serving`)."""
    return os.path.join(model_artifact.uri, "Format-Serving")


def blessing_decision(value, threshold, baseline_value=None, metric="metric"):
    """(blessed, reason): the metric must clear `threshold` and not be below the baseline's."""
    if value < threshold:
        return False, f"{metric} = {value:.4f} is below the threshold {threshold:.4f}"
    if baseline_value is not None and value < baseline_value:
        return False, f"{metric} = {value:.4f} is worse than the last blessed model's {baseline_value:.4f}"
    against = "" if baseline_value is None else f" and not worse than the last blessed model's {baseline_value:.4f}"
    return True, f"{metric} = {value:.4f} clears the threshold {threshold:.4f}{against}"


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from tf_dualenc.data import load_beir
        from tf_dualenc.evaluation import evaluate_retrieval
        from tf_dualenc.export import ExportedDualEncoder

        model = artifact_utils.get_single_instance(input_dict["model"])
        baselines = input_dict.get("baseline_model") or []
        baseline = baselines[0] if baselines and baselines[0].id != model.id else None
        dataset_artifact = artifact_utils.get_single_instance(input_dict["eval_dataset"])
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        metric, threshold = exec_properties["metric"], float(exec_properties["threshold"])
        measures = tuple(json.loads(exec_properties["measures"]))
        try:
            if metric not in measures:
                raise ValueError(f"metric {metric!r} is not among the computed measures {list(measures)}")
            dataset = load_beir(dataset_artifact.uri, dataset_artifact.get_string_custom_property("split"))

            def evaluate(artifact, folder):
                return evaluate_retrieval(
                    dataset, model=ExportedDualEncoder(serving_dir(artifact)), k=int(exec_properties["k"]), measures=measures,
                    batch_size=int(exec_properties["batch_size"]), output_dir=folder, model_description=artifact.uri,
                )

            report = evaluate(model, os.path.join(evaluation.uri, "model"))
            baseline_report = evaluate(baseline, os.path.join(evaluation.uri, "baseline")) if baseline is not None else None
        except (ValueError, OSError) as error:
            raise ComponentError(COMPONENT, error) from error
        value = float(report["metrics"][metric])
        baseline_value = float(baseline_report["metrics"][metric]) if baseline_report else None
        blessed, reason = blessing_decision(value, threshold, baseline_value, metric)
        summary = {
            "metric": metric, "value": value, "threshold": threshold, "blessed": blessed, "reason": reason,
            "metrics": report["metrics"], "baseline_metrics": baseline_report["metrics"] if baseline_report else None,
            "model": model.uri, "baseline_model": baseline.uri if baseline is not None else None,
        }
        with open(os.path.join(evaluation.uri, "evaluation.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
        for name, score in report["metrics"].items():
            evaluation.set_float_custom_property(name, float(score))
        evaluation.set_int_custom_property("blessed", int(blessed))
        with open(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w", encoding="utf-8") as f:
            f.write(reason + "\n")
        blessing.set_int_custom_property("blessed", int(blessed))
        blessing.set_int_custom_property("current_model_id", model.id)
        blessing.set_string_custom_property("current_model", model.uri)
        blessing.set_int_custom_property("baseline_model_id", baseline.id if baseline is not None else 0)
        if baseline is not None:
            blessing.set_string_custom_property("baseline_model", baseline.uri)
        blessing.set_string_custom_property("metric", metric)
        blessing.set_float_custom_property("value", value)
        blessing.set_float_custom_property("threshold", threshold)
        blessing.set_string_custom_property("reason", reason)


class RetrievalEvaluatorSpec(ComponentSpec):
    PARAMETERS = {
        "metric": ExecutionParameter(type=str),
        "threshold": ExecutionParameter(type=float),
        "measures": ExecutionParameter(type=str),
        "k": ExecutionParameter(type=int),
        "batch_size": ExecutionParameter(type=int),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "eval_dataset": ChannelParameter(type=RetrievalDataset),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        "evaluation": ChannelParameter(type=RetrievalEvaluation),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class RetrievalEvaluator(base_component.BaseComponent):
    """Evaluates the trained model on `eval_dataset` and blesses it (see the module docstring).

    Args:
        model: the Trainer's `Model` (its `Format-Serving` encoder export is what is evaluated — what will be served).
        eval_dataset: a `RetrievalDataset`.
        baseline_model: the last blessed model (a Resolver's output), optional.
        metric: one of `measures` (trec_eval-style: "NDCG@10", "MRR@10", "P@1", "Recall@100", "MAP@100").
        threshold: the minimum value of `metric` to bless.
    """

    SPEC_CLASS = RetrievalEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model, eval_dataset, baseline_model=None, *, metric="NDCG@10", threshold=0.0,
                 measures=("NDCG@10", "MRR@10", "P@1", "Recall@100", "MAP@100"), k=100, batch_size=64):
        super().__init__(spec=RetrievalEvaluatorSpec(
            model=model, eval_dataset=eval_dataset, baseline_model=baseline_model, metric=metric, threshold=float(threshold),
            measures=json.dumps(list(measures)), k=k, batch_size=batch_size,
            evaluation=Channel(type=RetrievalEvaluation), blessing=Channel(type=standard_artifacts.ModelBlessing),
        ))
