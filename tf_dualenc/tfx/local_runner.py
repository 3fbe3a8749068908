"""Runs the pipeline in this process with TFX's LocalDagRunner and SQLite metadata (the default runner)."""

from tfx import v1 as tfx

from tf_dualenc.tfx.pipeline import create_pipeline


def run(config, *, input_fingerprint="", beam_pipeline_args=()):
    """config: a resolved, validated `PipelineConfig`."""
    tfx.orchestration.LocalDagRunner().run(create_pipeline(
        config, metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path),
        beam_pipeline_args=beam_pipeline_args, input_fingerprint=input_fingerprint,
    ))
