"""SavedModels for TF Serving: raw strings in, tokenisation in the graph, `<base>/<model_name>/<version>/` layout.

Two kinds of export:

- `export_encoder`: signatures `serving_default` and `encode_query` (text [B] → embedding [B, D]) and
  `encode_document` (text [B] → embedding [B, D]).
- `export_retrieval_model`: the query encoder in front of a document index, signatures `serving_default` /
  `search` (text [B] → document_ids [B, k], scores [B, k]) and `search_embedding` (embedding [B, D] → the same).
  Index backends: tfrs `BruteForce` (exact; stock TF Serving runs it) and tfrs `ScaNN` (approximate; needs a
  model server built with ScaNN's ops — see docs/serving.md).

Each export is written under a temporary name inside `<base>/<model_name>/` (TF Serving ignores folders whose name
is not a number), audited (`op_audit`), and renamed to its version only when complete: a crash never leaves a
version folder that TF Serving would try to load. The variables are written once (plain `tf.saved_model.save`
of a `tf.Module`; Keras 3.15's export paths were seen writing each variable twice). A manifest with the model
config, the embedding size and the op audit goes to `assets.extra/tf_dualenc_export.json`, and a model card
(`model_card.py`) to `assets.extra/README.md`; TF Serving ignores both.
"""

import dataclasses
import json
import os
import shutil
import time
import uuid

from tf_dualenc.export.layout import ExportError, check_model_name, next_version
from tf_dualenc.export.model_card import write_model_card
from tf_dualenc.export.op_audit import audit_saved_model
from tf_dualenc.index_config import INDEX_TYPES, MIN_SCANN_DOCUMENTS, scann_build_config

MANIFEST_PATH = os.path.join("assets.extra", "tf_dualenc_export.json")

@dataclasses.dataclass
class ExportResult:
    path: str
    version: int
    manifest: dict

    @property
    def op_audit(self):
        return self.manifest["op_audit"]


def read_manifest(saved_model_dir):
    path = os.path.join(saved_model_dir, MANIFEST_PATH)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{saved_model_dir} has no {MANIFEST_PATH}: not a tf_dualenc export.")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def export_precision(manifest):
    """What an export computes in (`export --precision`); exports written before the manifest recorded it: float32."""
    return manifest.get("precision", "float32")


def _save_versioned(module, signatures, export_base, model_name, version, manifest, *, stock_compatible, options=None, source=None):
    import tensorflow as tf

    check_model_name(model_name)
    model_dir = os.path.join(export_base, model_name)
    version = next_version(model_dir) if version is None else version
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ExportError(f"version={version!r}: TF Serving versions are positive integers.")
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise ExportError(f"{final} already exists; a served version is immutable, export a new version instead.")
    os.makedirs(model_dir, exist_ok=True)
    tmp = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    try:
        tf.saved_model.save(module, tmp, signatures=signatures, options=options)
        audit = audit_saved_model(tmp)
        manifest = dict(manifest, model_name=model_name, version=version, exported_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        signatures=sorted(signatures), op_audit=audit.to_dict(), tensorflow=tf.__version__)
        if source is not None:
            manifest["source"] = os.fspath(source)
        if stock_compatible and not audit.stock_serving_compatible:
            raise ExportError(
                f"Export of {model_name!r} needs ops stock TF Serving does not register: {audit.not_in_stock_serving}. "
                "Serve it with a model server built with those ops (docs/serving.md), or export with stock_compatible=False."
            )
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, MANIFEST_PATH), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        write_model_card(tmp, manifest, source)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(final, version, manifest)


def _model_manifest(model):
    from tf_dualenc.precision import model_precision

    return {
        "architecture": model.architecture,
        "precision": model_precision(model),
        "towers": sorted({type(model.query_tower).__name__, type(model.document_tower).__name__}),
        "embedding_dim": int(model.embedding_dim),
        "query_sequence_length": int(model.query_preprocessor.sequence_length),
        "document_sequence_length": int(model.document_preprocessor.sequence_length),
    }


def _string_spec():
    import tensorflow as tf

    return tf.TensorSpec([None], tf.string, name="text")


