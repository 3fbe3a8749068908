"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines (a pipeline JSON; nothing is submitted).

Submit the JSON with the Vertex AI SDK (docs/pipeline.md):

    from google.cloud import aiplatform
    aiplatform.PipelineJob(display_name="tf-dualenc", template_path="pipeline.json").submit()
"""

import os

from tfx import v1 as tfx

from tf_dualenc.tfx.pipeline import create_pipeline


def compile_pipeline(config, output_file, *, beam_pipeline_args=()):
    """Writes the pipeline JSON for `config` (validated with check_paths=False) to `output_file`; returns its path.

    Vertex AI runs only TFX's built-in resolver strategies, so the evaluator's baseline is TFX's
    LatestBlessedModelStrategy here.
    """
    runner_config = tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=config.image)
    output_dir, output_filename = os.path.split(os.path.abspath(output_file))
    os.makedirs(output_dir, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=runner_config, output_dir=output_dir, output_filename=output_filename)
    runner.run(create_pipeline(config, beam_pipeline_args=beam_pipeline_args, baseline_strategy="latest_blessed"), write_out=True)
    return os.path.join(output_dir, output_filename)
