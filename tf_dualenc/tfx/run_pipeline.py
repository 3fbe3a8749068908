"""What `tf-dualenc pipeline run|compile` does: validate the config, prepare the inputs, run (or compile) with the
chosen runner, then report where every output is and answer one query from the pushed model."""

import contextlib
import json
import os

from tf_dualenc.tfx.components.component_error import ComponentError
from tf_dualenc.tfx.pipeline_config import PipelineConfig
from tf_dualenc.data.fingerprint import fingerprint_inputs

# RerankerTrainer runs only with a `reranker` section: read outputs with `components_run`.
COMPONENT_ORDER = ("RetrievalExampleGen", "Trainer", "RetrievalEvaluator", "RetrievalIndexer", "RerankerTrainer", "ServingPusher")


def components_run(outputs):
    """The names of COMPONENT_ORDER that this run's `outputs` hold, in order."""
    return [name for name in COMPONENT_ORDER if name in outputs]


class PipelineError(RuntimeError):
    """The pipeline did not end with a pushed model; the message names the component and the reason."""


def _beam_args(config):
    args = [f"--direct_num_workers={config.direct_num_workers}"]
    if config.direct_num_workers > 1:
        args.append("--direct_running_mode=multi_processing")
    return args + list(config.beam_pipeline_args)


def prepare(config, *, print_fn=print):
    """Resolves and validates `config` (downloading a named BEIR data set if needed); returns (config, fingerprint)."""
    config.validate(check_paths=False)
    config = config.resolved(print_fn=print_fn).validate()
    return config, fingerprint_inputs(config.data, config.eval_data, config.validation_data)


def run_pipeline(config, *, print_fn=print):
    """Runs the whole pipeline with `config.runner` ("local" or "beam"); returns `pipeline_outputs(config)`.

    Raises:
        PipelineError: a component failed, or the model was not blessed (nothing pushed); names the component.
        PipelineBusy: another process is running a pipeline on the same pipeline root (nothing was started).
    """
    if config.runner == "kubeflow_v2":
        raise ValueError("runner='kubeflow_v2' is compiled, not run here: use `tf-dualenc pipeline compile`.")
    config, fingerprint = prepare(config, print_fn=print_fn)
    if config.runner == "beam":
        from tf_dualenc.tfx import beam_runner as runner
    else:
        from tf_dualenc.tfx import local_runner as runner
    os.makedirs(config.pipeline_root, exist_ok=True)
    with pipeline_root_lock(config.pipeline_root, print_fn=print_fn):
        return _run_locked(config, runner, fingerprint, print_fn)


class PipelineBusy(PipelineError):
    """Another process is running a pipeline on the same pipeline root."""


@contextlib.contextmanager
def pipeline_root_lock(root, *, print_fn=print):
    """Holds `<root>/.run.lock` for one run: two runs on one root would both train and both push (versions 1 and 2), and
    each would read the other's outputs as its own. A second run is refused at once, naming the holder's pid and host.

    The lock is an flock on the file, which the kernel releases with the process (a kill -9 included); the file also
    records the owner ({"pid", "host", "start"}), which is what another host sees on a shared file system where flock
    may not reach it. A record left by a run that ended without releasing it (a killed process, a lost machine) is
    taken over when its pid is gone from this host; one of another host is refused, since this host cannot tell
    whether that run still runs.
    """
    import fcntl

    from tf_dualenc.process_owner import owner_is_dead, owner_record

    path = os.path.join(root, ".run.lock")
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineBusy(f"{root} is in use by a running pipeline ({_describe_owner(_read_owner(handle))}); wait for "
                               "it to finish, or use another pipeline_root.") from None
        owner = _read_owner(handle)
        me = owner_record()
        if owner and (owner.get("pid"), owner.get("host")) != (me["pid"], me["host"]):
            # A record naming no pid cannot name a live run (its writer was killed mid-write, or wrote the older "pid N"
            # line, released with the flock that was just acquired).
            if "pid" in owner and not owner_is_dead(owner["pid"], owner.get("host"), owner.get("start")):
                fcntl.flock(handle, fcntl.LOCK_UN)
                raise PipelineBusy(f"{root} is in use by a running pipeline ({_describe_owner(owner)}, as {path} records); "
                                   f"wait for it to finish, or, if that run has ended, delete {path}.")
            print_fn(f"{path}: taking over the lock of a run that ended without releasing it ({_describe_owner(owner)})")
        # Rewritten in place, not replaced by a renamed file: the flock belongs to this file's inode.
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(me) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()  # a finished run leaves no owner behind
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_owner(handle):
    """The owner recorded in an open lock file: a dict, {} when there is none, {"record": text} for a line that is
    not an owner record (a writer killed mid-write, or a lock file of an older version: "pid N")."""
    handle.seek(0)
    text = handle.read().strip()
    if not text:
        return {}
    try:
        owner = json.loads(text)
    except json.JSONDecodeError:
        owner = None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else {"record": text}


