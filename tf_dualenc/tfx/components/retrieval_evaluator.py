"""Retrieval evaluator: scores the trained export on the validation split (carved from the training data) and blesses
it there; the test split is scored too, for the report only — nothing is chosen on it.

Blessing (`blessing_decision`): the chosen metric on validation must clear the threshold, and
- when there is a last blessed model (the baseline), must not fall below it, as TFX's Evaluator does;
- otherwise (the first blessing) must beat each reference of `bless_against` on the same validation split:
  "starting_model" (the model the run fine-tunes, before training: zero-shot MiniLM, or a T5 tower from its preset or
  random initialisation) and/or "bm25". So a fine-tune that made the model worse is never pushed.

The blessing is a standard `ModelBlessing` (`BLESSED` / `NOT_BLESSED` file; custom properties `blessed`,
`current_model_id`, `baseline_model_id` as TFX's Evaluator writes them), so `LatestBlessedModelStrategy` and
TFX tools read it like any other. It also records the metric, its value, the threshold, the references and the reason.

Encoding a corpus takes minutes: it shows progress lines on stderr (documents done, documents/s, time left) unless
TF_DUALENC_PROGRESS=0 (`tf-dualenc pipeline run --quiet`; `tf_dualenc.progress.components_show_progress`).

The search to push is chosen here too, on validation (`choose_search`): BM25 interpolated with the model's dense run
at the weight that scores best on validation, or the dense run alone when no fusion beats it there. The choice is
recorded in `evaluation.json` ("search") and on the blessing (`search_fusion`, `search_weight`, `search_depth`), where
the indexer and the pusher read it; the report shows dense, BM25 and the chosen search on validation (decides) and
test (reported).

A blessed model's document embeddings of the test corpus, computed here anyway, are saved as `CorpusEmbeddings` (with
a fingerprint of the encoded texts and the model's URI): the indexer builds its index from them instead of encoding the
same corpus with the same model again.
"""

import json
import os

from absl import logging
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import Channel, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tf_dualenc.atomic_write import write_json_atomic
from tf_dualenc.tfx.artifacts import CorpusEmbeddings, RetrievalDataset, RetrievalEvaluation
from tf_dualenc.tfx.components.shared import reported_as, search_run_file, serving_dir

COMPONENT = "RetrievalEvaluator"
REFERENCES = ("starting_model", "bm25")
DEFAULT_BLESS_AGAINST = REFERENCES
SEARCH_FUSIONS = ("auto", "dense", "interpolate")


def blessing_decision(value, threshold, baseline_value=None, metric="metric", references=None):
    """(blessed, reason): the metric must clear `threshold`; with a baseline (the last blessed model) it must not be
    below the baseline's; without one it must beat (strictly) every value of `references` ({name: value})."""
    if value < threshold:
        return False, f"{metric} = {value:.4f} is below the threshold {threshold:.4f}"
    if baseline_value is not None and value < baseline_value:
        return False, f"{metric} = {value:.4f} is worse than the last blessed model's {baseline_value:.4f}"
    if baseline_value is None:
        for name, reference in (references or {}).items():
            if value <= reference:
                return False, f"{metric} = {value:.4f} does not beat the {name.replace('_', ' ')}'s {reference:.4f}"
    against = "" if baseline_value is None else f" and not worse than the last blessed model's {baseline_value:.4f}"
    if baseline_value is None and references:
        against = " and beats " + ", ".join(f"the {n.replace('_', ' ')}'s {v:.4f}" for n, v in references.items())
    return True, f"{metric} = {value:.4f} clears the threshold {threshold:.4f}{against}"


def _starting_model(train_values, model_folder, corpus):
    """The model training started from, in the precision the trained model is served in. When the Trainer kept the
    starting model's embeddings of this `corpus` ([(id, text)]; dense mining encoded it), they answer its document
    encodings instead of a second encoding of the corpus."""
    import keras

    from tf_dualenc.indexing.corpus_embeddings import reusable_embeddings
    from tf_dualenc.precision import set_precision
    from tf_dualenc.tfx.trainer_module import STARTING_MODEL, STARTING_MODEL_CORPUS, TRAINING_RECORD
    from tf_dualenc.training.train_config import TrainConfig
    from tf_dualenc.training.trainer import build_model

    config = TrainConfig.from_dict(dict(train_values), source="the Trainer's train config")
    # The same seed as the Trainer's: a randomly initialised tower is the very one training started from.
    keras.utils.set_random_seed(config.seed)
    model = build_model(config)
    record_path = os.path.join(model_folder, TRAINING_RECORD)
    if os.path.isfile(record_path):
        with open(record_path, encoding="utf-8") as f:
            set_precision(model, json.load(f).get("precision") or "float32")
    embeddings, why = reusable_embeddings(os.path.join(model_folder, STARTING_MODEL_CORPUS), corpus, model=STARTING_MODEL)
    if embeddings is None:
        logging.info("%s: encoding the corpus with the starting model: %s", COMPONENT, why)
        return model
    return _KnownDocuments(model, {text: row for row, (_, text) in enumerate(corpus)}, embeddings)


