"""The Trainer's `run_fn` (passed to `tfx.components.Trainer` as the importable path `tf_dualenc.tfx.trainer_module.run_fn`).

It calls the package's trainer (`tf_dualenc.training.train`) with the hyperparameters from `custom_config["train"]`
(any `TrainConfig` key except data and output locations, which the pipeline owns; `recipe: NAME` puts a shipped
recipe beneath them), then exports the query/document encoders to `serving_model_dir` (the `Format-Serving` folder
TFX's Model artifact uses) and keeps the Keras model next to it (`Format-Keras/model.keras`), with what the run
decided (`training.json`: the recipe, the schedule derived from its epochs, the precision the export computes in: the
training precision). Dense mining's encoding of the corpus by the starting model is kept beside them
(`StartingModel-Corpus/`) for the evaluator's starting-model reference. Checkpoints, mined negatives and TensorBoard
logs go to `model_run_dir`. Distribution: the `strategy` key ("default", "mirrored" for
several GPUs, "multi_worker", "tpu").

What it trains on:
- Hard negatives mined from the corpus (`hard_negatives: bm25 | dense`) or validation during training
  (`validation_every` > 0) need the ingested data in BEIR layout: the Examples artifact's `beir/` folder
  (`RetrievalExampleGen`), whose "train" split is the training queries without the validation queries and whose
  "dev" split is the validation split. So mining is a stage of the Trainer, cached by TFX with it, and never mines
  for a validation query.
- Otherwise, the ingested TFRecord pairs (`Split-train`).

The validation split decides blessing in `RetrievalEvaluator`, which scores the export: the Trainer validates itself
only when `validation_every` > 0 asks it to choose the best step, and then exports that step's model.
"""

import dataclasses
import os
import shutil

OWNED_KEYS = ("data", "data_format", "split", "output_dir", "steps")
TRAINING_RECORD = "training.json"
# The starting model's document embeddings of the corpus, when dense mining encoded it (beside Format-Serving).
STARTING_MODEL_CORPUS = "StartingModel-Corpus"
STARTING_MODEL = "starting_model"


def _examples_folder(fn_args):
    """The Examples artifact's folder, from the train split's file pattern (`<uri>/Split-train/*`)."""
    pattern = fn_args.train_files[0]
    return os.path.dirname(os.path.dirname(pattern.rstrip("/")))


def train_config_from_fn_args(fn_args):
    """The `TrainConfig` for this Trainer run (validated; bad keys raise with the list of valid ones)."""
    from tf_dualenc.tfx.components.retrieval_example_gen import TRAINING_FOLDER

    folder = os.path.join(_examples_folder(fn_args), TRAINING_FOLDER)
    return pipeline_train_config((fn_args.custom_config or {}).get("train", {}), train_steps=fn_args.train_steps,
                                 training_folder=folder if os.path.isdir(folder) else None,
                                 train_files=",".join(fn_args.train_files), output_dir=fn_args.model_run_dir).validate()


def pipeline_train_config(values, *, train_steps, training_folder, train_files, output_dir):
    """The `TrainConfig` the Trainer runs (not validated): the pipeline's `train` mapping (`values`), `train_steps`
    steps when set (else the mapping's epochs), on the ingested BEIR folder `training_folder` when it mines or
    validates (None: the data were pair files), else on the TFRecord `train_files`. `PipelineConfig.validate` calls it
    with stand-ins, so a config is checked as the Trainer will run it."""
    from tf_dualenc.data.validation_split import has_dev_split
    from tf_dualenc.mining import MINERS
    from tf_dualenc.training.train_config import TrainConfig

    values = dict(values)
    owned = sorted(set(values) & set(OWNED_KEYS))
    if owned:
        raise ValueError(f"train sets {owned}, which the pipeline sets itself (data, output folders; steps via train_steps).")
    if train_steps:
        values["steps"] = int(train_steps)
    config = TrainConfig.from_dict(values, source="the pipeline's train config")
    if config.hard_negatives in MINERS or config.validation_every > 0:
        if training_folder is None:
            raise ValueError(f"hard_negatives={config.hard_negatives!r} / validation_every={config.validation_every} need the "
                             "training data as a BEIR folder (a corpus to mine and validate on); this pipeline's data are pair "
                             "files. Use a BEIR folder as `data`, or hard negatives from pair files.")
        if config.validation_every > 0 and not has_dev_split(training_folder):
            raise ValueError("validation_every > 0 validates on the validation split inside the Trainer, which needs validation "
                             "queries over the training corpus (validation_data is another folder here).")
        data = {"data": training_folder, "data_format": "beir", "split": "train"}
    else:
        data = {"data": train_files, "data_format": "tfrecord"}
    # The evaluator scores the export on the validation split; the Trainer validates only to choose a step.
    validation = {"validation_fraction": config.validation_fraction if config.validation_every > 0 else 0.0}
    return dataclasses.replace(config, output_dir=output_dir, **data, **validation)


