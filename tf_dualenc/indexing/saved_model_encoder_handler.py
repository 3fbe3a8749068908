"""A Beam `ModelHandler` that embeds text with one signature of a tf_dualenc SavedModel export.

Beam's stock TensorFlow handler loads models through `tf.keras`, which rejects these SavedModels (they are plain
`tf.Module` exports with raw-string signatures); this handler uses `tf.saved_model.load` after registering the
tokeniser ops (`tf_dualenc.export.load_export`). Beam loads the model once per worker process and shares it
between the worker's threads; with `progress`, that worker writes progress lines to stderr (`tf_dualenc.progress`).
"""

from apache_beam.ml.inference.base import ModelHandler, PredictionResult


class _LoadedSignature:
    """texts → [N, D] embeddings with one signature of an export, counting them in `progress` (a `Progress`) if given."""

    # Keeps the loaded SavedModel alive: a signature function alone does not own its variables.
    def __init__(self, saved_model_dir, signature, progress=None):
        from tf_dualenc.export import load_export

        self.loaded = load_export(saved_model_dir)
        if signature not in self.loaded.signatures:
            raise ValueError(f"{saved_model_dir} has no signature {signature!r}; it has {sorted(self.loaded.signatures)}.")
        self.function = self.loaded.signatures[signature]
        self.progress = progress

    def __call__(self, texts):
        import tensorflow as tf

        embeddings = self.function(text=tf.constant(texts, tf.string))["embedding"].numpy()
        if self.progress is not None:
            self.progress.update(len(texts))
        return embeddings


def worker_progress(signature, enabled, total=None):
    """The progress of one worker's encoding (None when off): its lines count what this process encodes, against the
    corpus's `total` when this process encodes all of it (an in-process runner), else with no total and no ETA."""
    from tf_dualenc.progress import Progress

    return Progress(total, "queries" if signature == "encode_query" else "documents") if enabled else None


class SavedModelEncoderHandler(ModelHandler):
    """text → float32 embedding [D], batched, with the `encode_document` (or any text→embedding) signature.

    Args:
        saved_model_dir: a version folder written by `tf_dualenc.export.export_encoder`.
        signature: "encode_document" (default), "encode_query" or "serving_default".
        min_batch_size, max_batch_size: bounds for Beam's `BatchElements`.
        progress: write progress lines to stderr (each worker its own: documents done, per second, time left).
        total: the documents of the whole corpus, for the progress lines of a runner whose one worker encodes them all.

    Example:
    ```python
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    pairs | RunInference(KeyedModelHandler(SavedModelEncoderHandler("/models/scifact/1")))
    ```
    """

    def __init__(self, saved_model_dir, signature="encode_document", min_batch_size=8, max_batch_size=64, *, progress=False, total=None):
        if min_batch_size < 1 or max_batch_size < min_batch_size:
            raise ValueError(f"Need 1 <= min_batch_size <= max_batch_size; got {min_batch_size}, {max_batch_size}.")
        self._saved_model_dir = saved_model_dir
        self._signature = signature
        self._batch_kwargs = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
        self._progress = progress
        self._total = total
        super().__init__()

    def load_model(self):
        return _LoadedSignature(self._saved_model_dir, self._signature, worker_progress(self._signature, self._progress, self._total))

    def run_inference(self, batch, model, inference_args=None):
        embeddings = model(list(batch))
        return [PredictionResult(text, vector) for text, vector in zip(batch, embeddings)]

    def batch_elements_kwargs(self):
        return dict(self._batch_kwargs)

    def get_metrics_namespace(self):
        return "tf_dualenc"


def encodes_in_this_process(pipeline):
    """Whether one worker of this very process runs every element of `pipeline` (DirectRunner in memory with one worker,
    its default): then a worker's progress can count against the whole corpus."""
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    runner = pipeline.options.view_as(StandardOptions).runner
    direct = pipeline.options.view_as(DirectOptions)
    return (runner in (None, "DirectRunner", "direct") and direct.direct_running_mode == "in_memory"
            and direct.direct_num_workers == 1)
