"""What the custom executors share: where a Model artifact's export and an index artifact's folder are, the blessing
check, and the one way a component's failure is reported (`ComponentError`).

The evaluator, indexer and pusher each read what another wrote; keeping these here means none of them imports
another component's module to find it.
"""

import contextlib
import os

from tf_dualenc.tfx.components.component_error import ComponentError

INDEX_FOLDER = "index"  # the index folder inside a RetrievalIndexArtifact
SERVING_FOLDER = "Format-Serving"  # the SavedModel inside a Model artifact (TFX's name)


def search_run_file(evaluation_artifact, split):
    """The evaluator's run of the blessed search on `split` (TREC format), which the re-ranker's check re-ranks."""
    return os.path.join(evaluation_artifact.uri, "search", f"run.{split}.trec")


def serving_dir(model_artifact):
    """The SavedModel of a TFX Model artifact (`<uri>/Format-Serving`): the Trainer's encoder export, or the
    RerankerTrainer's cross-encoder export."""
    return os.path.join(model_artifact.uri, SERVING_FOLDER)


def is_blessed(blessing):
    return blessing.get_int_custom_property("blessed") == 1


def blessed_search(blessing):
    """The search the evaluator chose on validation, from the blessing's custom properties: {"fusion", "weight",
    "depth"}; None for a blessing written without one."""
    fusion = blessing.get_string_custom_property("search_fusion")
    if not fusion:
        return None
    weight = blessing.get_float_custom_property("search_weight")
    return {"fusion": fusion, "weight": None if weight < 0 else weight, "depth": blessing.get_int_custom_property("search_depth"),
            "chosen_on": "validation", "metric": blessing.get_string_custom_property("metric")}


def record_unblessed(blessing, output, flag, value):
    """Marks `output` as not produced for an unblessed model (`flag` = `value`, and the evaluator's reason)."""
    output.set_int_custom_property(flag, value)
    output.set_string_custom_property("reason", "model not blessed: " + blessing.get_string_custom_property("reason"))


@contextlib.contextmanager
def reported_as(component, errors=(ValueError, OSError)):
    """Re-raises any of `errors` as a `ComponentError` naming `component`.

    Bad data (`DataError` and the other ValueErrors name the file and line) and file trouble are the user's to fix,
    so the run reports them in one line; any other exception propagates unchanged, traceback and all.
    """
    try:
        yield
    except errors as error:
        raise ComponentError(component, error) from error
