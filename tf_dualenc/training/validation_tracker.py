"""Checkpoint selection on the validation split: evaluate while training, remember the best step, keep its model."""

import json
import os

from tf_dualenc.atomic_write import write_json_atomic


class ValidationTracker:
    """Evaluates a model on a validation `BeirDataset` and keeps the best one as `best_model.keras`.

    Args:
        dataset: the validation split (`tf_dualenc.data.validation_split.load_validation`).
        output_dir: where `best_model.keras` goes (written to a temporary name, then renamed).
        metric: the measure that decides "best" (higher is better), e.g. "NDCG@10".
        measures: everything recorded at each evaluation (must include `metric`).
        title_separator: joins a document's title and text, as in training.
        ignore_identical_ids: BEIR's rule (`tf_dualenc.data.evaluation_rules`): runs drop the query's own id, as
            `evaluate` does under the same rule.
    """

    def __init__(self, dataset, output_dir, metric="NDCG@10", measures=("NDCG@10", "MRR@10", "P@1", "Recall@100"),
                 title_separator=" ", previous=None, batch_size=64, ignore_identical_ids=False):
        self.dataset = dataset
        self.ignore_identical_ids = ignore_identical_ids
        self.batch_size = batch_size
        self.output_dir = output_dir
        self.metric = metric
        self.measures = tuple(dict.fromkeys((metric,) + tuple(measures)))
        self.title_separator = title_separator
        # A resumed run continues the earlier process's history: validation.json is rewritten at every evaluation,
        # so a killed run's best step survives it (summary.json is only written when a process ends).
        state = previous
        if os.path.isfile(self.state_path):
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
        self.history = list((state or {}).get("history", []))
        self.best_step = (state or {}).get("best_step")
        self.best_value = (state or {}).get("best_value")

    @property
    def state_path(self):
        return os.path.join(self.output_dir, "validation.json")

    @property
    def best_model_path(self):
        return os.path.join(self.output_dir, "best_model.keras")

    def evaluate(self, model, step):
        """Scores `model` at `step`; saves it as the best model when it beats every earlier step (ties keep the
        earlier one). Returns the metrics."""
        from tf_dualenc.evaluation import evaluate_retrieval

        report = evaluate_retrieval(self.dataset, model=model, measures=self.measures, title_separator=self.title_separator,
                                    batch_size=self.batch_size, ignore_identical_ids=self.ignore_identical_ids)
        metrics = report["metrics"]
        self.history.append({"step": int(step), **metrics})
        if self.best_value is None or metrics[self.metric] > self.best_value:
            self.best_step, self.best_value = int(step), float(metrics[self.metric])
            tmp = os.path.join(self.output_dir, "best_model.tmp.keras")
            model.save(tmp)
            os.replace(tmp, self.best_model_path)
        write_json_atomic(self.state_path, self.summary())
        return metrics

    def summary(self):
        return {
            "split": self.dataset.split,
            "queries": len(self.dataset.queries),
            "metric": self.metric,
            "best_step": self.best_step,
            "best_value": self.best_value,
            "best_model": self.best_model_path if self.best_step is not None else None,
            "history": self.history,
        }
