"""Resolver strategy for the evaluator's baseline: the last blessed model other than the one being evaluated.

TFX's `LatestBlessedModelStrategy` returns the latest blessed model, which on a re-run with unchanged inputs is the
current model itself: the evaluator's inputs change (a baseline appears) and it, the indexer and the pusher run again
although nothing changed. This strategy runs when the evaluator's inputs are resolved, after the Trainer, so the newest
`Model` artifact is the one about to be evaluated. When that model is already the latest blessed one, it returns the
baseline recorded when it was blessed — the inputs of that evaluation, so it is a cache hit.

Vertex AI / Kubeflow V2 run only TFX's built-in strategies; the pipeline uses `LatestBlessedModelStrategy` there.
"""

from tfx.dsl.components.common import resolver
from tfx.types import standard_artifacts


class LastBlessedBaselineStrategy(resolver.ResolverStrategy):
    def resolve_artifacts(self, store, input_dict):
        model_key = next(k for k, v in input_dict.items() if _is_type(v, standard_artifacts.Model, k, input_dict))
        blessing_key = next(k for k in input_dict if k != model_key)
        models = sorted(input_dict[model_key], key=lambda a: a.id, reverse=True)
        blessed = {b.get_int_custom_property("current_model_id"): b for b in sorted(input_dict[blessing_key], key=lambda a: a.id)
                   if b.get_int_custom_property("blessed") == 1}
        empty = {model_key: [], blessing_key: []}
        if not models or not blessed:
            return empty
        newest = models[0]
        by_id = {m.id: m for m in models}
        latest_blessed = next((m for m in models if m.id in blessed), None)
        if latest_blessed is None:
            return empty
        if latest_blessed.id != newest.id:
            return {model_key: [latest_blessed], blessing_key: [blessed[latest_blessed.id]]}
        recorded = blessed[newest.id].get_int_custom_property("baseline_model_id")
        if recorded in by_id and recorded in blessed:
            return {model_key: [by_id[recorded]], blessing_key: [blessed[recorded]]}
        return empty


def _is_type(artifacts, artifact_type, key, input_dict):
    if artifacts:
        return isinstance(artifacts[0], artifact_type)
    # An empty channel: tell the keys apart by name ("model" vs "model_blessing").
    return "blessing" not in key
