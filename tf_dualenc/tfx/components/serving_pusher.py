"""Serving pusher: copies a blessed model's encoder export and its index into a serving folder in TF Serving's layout.

    <serving_dir>/models.config                 TF Serving model config (the model is added once)
    <serving_dir>/<model_name>/<version>/       the SavedModel (serving_default, encode_query, encode_document)
    <serving_dir>/indexes/<model_name>/<version>/   its index folder (manifest points at the pushed model, and records
                                                    the search chosen on validation: dense, or BM25 + dense fused)
    <serving_dir>/<reranker name>/<version>/    with a kept cascade (`RerankerTrainer`): the cross-encoder's SavedModel,
                                                    recorded in the index's search as `rerank` (name, version, depth, weight)

All use the same version: one more than the largest version of any. Each is copied to a temporary folder and
renamed into place, index first, model last (a model never appears without its index and re-ranker); if a later copy
fails, the versions just pushed are removed. An unblessed model pushes nothing and leaves the serving folder untouched. A model
already pushed (same Model artifact) is not pushed again: its existing version is reported.
"""

import json
import os
import shutil
import uuid

from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import Channel, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tf_dualenc.tfx.artifacts import RetrievalIndexArtifact
from tf_dualenc.tfx.components.shared import INDEX_FOLDER, is_blessed, record_unblessed, reported_as, serving_dir
from tf_dualenc.atomic_write import write_json_atomic, write_text_atomic
from tf_dualenc.export.layout import check_model_name, model_versions

COMPONENT = "ServingPusher"
PUSH_RECORD = "tf_dualenc_push.json"


def models_config_text(model_names, serving_dir_path):
    entries = "\n".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{os.path.join(os.path.abspath(serving_dir_path), name)}"\n'
        f'    model_platform: "tensorflow"\n  }}' for name in model_names)
    return f"model_config_list {{\n{entries}\n}}\n"


def _already_pushed(model_dir, model_uri):
    for version in reversed(model_versions(model_dir)):
        record = os.path.join(model_dir, str(version), "assets.extra", PUSH_RECORD)
        if os.path.isfile(record):
            with open(record, encoding="utf-8") as f:
                if json.load(f).get("model_artifact_uri") == model_uri:
                    return version
    return None