class _KnownDocuments:
    """A dual encoder whose `encode_documents` answers from saved embeddings when it knows every text asked for."""

    def __init__(self, model, row_of_text, embeddings):
        self._model, self._row_of_text, self._embeddings = model, row_of_text, embeddings

    def encode_queries(self, texts, **kwargs):
        return self._model.encode_queries(texts, **kwargs)

    def encode_documents(self, texts, **kwargs):
        rows = [self._row_of_text.get(text) for text in texts]
        if any(row is None for row in rows):
            return self._model.encode_documents(texts, **kwargs)
        return self._embeddings[rows]


def choose_search(qrels, dense, lexical, metric, depth, fusion="auto"):
    """The search to push, chosen on a validation split: {"fusion": "interpolate", "weight": w, "depth": depth} when
    BM25 interpolated with the dense run at the best weight (`choose_interpolation_weight`) scores higher on `metric`
    than the dense run alone, else {"fusion": "dense", "depth": depth}; with the validation value and the weight curve.
    `fusion` "dense" or "interpolate" forces that fusion (the weight is still chosen on validation)."""
    from tf_dualenc.evaluation import evaluate_run
    from tf_dualenc.evaluation.hybrid import choose_interpolation_weight

    if fusion not in SEARCH_FUSIONS:
        raise ValueError(f"search_fusion={fusion!r} (valid: {list(SEARCH_FUSIONS)})")
    dense_value = evaluate_run(qrels, dense, measures=(metric,))["aggregate"][metric]
    weight, curve = choose_interpolation_weight(qrels, dense, lexical, metric=metric)
    if fusion == "interpolate" or (fusion == "auto" and curve[weight] > dense_value):
        return {"fusion": "interpolate", "weight": weight, "depth": depth, "metric": metric, "validation": curve[weight],
                "dense_validation": dense_value, "validation_curve": curve}
    return {"fusion": "dense", "weight": None, "depth": depth, "metric": metric, "validation": dense_value,
            "dense_validation": dense_value, "validation_curve": curve}


def search_run(search, dense, lexical):
    """The run of the chosen `search` (`choose_search`) from a dense and a BM25 run of the same queries."""
    from tf_dualenc.evaluation.hybrid import interpolate_runs

    if search["fusion"] == "dense":
        return dense
    return interpolate_runs(dense, lexical, search["weight"], depth=search["depth"])


def _score(model, splits, folder, measures, k, batch_size, title_separator, on_documents=None, runs_out=None,
           ignore_identical_ids=False):
    """Each split's metrics with `model`, its run files written to `folder` (and the runs into `runs_out`); the
    encodings show progress on stderr (`tf_dualenc.progress.components_show_progress`); `ignore_identical_ids`: the
    data's rule, on every run."""
    from tf_dualenc.evaluation import evaluate_run, write_trec_run
    from tf_dualenc.evaluation.hybrid import dense_runs
    from tf_dualenc.progress import components_show_progress

    runs, _ = dense_runs(model, splits, k=k, batch_size=batch_size, title_separator=title_separator, on_documents=on_documents,
                         progress=components_show_progress(), ignore_identical_ids=ignore_identical_ids)
    os.makedirs(folder, exist_ok=True)
    metrics = {}
    for name, run in runs.items():
        write_trec_run(os.path.join(folder, f"run.{name}.trec"), run, tag=name)
        metrics[name] = evaluate_run(splits[name].qrels, run, measures=measures)["aggregate"]
    if runs_out is not None:
        runs_out.update(runs)
    return metrics