def run_fn(fn_args):
    """Trains, then writes `Format-Serving` (encoder SavedModel with op audit), `Format-Keras/model.keras` and
    `training.json` (beside them, in the Model artifact)."""
    from tf_dualenc.atomic_write import write_json_atomic
    from tf_dualenc.export import export_encoder
    from tf_dualenc.tfx.components.shared import reported_as
    from tf_dualenc.training import train

    from tf_dualenc.indexing.corpus_embeddings import write_corpus_embeddings
    from tf_dualenc.precision import set_precision
    from tf_dualenc.progress import components_show_progress

    model_folder = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))

    def keep_starting_corpus(documents, embeddings):
        # The evaluator scores the starting model for its first blessing: with these it need not encode the corpus again.
        write_corpus_embeddings(os.path.join(model_folder, STARTING_MODEL_CORPUS), documents, embeddings, model=STARTING_MODEL)

    with reported_as("Trainer", (ValueError, OSError, FloatingPointError)):
        config = train_config_from_fn_args(fn_args)
        # Progress lines while mining encodes the corpus (TF_DUALENC_PROGRESS, `pipeline run --quiet`: the components'
        # switch), and training's bar, which off a terminal prints once, at the end.
        summary, model = train(config, progress=components_show_progress(), on_mined_documents=keep_starting_corpus)
        chosen = os.path.join(config.output_dir, "model.keras")
        if summary.get("best_model") and os.path.abspath(summary["best_model"]) != os.path.abspath(chosen):
            from tf_dualenc.loading import load_model

            chosen = summary["best_model"]
            model = load_model(chosen)
        # Served in the precision it trained in (bfloat16 where the hardware computes it natively): what the evaluator
        # scores is what is served.
        precision = (summary.get("schedule") or {}).get("mixed_precision", "float32")
        set_precision(model, precision)
        staging = os.path.join(fn_args.model_run_dir, "export")
        result = export_encoder(model, staging, model_name="model", version=1,
                                stock_compatible=bool((fn_args.custom_config or {}).get("stock_compatible", True)))
        if os.path.exists(fn_args.serving_model_dir):
            shutil.rmtree(fn_args.serving_model_dir)
        shutil.move(result.path, fn_args.serving_model_dir)
        keras_dir = os.path.join(model_folder, "Format-Keras")
        os.makedirs(keras_dir, exist_ok=True)
        shutil.copy2(chosen, os.path.join(keras_dir, "model.keras"))
        write_json_atomic(os.path.join(model_folder, TRAINING_RECORD), {
            "recipe": config.recipe, "precision": precision, "schedule": summary.get("schedule"),
            "train_pairs": summary.get("train_pairs"),
            "model_chosen": "best step on validation" if chosen != os.path.join(config.output_dir, "model.keras") else "last step",
            "validation": summary.get("validation"), "seconds": summary.get("seconds_this_run"),
            "peak_rss_mb": summary.get("peak_rss_mb"), "data": config.data, "config": config.to_dict(),
        })