def _describe_owner(owner):
    if "pid" in owner:
        return f"pid {owner['pid']} on host {owner.get('host', '?')}"
    return owner.get("record") or "another process"


def _run_locked(config, runner, fingerprint, print_fn):
    print_fn(f"pipeline {config.pipeline_name!r}: runner {config.runner}, root {config.pipeline_root}, data {config.data}")
    try:
        runner.run(config, input_fingerprint=fingerprint, beam_pipeline_args=_beam_args(config))
    except ComponentError as error:
        raise PipelineError(str(error)) from error
    except Exception as error:  # a runner wraps what a component raised; find our own error in the chain
        cause = error
        while cause is not None and not isinstance(cause, ComponentError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise PipelineError(str(cause)) from error
        raise
    outputs = pipeline_outputs(config)
    pusher = outputs.get("ServingPusher", {}).get("pushed_model", {})
    if not pusher.get("pushed"):
        reason = outputs.get("RetrievalEvaluator", {}).get("blessing", {}).get("reason", "the pusher did not push")
        raise PipelineError(f"RetrievalEvaluator did not bless the model: {reason}. Nothing was pushed; "
                            f"{config.serving_dir} is unchanged.")
    return outputs


def compile_pipeline(config, output_file, *, print_fn=print):
    """Validates `config` (without requiring local data) and writes the Kubeflow V2 / Vertex AI pipeline JSON."""
    from tf_dualenc.tfx.kubeflow_v2_runner import compile_pipeline as compile_v2

    config = PipelineConfig(**dict(config.to_dict(), runner="kubeflow_v2"))
    if config.dataset and not config.data:
        raise ValueError("compile needs `data` (and `eval_data`) on storage the pipeline's workers can read (e.g. gs://...); "
                         "`dataset` names are resolved on the local machine only.")
    config = config.resolved(print_fn=print_fn).validate(check_paths=False)
    path = compile_v2(config, output_file, beam_pipeline_args=list(config.beam_pipeline_args))
    print_fn(f"pipeline JSON: {path}")
    return path


def pipeline_outputs(config):
    """The latest run's outputs from the metadata store: {component: {output key: {"uri", **custom properties}}},
    plus "state" per component (COMPLETE / CACHED / FAILED ...)."""
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = mlmd.MetadataStore(connection)
    # LocalDagRunner records "pipeline_run" and "node" contexts; BeamDagRunner "run" and "component_run".
    runs = [c for kind in ("pipeline_run", "run") for c in store.get_contexts_by_type(kind)]
    pipeline_contexts = [c for c in store.get_contexts_by_type("pipeline") if c.name == config.pipeline_name]
    if not pipeline_contexts:
        return {}
    pipeline_executions = {e.id for e in store.get_executions_by_context(pipeline_contexts[0].id)}
    runs = [c for c in runs if {e.id for e in store.get_executions_by_context(c.id)} & pipeline_executions]
    if not runs:
        return {}
    latest = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    executions = store.get_executions_by_context(latest.id)
    node_names = {}
    for context in (c for kind in ("node", "component_run") for c in store.get_contexts_by_type(kind)):
        for execution in store.get_executions_by_context(context.id):
            node_names[execution.id] = context.name.rsplit(".", 1)[-1]
    outputs = {}
    states = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
    for execution in executions:
        node = node_names.get(execution.id, str(execution.id))
        entry = outputs.setdefault(node, {})
        entry["state"] = states.get(execution.last_known_state, "UNKNOWN")
        events = [e for e in store.get_events_by_execution_ids([execution.id]) if e.type == metadata_store_pb2.Event.OUTPUT]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        for event in events:
            key = event.path.steps[0].key if event.path.steps else "output"
            artifact = artifacts[event.artifact_id]
            properties = {name: _value(value) for name, value in artifact.custom_properties.items()}
            entry[key] = dict(properties, uri=artifact.uri, id=artifact.id)
    return outputs


def _value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def answer_query(outputs, query, k=5):
    """Searches the pushed index with the pushed model's query encoder, as the blessed search ranks (the fusion the
    evaluator chose on validation, recorded in the index, then the pushed re-ranker when the run kept one); returns the
    hits of `query`."""
    from tf_dualenc.indexing import RetrievalIndex
    from tf_dualenc.indexing.query_encoders import local_query_encoder
    from tf_dualenc.loading import load_reranker
    from tf_dualenc.reranking import recorded_reranker, rerank_recorded_search

    pushed = outputs["ServingPusher"]["pushed_model"]
    index = RetrievalIndex.load(pushed["index_destination"])
    encoder = local_query_encoder(pushed["pushed_destination"])
    rerank = recorded_reranker(index)
    if rerank is not None:
        return rerank_recorded_search(index, [query], encoder, load_reranker(rerank["export"]), k=k)[0]
    return index.search_recorded([query], encoder, k=k)[0]