def _save_corpus_embeddings(output, model, encoded, blessed):
    """Saves the model's vectors of the test corpus for the indexer (only a blessed model is indexed)."""
    from tf_dualenc.indexing.corpus_embeddings import write_corpus_embeddings

    if not blessed or encoded is None:
        output.set_int_custom_property("count", 0)
        output.set_string_custom_property("reason", "model not blessed" if not blessed else "no test split was evaluated")
        return
    metadata = write_corpus_embeddings(output.uri, *encoded, model=model.uri)
    for name in ("count", "dimension"):
        output.set_int_custom_property(name, metadata[name])
    output.set_string_custom_property("corpus_fingerprint", metadata["corpus_fingerprint"])
    output.set_string_custom_property("model", metadata["model"])


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from tf_dualenc.data import load_beir
        from tf_dualenc.evaluation import evaluate_run, write_trec_run
        from tf_dualenc.evaluation.hybrid import lexical_run
        from tf_dualenc.export import ExportedDualEncoder

        model = artifact_utils.get_single_instance(input_dict["model"])
        baselines = input_dict.get("baseline_model") or []
        baseline = baselines[0] if baselines and baselines[0].id != model.id else None
        validation_artifact = artifact_utils.get_single_instance(input_dict["validation_dataset"])
        test_artifacts = input_dict.get("eval_dataset") or []
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        corpus_embeddings = artifact_utils.get_single_instance(output_dict["corpus_embeddings"])
        title_separator = exec_properties["title_separator"]
        metric, threshold = exec_properties["metric"], float(exec_properties["threshold"])
        measures = tuple(json.loads(exec_properties["measures"]))
        bless_against = json.loads(exec_properties["bless_against"])
        k, batch_size = int(exec_properties["k"]), int(exec_properties["batch_size"])
        with reported_as(COMPONENT):
            if metric not in measures:
                raise ValueError(f"metric {metric!r} is not among the computed measures {list(measures)}")
            unknown = sorted(set(bless_against) - set(REFERENCES))
            if unknown:
                raise ValueError(f"bless_against {unknown} (valid: {list(REFERENCES)})")
            from tf_dualenc.data.evaluation_rules import resolve_rules

            # The data's rules, as ingest wrote them beside the split (the test split is written under the same ones).
            rules = resolve_rules(validation_artifact.uri)
            ignore = rules.ignore_identical_ids
            splits = {"validation": load_beir(validation_artifact.uri, validation_artifact.get_string_custom_property("split"))}
            if test_artifacts:
                splits["test"] = load_beir(test_artifacts[0].uri, test_artifacts[0].get_string_custom_property("split"))
            encoded, dense = {}, {}
            scores = _score(ExportedDualEncoder(serving_dir(model)), splits, os.path.join(evaluation.uri, "model"), measures, k,
                            batch_size, title_separator, lambda names, *vectors: encoded.update(dict.fromkeys(names, vectors)),
                            runs_out=dense, ignore_identical_ids=ignore)
            validation = {"validation": splits["validation"]}
            baseline_metrics = None
            if baseline is not None:
                baseline_metrics = _score(ExportedDualEncoder(serving_dir(baseline)), validation, os.path.join(evaluation.uri, "baseline"),
                                          measures, k, batch_size, title_separator, ignore_identical_ids=ignore)["validation"]
            # References, on every split: decided on validation, shown beside the model on test. The starting model
            # is scored for a first blessing only (later ones compare with the last blessed model); BM25 costs little.
            reference_metrics = {}
            if baseline is None:
                corpus = splits["validation"]
                starting = _starting_model(json.loads(exec_properties["starting_model"]), model.uri,
                                           [(d, corpus.document_text(d, title_separator)) for d in corpus.corpus])
                reference_metrics["starting_model"] = _score(starting, splits, os.path.join(evaluation.uri, "starting_model"),
                                                             measures, k, batch_size, title_separator, ignore_identical_ids=ignore)
            lexical = {name: lexical_run(split, k=k, title_separator=title_separator, ignore_identical_ids=ignore)
                       for name, split in splits.items()}
            reference_metrics["bm25"] = {name: evaluate_run(split.qrels, lexical[name], measures=measures)["aggregate"]
                                         for name, split in splits.items()}
            search = choose_search(splits["validation"].qrels, dense["validation"], lexical["validation"], metric, k,
                                   exec_properties.get("search_fusion") or "auto")
            searches = {}
            for name, split in splits.items():
                run = search_run(search, dense[name], lexical[name])
                write_trec_run(search_run_file(evaluation, name), run, tag=f"search-{name}")
                searches[name] = {"dense": scores[name], "bm25": reference_metrics["bm25"][name],
                                  "search": evaluate_run(split.qrels, run, measures=measures)["aggregate"]}
        value = float(scores["validation"][metric])
        baseline_value = float(baseline_metrics[metric]) if baseline_metrics else None
        references = {name: float(reference_metrics[name]["validation"][metric]) for name in bless_against
                      if baseline is None and name in reference_metrics}
        blessed, reason = blessing_decision(value, threshold, baseline_value, metric, references)
        summary = {
            "metric": metric, "value": value, "threshold": threshold, "blessed": blessed, "reason": reason,
            "search": search, "searches": searches, "rules": rules.to_dict(),
            "decided_on": {"split": validation_artifact.get_string_custom_property("description") or "validation",
                           "queries": len(splits["validation"].queries)},
            "metrics": scores["validation"], "test_metrics": scores.get("test"),
            "baseline_metrics": baseline_metrics, "reference_metrics": reference_metrics,
            "model": model.uri, "baseline_model": baseline.uri if baseline is not None else None,
        }
        write_json_atomic(os.path.join(evaluation.uri, "evaluation.json"), summary)
        for name, score in scores["validation"].items():
            evaluation.set_float_custom_property(name, float(score))
        for name, score in (scores.get("test") or {}).items():
            evaluation.set_float_custom_property(f"test_{name}", float(score))
        for reference, by_split in reference_metrics.items():
            for split, metrics in by_split.items():
                prefix = "" if split == "validation" else f"{split}_"
                evaluation.set_float_custom_property(f"{prefix}{reference}_{metric}", float(metrics[metric]))
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
        # The search the indexer builds and the pusher pushes (`choose_search`), decided on validation.
        blessing.set_string_custom_property("search_fusion", search["fusion"])
        blessing.set_float_custom_property("search_weight", -1.0 if search["weight"] is None else float(search["weight"]))
        blessing.set_int_custom_property("search_depth", int(search["depth"]))
        for split, by_method in searches.items():
            prefix = "" if split == "validation" else f"{split}_"
            evaluation.set_float_custom_property(f"{prefix}search_{metric}", float(by_method["search"][metric]))
        with reported_as(COMPONENT, OSError):
            _save_corpus_embeddings(corpus_embeddings, model, encoded.get("test"), blessed)


