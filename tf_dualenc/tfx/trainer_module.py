"""The Trainer's `run_fn` (passed to `tfx.components.Trainer` as the importable path `tf_dualenc.tfx.trainer_module.run_fn`).

It calls the package's trainer (`tf_dualenc.training.train`) on the ingested TFRecord pairs, with the hyperparameters
from `custom_config["train"]` (any `TrainConfig` key except data and output locations, which the pipeline owns), then
exports the query/document encoders to `serving_model_dir` (the `Format-Serving` folder TFX's Model artifact uses)
and keeps the Keras model next to it (`Format-Keras/model.keras`). Checkpoints and TensorBoard logs go to
`model_run_dir`. Distribution: the `strategy` key ("default", "mirrored" for several GPUs, "multi_worker", "tpu").
"""

import os
import shutil

OWNED_KEYS = ("data", "data_format", "split", "output_dir", "steps")


def train_config_from_fn_args(fn_args):
    """The `TrainConfig` for this Trainer run (validated; bad keys raise with the list of valid ones)."""
    from tf_dualenc.training.train_config import TrainConfig

    values = dict((fn_args.custom_config or {}).get("train", {}))
    owned = sorted(set(values) & set(OWNED_KEYS))
    if owned:
        raise ValueError(f"custom_config['train'] sets {owned}, which the pipeline sets itself (data, output folders, "
                         "steps via TrainArgs).")
    values.update(data=",".join(fn_args.train_files), data_format="tfrecord", output_dir=fn_args.model_run_dir,
                  steps=int(fn_args.train_steps))
    return TrainConfig.from_dict(values, source="custom_config['train']").validate()


def run_fn(fn_args):
    """Trains, then writes `Format-Serving` (encoder SavedModel with op audit) and `Format-Keras/model.keras`."""
    from tf_dualenc.export import export_encoder
    from tf_dualenc.tfx.components.shared import reported_as
    from tf_dualenc.training import train

    with reported_as("Trainer", (ValueError, OSError, FloatingPointError)):
        config = train_config_from_fn_args(fn_args)
        _, model = train(config, progress=False)
        staging = os.path.join(fn_args.model_run_dir, "export")
        result = export_encoder(model, staging, model_name="model", version=1,
                                stock_compatible=bool((fn_args.custom_config or {}).get("stock_compatible", True)))
        if os.path.exists(fn_args.serving_model_dir):
            shutil.rmtree(fn_args.serving_model_dir)
        shutil.move(result.path, fn_args.serving_model_dir)
        keras_dir = os.path.join(os.path.dirname(fn_args.serving_model_dir.rstrip("/")), "Format-Keras")
        os.makedirs(keras_dir, exist_ok=True)
        shutil.copy2(os.path.join(config.output_dir, "model.keras"), os.path.join(keras_dir, "model.keras"))
