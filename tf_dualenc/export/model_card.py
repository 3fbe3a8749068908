"""The model card of an export, `assets.extra/README.md`: what the model is, how it was trained and scored, its
signatures, and how to query it.

TF Serving ignores `assets.extra/`, so the card travels with every pushed or copied version without affecting
serving. `_save_versioned` writes it for every kind of export; the facts come from the export's manifest, the
SavedModel's own signature defs (so the card cannot drift from what is served), and the files the trainer and
`evaluate` leave next to the model (`train_config.json`, `summary.json`, `validation.json`, `report.json`).
"""

import json
import os

MODEL_CARD_PATH = os.path.join("assets.extra", "README.md")
# What `tf-dualenc train`, the validation tracker, `evaluate` and `demo` write into the model's folder.
RUN_FILES = ("train_config.json", "summary.json", "validation.json", "report.json")
# The training settings a reader needs first; the whole config follows them.
_KEY_SETTINGS = ("model", "size", "preset", "architecture", "embedding_dim", "loss", "temperature", "batch_size", "steps",
                 "learning_rate", "query_length", "document_length", "data")

_KIND_TITLES = {
    "encoder": "dual encoder: query and document text → embeddings",
    "retrieval": "retrieval model: query text → top-k document ids and scores",
    "cross_encoder": "cross-encoder re-ranker: (query, document) → relevance score",
}
_EXAMPLE_INPUTS = {"text": ["what is the capital of France"], "query": ["what is the capital of France"],
                   "document": ["Paris is the capital of France."]}


def source_folder(source):
    """The folder whose run files describe a model loaded from `source` (a .keras file or a preset folder);
    None for a name such as "all-MiniLM-L6-v2"."""
    if not source:
        return None
    source = os.fspath(source)
    if os.path.isdir(source):
        return source
    return os.path.dirname(os.path.abspath(source)) if os.path.isfile(source) else None


def read_run_files(source):
    """{file name: parsed JSON} of the `RUN_FILES` next to the model (unreadable files are left out)."""
    folder = source_folder(source)
    found = {}
    for name in RUN_FILES if folder else ():
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    found[name] = json.load(f)
            except (OSError, ValueError):
                continue
    return found


