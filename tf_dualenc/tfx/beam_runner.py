"""Runs the pipeline with TFX's BeamDagRunner (each component a Beam step; DirectRunner workers locally)."""

from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
from tfx.v1.orchestration import metadata

from tf_dualenc.tfx.pipeline import create_pipeline


def run(config, *, input_fingerprint="", beam_pipeline_args=()):
    """config: a resolved, validated `PipelineConfig`; `beam_pipeline_args` also drive the orchestration."""
    BeamDagRunner(beam_orchestrator_args=list(beam_pipeline_args)).run(create_pipeline(
        config, metadata_connection_config=metadata.sqlite_metadata_connection_config(config.metadata_path),
        beam_pipeline_args=beam_pipeline_args, input_fingerprint=input_fingerprint,
    ))
