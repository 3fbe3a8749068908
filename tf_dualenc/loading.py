"""Loading models: the one place that turns a path or a name into a model, for the command line, the pipeline,
the benchmarks and Python users alike.

Reading a `.keras` file itself (registering the classes and the loss it names) is `tf_dualenc.models.model_file`'s,
in `models` so that `from_preset` reads preset folders through it too; importing this module stays cheap (no
TensorFlow until a model is loaded).
"""

import os


def load_model(path):
    """Loads a tf_dualenc `.keras` file (a `DualEncoder` or `CrossEncoder`, compiled or not), or a preset folder
    written by `save_to_preset` (which holds one).

    Example:
    ```python
    import tf_dualenc
    model = tf_dualenc.load_model("runs/train/model.keras")
    vectors = model.encode_queries(["what is samtone?"])
    ```
    """
    from tf_dualenc.models.model_file import load_model_file

    return load_model_file(path)


def load_cross_encoder(path):
    """A `CrossEncoder` from a `.keras` file; any other model is an error naming the file."""
    from tf_dualenc.models.cross_encoder import CrossEncoder

    model = load_model(path)
    if not isinstance(model, CrossEncoder):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a CrossEncoder (train one with `tf-dualenc train-reranker`).")
    return model


def load_reranker(spec):
    """A cross-encoder's `score_pairs`: from an export (`export_cross_encoder`; version or model folder) or a .keras file."""
    if spec.endswith(".keras"):
        return load_cross_encoder(spec).score_pairs
    from tf_dualenc.export import ExportedCrossEncoder, resolve_export

    return ExportedCrossEncoder(resolve_export(spec)).score_pairs


def load_retrieval_model(spec, query_length=None, document_length=None, precision="float32"):
    """A dual encoder from a `.keras` file, "all-MiniLM-L6-v2", or a local Hugging Face BERT-family folder (zero-shot
    SDE); `query_length` / `document_length` override its token budgets, and `precision` ("float32" or "bfloat16")
    is what it computes in (`tf_dualenc.precision.set_precision`: variables float32, embeddings float32)."""
    from tf_dualenc.precision import check_precision, set_precision

    check_precision(precision)
    if spec.endswith(".keras"):
        from tf_dualenc.models.dual_encoder import DualEncoder

        model = load_model(spec)
        if not isinstance(model, DualEncoder):
            raise ValueError(f"{spec} holds a {type(model).__name__}, not a DualEncoder.")
        if query_length:
            model.query_preprocessor.sequence_length = query_length
        if document_length:
            model.document_preprocessor.sequence_length = document_length
        return set_precision(model, precision)
    if spec == "all-MiniLM-L6-v2" or os.path.isfile(os.path.join(spec, "config.json")):
        from tf_dualenc.models.builders import build_bert_dual_encoder

        model = build_bert_dual_encoder(
            spec, architecture="sde", query_sequence_length=query_length or 256, document_sequence_length=document_length or 256
        )
        return set_precision(model, precision)
    raise ValueError(
        f"--model {spec!r}: expected a .keras file, 'bm25', 'all-MiniLM-L6-v2', or a Hugging Face folder with config.json."
    )