def export_encoder(model, export_base, model_name="dual_encoder", version=None, *, stock_compatible=True, source=None):
    """Exports the query and document encoders of a `DualEncoder` as one versioned SavedModel.

    Args:
        model: a `tf_dualenc.models.DualEncoder`.
        export_base: the TF Serving model base folder; the export goes to `<export_base>/<model_name>/<version>/`.
        model_name: the TF Serving model name.
        version: a positive integer; default: one more than the largest existing version.
        stock_compatible: fail (and write nothing) when the graph needs ops stock TF Serving does not register.
        source: the .keras file, preset folder or preset name the model came from; its folder's training config and
            metrics go into the model card.

    Returns:
        `ExportResult(path, version, manifest)`; the manifest holds the op audit.

    Example:
    ```python
    result = export_encoder(model, "/models", "scifact")   # /models/scifact/1/
    loaded = tf.saved_model.load(result.path)              # after `import tensorflow_text`
    loaded.signatures["encode_document"](text=tf.constant(["Paris is in France."]))["embedding"]
    ```
    """
    import tensorflow as tf

    module = tf.Module()
    module.model = model
    module.encode_query = tf.function(lambda text: {"embedding": model.embed_queries(text)}, input_signature=[_string_spec()])
    module.encode_document = tf.function(lambda text: {"embedding": model.embed_documents(text)}, input_signature=[_string_spec()])
    # Not signatures (TF Serving does not see them): each side's padding mask, so that whoever encodes with the export
    # can count the texts its token budgets cut (`ExportedDualEncoder.<side>_preprocessor`, `token_budget`).
    module.query_padding_mask = tf.function(lambda text: model.query_preprocessor(text)["padding_mask"], input_signature=[_string_spec()])
    module.document_padding_mask = tf.function(lambda text: model.document_preprocessor(text)["padding_mask"],
                                               input_signature=[_string_spec()])
    signatures = {
        "serving_default": module.encode_query.get_concrete_function(),
        "encode_query": module.encode_query.get_concrete_function(),
        "encode_document": module.encode_document.get_concrete_function(),
    }
    manifest = dict(kind="encoder", **_model_manifest(model))
    return _save_versioned(module, signatures, export_base, model_name, version, manifest, stock_compatible=stock_compatible, source=source)


def export_cross_encoder(model, export_base, model_name="reranker", version=None, *, stock_compatible=True, source=None):
    """Exports a `CrossEncoder` as a versioned SavedModel: raw query and document strings → relevance scores.

    Signatures: `serving_default` and `score`: `query` string [B], `document` string [B] → `score` float32 [B]
    (logits; sigmoid gives a probability). Layout, op audit, manifest and model card as `export_encoder`.

    Example:
    ```python
    result = export_cross_encoder(reranker, "/models", "scifact_reranker")
    load_export(result.path).signatures["score"](query=tf.constant(["q"]), document=tf.constant(["d"]))["score"]
    ```
    """
    import tensorflow as tf

    module = tf.Module()
    module.model = model
    module.score = tf.function(lambda query, document: {"score": model.score(query, document)},
                               input_signature=[tf.TensorSpec([None], tf.string, name="query"), tf.TensorSpec([None], tf.string, name="document")])
    signatures = {"serving_default": module.score.get_concrete_function(), "score": module.score.get_concrete_function()}
    manifest = {"kind": "cross_encoder", "pair_format": model.pair_format, "towers": [type(model.tower).__name__],
                "sequence_length": int(model.preprocessor.sequence_length)}
    return _save_versioned(module, signatures, export_base, model_name, version, manifest, stock_compatible=stock_compatible, source=source)


def scann_defaults(num_documents, k):
    """tfrs ScaNN settings for a corpus size: those of the on-disk index (`scann_build_config`)."""
    config = scann_build_config(num_documents, k)
    return {
        "num_leaves": config["num_leaves"],
        "num_leaves_to_search": config["num_leaves_to_search"],
        "dimensions_per_block": config["dimensions_per_block"],
        "num_reordering_candidates": min(num_documents, config["reordering_num_neighbors"]),
    }


def export_retrieval_model(
    model,
    document_ids,
    document_embeddings,
    export_base,
    model_name="dual_encoder_retrieval",
    version=None,
    *,
    index="brute_force",
    k=10,
    scann_options=None,
    stock_compatible=None,
    source=None,
    index_folder=None,
):
    """Exports query text → top-k document ids and scores, the corpus embedded in the graph.

    Args:
        model: the `DualEncoder` whose query tower encodes queries.
        document_ids: N document ids (strings).
        document_embeddings: [N, D] document embeddings from the same model.
        index: "brute_force" (tfrs BruteForce, exact, stock TF Serving) or "scann" (tfrs ScaNN; needs ScaNN's ops in
            the model server).
        k: results per query.
        scann_options: tfrs ScaNN arguments (num_leaves, num_leaves_to_search, dimensions_per_block,
            num_reordering_candidates); defaults from `scann_defaults`.
        stock_compatible: fail when stock TF Serving cannot run the export. Default: True for "brute_force",
            False for "scann" (whose export records that it needs a ScaNN-enabled model server).
        source: as `export_encoder` (the model card's training config and metrics).
        index_folder: the index folder the documents came from (`tf-dualenc export --index`), recorded in the
            manifest and the model card.
    """
    document_ids, embeddings, settings = _checked_retrieval_request(model, model_name, document_ids, document_embeddings, index=index, k=k,
                                                                   scann_options=scann_options)
    stock_compatible = (index == "brute_force") if stock_compatible is None else stock_compatible
    layer, options = _top_k_layer(index, document_ids, embeddings, k, settings)
    module, signatures = _retrieval_signatures(model, layer, k)
    manifest = dict(kind="retrieval", index=index, k=k, num_documents=len(document_ids), index_settings=settings, **_model_manifest(model))
    if index_folder is not None:
        manifest["index_folder"] = os.path.abspath(index_folder)
    manifest["serving_requirements"] = (
        "stock tensorflow/serving" if index == "brute_force" else "a TF Serving build that links ScaNN's TF ops (Scann> namespace); see docs/serving.md"
    )
    return _save_versioned(module, signatures, export_base, model_name, version, manifest, stock_compatible=stock_compatible, options=options,
                           source=source)


