"""The TFX pipeline: one pure `create_pipeline()` (tf_dualenc.tfx.pipeline) and thin runners — local (LocalDagRunner,
SQLite metadata; the default), Beam (BeamDagRunner) and Kubeflow V2 / Vertex AI (compiles a pipeline JSON).

Components (one module each in `tf_dualenc.tfx.components`): RetrievalExampleGen (ingest) → Trainer (`run_fn` =
`tf_dualenc.tfx.trainer_module.run_fn`) → RetrievalEvaluator (metrics + blessing against a threshold and the last blessed
model) → RetrievalIndexer (Beam encode + ScaNN/exact index) → ServingPusher (TF Serving layout). See docs/pipeline.md.
"""

import tf_dualenc  # noqa: F401  (environment shims — Keras 3 + tf-keras, the TFDV stand-in — before TFX loads)