def _recorded_search(index_dir):
    """The search recorded in an index folder's manifest (`record_search`), or None."""
    from tf_dualenc.indexing.retrieval_index import MANIFEST as INDEX_MANIFEST

    path = os.path.join(index_dir, INDEX_MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("search")


def _copy_into_place(source, final, edit=None):
    tmp = os.path.join(os.path.dirname(final), f".tmp-{os.path.basename(final)}-{uuid.uuid4().hex[:8]}")
    try:
        shutil.copytree(source, tmp)
        if edit is not None:
            edit(tmp)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def push(model_uri, export_dir, index_dir, serving_dir_path, model_name, reranker=None):
    """Pushes one model version (and its index, and a kept re-ranker); returns {"version", "model_dir", "index_dir",
    "new", "search"[, "reranker_dir"]}.

    reranker: None, or {"export": the cross-encoder's SavedModel, "model_name": its served name, "k": candidates
    re-ranked, "weight": the cross-encoder's share, ...: what the check on validation chose}.
    """
    from tf_dualenc.export.saved_model_export import MANIFEST_PATH
    from tf_dualenc.indexing.retrieval_index import MANIFEST as INDEX_MANIFEST

    check_model_name(model_name)
    model_root = os.path.join(serving_dir_path, model_name)
    index_root = os.path.join(serving_dir_path, "indexes", model_name)
    reranker_root = None
    if reranker is not None:
        check_model_name(reranker["model_name"])
        reranker_root = os.path.join(serving_dir_path, reranker["model_name"])
    existing = _already_pushed(model_root, model_uri)
    if existing is not None:
        search = _recorded_search(os.path.join(index_root, str(existing)))
        return dict({"version": existing, "model_dir": os.path.join(model_root, str(existing)),
                     "index_dir": os.path.join(index_root, str(existing)), "new": False, "search": search},
                    **({"reranker_dir": search["rerank"]["export"]} if (search or {}).get("rerank") else {}))
    roots = [model_root, index_root] + ([reranker_root] if reranker_root else [])
    for root in roots:
        os.makedirs(root, exist_ok=True)
    version = max((v for root in roots for v in model_versions(root)), default=0) + 1
    final_model, final_index = os.path.join(model_root, str(version)), os.path.join(index_root, str(version))
    final_reranker = os.path.join(reranker_root, str(version)) if reranker_root else None

    def relink_index(folder):
        # The index's query encoder is the pushed model, not the pipeline's artifact (which may be cleaned up).
        path = os.path.join(folder, INDEX_MANIFEST)
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        manifest["model"] = dict(manifest.get("model", {}), export=os.path.abspath(final_model), model_name=model_name, version=version)
        if reranker is not None:
            manifest["search"] = search
        write_json_atomic(path, manifest)

    def stamp_model(folder):
        path = os.path.join(folder, MANIFEST_PATH)
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        manifest.update(model_name=model_name, version=version)
        write_json_atomic(path, manifest)
        write_json_atomic(os.path.join(folder, "assets.extra", PUSH_RECORD),
                          {"model_artifact_uri": model_uri, "index": os.path.abspath(final_index), "search": search})

    search = _recorded_search(index_dir)
    if reranker is not None:
        # The cascade the index answers: its recorded first stage, then the served cross-encoder on the top k.
        search = dict(search or {"fusion": "dense"}, rerank={
            "model_name": reranker["model_name"], "version": version, "export": os.path.abspath(final_reranker),
            **{key: value for key, value in reranker.items() if key not in ("export", "model_name")}})
    pushed = []
    try:
        _copy_into_place(index_dir, final_index, relink_index)
        pushed.append(final_index)
        if reranker is not None:
            _copy_into_place(reranker["export"], final_reranker)
            pushed.append(final_reranker)
        _copy_into_place(export_dir, final_model, stamp_model)
    except BaseException:
        for folder in pushed:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    config_path = os.path.join(serving_dir_path, "models.config")
    names = [model_name] + ([reranker["model_name"]] if reranker is not None else [])
    if os.path.isfile(config_path):
        import re

        with open(config_path, encoding="utf-8") as f:
            listed = re.findall(r'name:\s*"([^"]+)"', f.read())
        names = listed + [name for name in names if name not in listed]
    write_text_atomic(config_path, models_config_text(names, serving_dir_path))
    result = {"version": version, "model_dir": final_model, "index_dir": final_index, "new": True, "search": search}
    if final_reranker:
        result["reranker_dir"] = final_reranker
    return result


def _kept_reranker(artifact):
    """What `push` needs of a RerankerTrainer output whose cross-encoder was kept; None when it was not."""
    if artifact.get_int_custom_property("kept") != 1:
        return None
    with open(os.path.join(artifact.uri, "reranker.json"), encoding="utf-8") as f:
        record = json.load(f)
    check = record.get("check", {})
    return {"export": serving_dir(artifact), "model_name": artifact.get_string_custom_property("served_name"),
            "k": int(record["rerank_k"]), "weight": float(record["weight"]), "chosen_on": "validation",
            "metric": check.get("metric"), "validation": {"search": check.get("retrieval"), "cascade": check.get("reranked")}}


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        model = artifact_utils.get_single_instance(input_dict["model"])
        blessing = artifact_utils.get_single_instance(input_dict["blessing"])
        index = artifact_utils.get_single_instance(input_dict["index"])
        pushed = artifact_utils.get_single_instance(output_dict["pushed_model"])
        if not is_blessed(blessing):
            record_unblessed(blessing, pushed, "pushed", 0)
            return
        rerankers = input_dict.get("reranker") or []
        reranker = _kept_reranker(rerankers[0]) if rerankers else None
        with reported_as(COMPONENT):
            result = push(model.uri, serving_dir(model), os.path.join(index.uri, INDEX_FOLDER), exec_properties["serving_dir"],
                          exec_properties["model_name"], reranker=reranker)
        pushed.set_int_custom_property("pushed", 1)
        pushed.set_string_custom_property("pushed_destination", result["model_dir"])
        pushed.set_int_custom_property("pushed_version", result["version"])
        pushed.set_string_custom_property("index_destination", result["index_dir"])
        pushed.set_int_custom_property("new_version", int(result["new"]))
        if result.get("search"):
            pushed.set_string_custom_property("search", json.dumps(result["search"]))
        if result.get("reranker_dir"):
            pushed.set_string_custom_property("reranker_destination", result["reranker_dir"])
        write_json_atomic(os.path.join(pushed.uri, "push.json"), result)


class ServingPusherSpec(ComponentSpec):
    PARAMETERS = {
        "serving_dir": ExecutionParameter(type=str),
        "model_name": ExecutionParameter(type=str),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "index": ChannelParameter(type=RetrievalIndexArtifact),
        "reranker": ChannelParameter(type=standard_artifacts.Model, optional=True),
    }
    OUTPUTS = {"pushed_model": ChannelParameter(type=standard_artifacts.PushedModel)}


class ServingPusher(base_component.BaseComponent):
    """Pushes a blessed model and its index to `serving_dir`, and the RerankerTrainer's cross-encoder when it was kept
    (see the module docstring)."""

    SPEC_CLASS = ServingPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model, blessing, index, reranker=None, *, serving_dir, model_name="dual_encoder"):
        super().__init__(spec=ServingPusherSpec(
            model=model, blessing=blessing, index=index, reranker=reranker, serving_dir=serving_dir, model_name=model_name,
            pushed_model=Channel(type=standard_artifacts.PushedModel),
        ))