def _checked_retrieval_request(model, model_name, document_ids, document_embeddings, *, index, k, scann_options):
    """Refuses what `export_retrieval_model` cannot export, before anything is built; returns the ids as strings,
    the embeddings as float32 and the index's settings (the ScaNN ones, {} for brute force)."""
    import numpy as np

    check_model_name(model_name)
    if index not in INDEX_TYPES:
        raise ExportError(f"index={index!r}; valid: {list(INDEX_TYPES)}.")
    document_ids = [str(d) for d in document_ids]
    embeddings = np.asarray(document_embeddings, np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(document_ids) or embeddings.shape[1] != model.embedding_dim:
        raise ExportError(
            f"document_embeddings must be [{len(document_ids)}, {model.embedding_dim}] (one row per id, the model's size); got {embeddings.shape}."
        )
    if not document_ids:
        raise ExportError("No documents to index.")
    if not isinstance(k, int) or not 1 <= k <= len(document_ids):
        raise ExportError(f"k={k!r} must be an integer in [1, {len(document_ids)}] (the number of documents).")
    if index != "scann":
        return document_ids, embeddings, {}
    if len(document_ids) < MIN_SCANN_DOCUMENTS:
        raise ExportError(
            f"index='scann' needs at least {MIN_SCANN_DOCUMENTS} documents to train its quantiser; got {len(document_ids)}. "
            "Use index='brute_force' (exact) for so few."
        )
    settings = dict(scann_defaults(len(document_ids), k), **(scann_options or {}))
    unknown = set(settings) - set(scann_defaults(1, 1))
    if unknown:
        raise ExportError(f"Unknown scann_options {sorted(unknown)}; valid: {sorted(scann_defaults(1, 1))}.")
    return document_ids, embeddings, settings


def _top_k_layer(index, document_ids, embeddings, k, settings):
    """The tfrs top-k layer holding the documents, and the SaveOptions its ops need (None for brute force)."""
    import tensorflow as tf

    from tf_dualenc.extras import require

    tfrs = require("tensorflow_recommenders", feature="the retrieval export (export --index)")
    options = None
    if index == "brute_force":
        layer = tfrs.layers.factorized_top_k.BruteForce(k=k)
    else:
        layer = tfrs.layers.factorized_top_k.ScaNN(k=k, distance_measure="dot_product", **settings)
        # ScaNN's ops live in the "Scann" namespace, which SavedModel refuses unless allowed explicitly.
        options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
    layer.index(tf.constant(embeddings), identifiers=tf.constant(document_ids))
    return layer, options


def _retrieval_signatures(model, layer, k):
    """The module to save (query tower and index) and its signatures: search by text and by embedding."""
    import tensorflow as tf

    module = tf.Module()
    module.model = model
    module.index = layer

    def search_embedding(embedding):
        scores, ids = layer(embedding, k=k)
        return {"document_ids": ids, "scores": scores}

    module.search = tf.function(lambda text: search_embedding(model.embed_queries(text)), input_signature=[_string_spec()])
    module.search_embedding = tf.function(search_embedding, input_signature=[tf.TensorSpec([None, model.embedding_dim], tf.float32, name="embedding")])
    signatures = {
        "serving_default": module.search.get_concrete_function(),
        "search": module.search.get_concrete_function(),
        "search_embedding": module.search_embedding.get_concrete_function(),
    }
    return module, signatures


def load_export(saved_model_dir):
    """Loads an export in any process: registers the custom ops its graph needs first, then `tf.saved_model.load`."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (SentencePiece / WordPiece ops of the in-graph tokenisers)

    manifest = read_manifest(saved_model_dir)
    if manifest.get("index") == "scann":
        from scann.scann_ops.py import scann_ops  # noqa: F401  (registers the Scann> ops)
    return tf.saved_model.load(saved_model_dir)