def signature_specs(saved_model_dir):
    """{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}} from saved_model.pb; -1 is a free dimension."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())

    def spec(info):
        shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
        return types_pb2.DataType.Name(info.dtype).removeprefix("DT_").lower(), shape

    return {
        key: {"inputs": {n: spec(i) for n, i in sorted(sig.inputs.items())}, "outputs": {n: spec(i) for n, i in sorted(sig.outputs.items())}}
        for meta_graph in saved_model.meta_graphs for key, sig in sorted(meta_graph.signature_def.items())
        if not key.startswith("__")
    }


def _base_model(manifest, runs):
    config = runs.get("train_config.json") or {}
    if config.get("preset"):
        return f"{config['preset']} ({config.get('model', '?')} towers), fine-tuned"
    if config.get("model") == "t5":
        return f"T5 {config.get('size', '?')} towers, trained from scratch over {config.get('vocabulary') or 'its vocabulary'}"
    if config.get("model"):
        return f"{config['model']} towers"
    source = manifest.get("source")
    if source and not os.path.exists(source):
        return f"{source} (preset)"
    return ", ".join(manifest.get("towers") or []) or "not recorded"


def _budget_lines(manifest):
    if manifest.get("kind") == "cross_encoder":
        return [f"- token budget: {manifest['sequence_length']} tokens per (query, document) pair; longer pairs are cut"]
    return [f"- token budgets: queries {manifest['query_sequence_length']} tokens, documents "
            f"{manifest['document_sequence_length']} tokens; longer texts are cut"]


def _metric_lines(runs):
    lines = []
    validation = runs.get("validation.json") or (runs.get("summary.json") or {}).get("validation")
    if validation and validation.get("best_value") is not None:
        lines.append(f"- validation ({validation.get('split', '?')}, {validation.get('queries', '?')} queries): best "
                     f"{validation.get('metric')} {validation['best_value']:.4f} at step {validation.get('best_step')}")
    report = runs.get("report.json") or {}
    metrics = report.get("metrics") or report.get("metrics_after")
    if metrics:
        where = report.get("dataset", {}).get("split")
        lines.append(f"- report.json{f' ({where})' if where else ''}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                                                                                if isinstance(v, (int, float))))
    summary = runs.get("summary.json") or {}
    if summary.get("last_loss") is not None:
        lines.append(f"- training: {summary.get('steps_done', '?')} steps, last loss {summary['last_loss']}")
    return lines or ["- none found next to the model (validation.json, report.json, summary.json)"]


def _shape(shape):
    return "unknown" if shape is None else "[" + ", ".join("B" if i == 0 and d == -1 else ("?" if d == -1 else str(d))
                                                           for i, d in enumerate(shape)) + "]"


def _query_lines(manifest, signatures):
    name, kind = manifest["model_name"], manifest.get("kind")
    signature = {"retrieval": "search", "encoder": "encode_query", "cross_encoder": "score"}.get(kind, "serving_default")
    inputs = {n: _EXAMPLE_INPUTS.get(n, ["..."]) for n in signatures.get(signature, {}).get("inputs", {})}
    body = json.dumps({"signature_name": signature, "inputs": inputs})
    output = next(iter(signatures.get(signature, {}).get("outputs", {})), "")
    lines = ["Served by TF Serving (or `tf-dualenc serve`) under the model name of its folder, here "
             f"`{name}`: gRPC on port 8500, REST on 8501.", "", "```bash",
             f"curl -s http://localhost:8501/v1/models/{name}:predict -d '{body}'"]
    if kind == "retrieval":
        lines.append(f"tf-dualenc search --server localhost:8500 --model-name {name} --query \"what is the capital of France\"")
    lines += ["```", "", "```python", "from tf_dualenc.serving.client import ServingClient", "",
              f'client = ServingClient("localhost:8500", "{name}")  # or "http://localhost:8501" for REST',
              f"outputs = client.predict({inputs!r}, signature_name={signature!r})",
              f"outputs[{output!r}]" if kind != "retrieval" else "outputs['document_ids'], outputs['scores']", "```"]
    return lines


def model_card(manifest, signatures, runs=None):
    """The card's Markdown from an export's manifest, its `signature_specs` and the model's `read_run_files`."""
    runs = runs or {}
    kind = manifest.get("kind")
    lines = [f"# {manifest['model_name']}, version {manifest['version']}", "",
             f"A tf_dualenc {_KIND_TITLES.get(kind, kind)}; exported {manifest.get('exported_at', '?')} with TensorFlow "
             f"{manifest.get('tensorflow', '?')}.", "", "## Model", "",
             f"- base model: {_base_model(manifest, runs)}"]
    if manifest.get("source"):
        lines.append(f"- exported from: `{manifest['source']}`")
    if "architecture" in manifest:
        lines.append(f"- architecture: {manifest['architecture']}, embedding size {manifest['embedding_dim']}")
    if manifest.get("precision") == "bfloat16":
        lines.append("- computes in bfloat16 (`--precision bfloat16`: float32 variables; embeddings float32, L2-normalised in float32)")
    elif "precision" in manifest:
        lines.append(f"- computes in {manifest['precision']}")
    if kind == "cross_encoder":
        lines.append(f"- pair format: {manifest.get('pair_format')}")
    lines += _budget_lines(manifest)
    if kind == "retrieval":
        lines.append(f"- index: {manifest['index']} over {manifest['num_documents']} documents, top {manifest['k']} per query"
                     + (f", from `{manifest['index_folder']}`" if manifest.get("index_folder") else "")
                     + f"; needs {manifest.get('serving_requirements', 'stock tensorflow/serving')}")
    lines += ["", "## Training", ""]
    config = runs.get("train_config.json")
    if config:
        lines += [f"- {key}: {config[key]}" for key in _KEY_SETTINGS if config.get(key) is not None]
        lines += ["", "<details><summary>full train_config.json</summary>", "", "```json", json.dumps(config, indent=2, sort_keys=True),
                  "```", "", "</details>"]
    else:
        lines.append("- no train_config.json next to the model")
    lines += ["", "## Metrics of the run", ""] + _metric_lines(runs)
    lines += ["", "## Signatures", "", "| signature | inputs | outputs |", "|---|---|---|"]
    for key, sig in signatures.items():
        cells = [", ".join(f"`{n}` {dtype} {_shape(shape)}" for n, (dtype, shape) in sig[side].items()) for side in ("inputs", "outputs")]
        lines.append(f"| `{key}` | {cells[0]} | {cells[1]} |")
    lines += ["", "B is the batch: any number of texts per request.", "", "## Query it", ""] + _query_lines(manifest, signatures)
    return "\n".join(lines) + "\n"


def write_model_card(saved_model_dir, manifest, source=None):
    """Writes `assets.extra/README.md` into an export folder; returns its path."""
    path = os.path.join(saved_model_dir, MODEL_CARD_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(model_card(manifest, signature_specs(saved_model_dir), read_run_files(source)))
    return path