class RetrievalEvaluatorSpec(ComponentSpec):
    PARAMETERS = {
        "metric": ExecutionParameter(type=str),
        "threshold": ExecutionParameter(type=float),
        "measures": ExecutionParameter(type=str),
        "k": ExecutionParameter(type=int),
        "batch_size": ExecutionParameter(type=int),
        "bless_against": ExecutionParameter(type=str),
        "starting_model": ExecutionParameter(type=str),
        "title_separator": ExecutionParameter(type=str),
        "search_fusion": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "validation_dataset": ChannelParameter(type=RetrievalDataset),
        "eval_dataset": ChannelParameter(type=RetrievalDataset, optional=True),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {
        "evaluation": ChannelParameter(type=RetrievalEvaluation),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "corpus_embeddings": ChannelParameter(type=CorpusEmbeddings),
    }


class RetrievalEvaluator(base_component.BaseComponent):
    """Evaluates the trained model on `validation_dataset` and blesses it (see the module docstring).

    Args:
        model: the Trainer's `Model` (its `Format-Serving` encoder export is what is evaluated — what will be served).
        validation_dataset: the `RetrievalDataset` the blessing is decided on.
        eval_dataset: the test `RetrievalDataset`, scored for the report only (optional).
        baseline_model: the last blessed model (a Resolver's output), optional.
        metric: one of `measures` (trec_eval-style: "NDCG@10", "MRR@10", "P@1", "Recall@100", "MAP@100").
        threshold: the minimum value of `metric` to bless.
        bless_against: references the first blessing must beat on validation: "starting_model", "bm25".
        starting_model: the Trainer's train config (a dict of `TrainConfig` keys) that rebuilds the starting model.
        title_separator: joins a document's title and text, as the indexer joins them (its reuse of the saved
            embeddings needs the very same texts).
        search_fusion: the search to push: "auto" (BM25 interpolated with dense when that beats dense alone on
            validation, else dense), "dense", or "interpolate" (the weight chosen on validation either way).

    Outputs: `evaluation`, `blessing`, and `corpus_embeddings` (the test corpus's vectors by a blessed model).
    """

    SPEC_CLASS = RetrievalEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model, validation_dataset, eval_dataset=None, baseline_model=None, *, metric="NDCG@10", threshold=0.0,
                 measures=("NDCG@10", "MRR@10", "P@1", "Recall@100", "MAP@100"), k=100, batch_size=64,
                 bless_against=DEFAULT_BLESS_AGAINST, starting_model=None, title_separator=" ", search_fusion="auto"):
        if "starting_model" in bless_against and not starting_model:
            raise ValueError("bless_against includes 'starting_model': pass `starting_model`, the Trainer's train config "
                             "(TrainConfig keys) that rebuilds the model training starts from.")
        super().__init__(spec=RetrievalEvaluatorSpec(
            model=model, validation_dataset=validation_dataset, eval_dataset=eval_dataset, baseline_model=baseline_model,
            metric=metric, threshold=float(threshold), measures=json.dumps(list(measures)), k=k, batch_size=batch_size,
            bless_against=json.dumps(list(bless_against)), starting_model=json.dumps(dict(starting_model or {}), sort_keys=True),
            title_separator=title_separator, search_fusion=search_fusion, evaluation=Channel(type=RetrievalEvaluation),
            blessing=Channel(type=standard_artifacts.ModelBlessing), corpus_embeddings=Channel(type=CorpusEmbeddings),
        ))
