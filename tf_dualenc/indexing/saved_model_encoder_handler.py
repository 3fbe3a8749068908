"""A Beam `ModelHandler` that embeds text with one signature of a tf_dualenc SavedModel export.

Beam's stock TensorFlow handler loads models through `tf.keras`, which rejects these SavedModels (they are plain
`tf.Module` exports with raw-string signatures); this handler uses `tf.saved_model.load` after registering the
tokeniser ops (`tf_dualenc.export.load_export`). Beam loads the model once per worker process and shares it
between the worker's threads.
"""

from apache_beam.ml.inference.base import ModelHandler, PredictionResult


class _LoadedSignature:
    # Keeps the loaded SavedModel alive: a signature function alone does not own its variables.
    def __init__(self, saved_model_dir, signature):
        from tf_dualenc.export import load_export

        self.loaded = load_export(saved_model_dir)
        if signature not in self.loaded.signatures:
            raise ValueError(f"{saved_model_dir} has no signature {signature!r}; it has {sorted(self.loaded.signatures)}.")
        self.function = self.loaded.signatures[signature]

    def __call__(self, texts):
        import tensorflow as tf

        return self.function(text=tf.constant(texts, tf.string))["embedding"].numpy()


class SavedModelEncoderHandler(ModelHandler):
    """text → float32 embedding [D], batched, with the `encode_document` (or any text→embedding) signature.

    Args:
        saved_model_dir: a version folder written by `tf_dualenc.export.export_encoder`.
        signature: "encode_document" (default), "encode_query" or "serving_default".
        min_batch_size, max_batch_size: bounds for Beam's `BatchElements`.

    Example:
    ```python
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    pairs | RunInference(KeyedModelHandler(SavedModelEncoderHandler("/models/scifact/1")))
    ```
    """

    def __init__(self, saved_model_dir, signature="encode_document", min_batch_size=8, max_batch_size=64):
        if min_batch_size < 1 or max_batch_size < min_batch_size:
            raise ValueError(f"Need 1 <= min_batch_size <= max_batch_size; got {min_batch_size}, {max_batch_size}.")
        self._saved_model_dir = saved_model_dir
        self._signature = signature
        self._batch_kwargs = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
        super().__init__()

    def load_model(self):
        return _LoadedSignature(self._saved_model_dir, self._signature)

    def run_inference(self, batch, model, inference_args=None):
        embeddings = model(list(batch))
        return [PredictionResult(text, vector) for text, vector in zip(batch, embeddings)]

    def batch_elements_kwargs(self):
        return dict(self._batch_kwargs)

    def get_metrics_namespace(self):
        return "tf_dualenc"
