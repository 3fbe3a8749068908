"""The pipeline's configuration: one YAML/JSON file (`tf-dualenc pipeline run|compile --config F`), validated whole
before anything runs. `train` holds the training hyperparameters (any `TrainConfig` key but data/output locations)."""

import dataclasses
import os
import typing

from tf_dualenc.index_config import INDEX_METHODS

RUNNERS = ("local", "beam", "kubeflow_v2")
MEASURES = ("NDCG@10", "MRR@10", "P@1", "Recall@100", "MAP@100")
# The configs shipped with the package (package data, so they are in the wheel too).
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
DEFAULT_CONFIG = os.path.join(CONFIGS_DIR, "scifact_minilm.yaml")


def config_file(path=None):
    """`--config` as given: a file; else the name of a shipped config (`vertex` or `vertex.yaml`: CONFIGS_DIR); none:
    DEFAULT_CONFIG. A name that is neither comes back unchanged, for the reader's error naming it."""
    if not path:
        return DEFAULT_CONFIG
    if os.path.exists(path) or os.sep in path:
        return path
    for name in (path, path + ".yaml"):
        if os.path.isfile(os.path.join(CONFIGS_DIR, name)):
            return os.path.join(CONFIGS_DIR, name)
    return path


@dataclasses.dataclass
class PipelineConfig:
    """Keys of a pipeline config file.

    Data: `dataset` (a BEIR name, looked for in TF_DUALENC_DATA's folders, beside the config file, in a source
    checkout's `../shared/data` and in the download cache, else downloaded from BEIR's public address)
    or `data` (a BEIR folder or pair files); `split` is the training split, `eval_data` / `eval_split` the evaluation
    split (default: the same BEIR folder, split "test"): it is reported, never used to decide anything.
    Evaluation rules (`tf_dualenc.data.evaluation_rules`; a data folder's beir.json can turn them on too):
    `ignore_identical_ids` (BEIR's rule: runs drop the query's own id; mining never returns it), `lenient` (bad
    records skipped and counted on every split), `title_separator`; ingest writes them into every split it writes.
    Validation (what blessing is decided on): `validation_data` (default: `data` when it is a BEIR folder) — its `dev`
    split when it has one, else `validation_fraction` of its `split` queries, held out of training.
    Training: `train` (TrainConfig keys; `recipe: NAME` puts a shipped recipe, `tf_dualenc.recipes`, beneath them),
    `train_steps` (0: as many as the train config's `epochs` make of the ingested pairs; N > 0: N steps).
    Blessing: `metric` on validation must reach `threshold`; the first blessing must beat each of `bless_against`
    ("starting_model": the model before fine-tuning; "bm25") on validation, later ones must not fall below the last
    blessed model's. Search: `search_fusion` — "auto" pushes BM25 interpolated with the dense model when that beats
    dense alone on validation (the weight chosen there too), else dense; "dense" or "interpolate" force one. Cascade:
    `reranker` (optional; `tf_dualenc.tfx.reranker_section.RerankerSection` keys): a cross-encoder trained on lists mined
    from the training queries, kept and pushed only when re-ranking the blessed search raises validation. Index: `index_corpus`
    (files/globs; default the evaluation corpus), `index_method`. Push: `serving_dir`, `model_name`.
    Orchestration: `pipeline_name`, `pipeline_root`, `metadata_path`, `enable_cache`, `runner`, `direct_num_workers`
    (Beam workers for the indexer and the Beam runner), `beam_pipeline_args`, `image` (container image for Kubeflow V2 /
    Vertex AI). `query`: the text answered from the pushed model after a run (default: the first evaluation query).
    """

    pipeline_name: str = "tf-dualenc"
    pipeline_root: str = "runs/pipeline"
    metadata_path: str = ""
    dataset: str = ""
    data: str = ""
    data_format: str = "auto"
    split: str = "train"
    eval_data: str = ""
    eval_split: str = "test"
    validation_data: str = ""
    validation_fraction: float = 0.2
    bless_against: typing.List[str] = dataclasses.field(default_factory=lambda: ["starting_model", "bm25"])
    title_separator: str = " "
    lenient: bool = False
    ignore_identical_ids: bool = False
    num_shards: int = 1
    train: dict = dataclasses.field(default_factory=dict)
    train_steps: int = 0
    metric: str = "NDCG@10"
    threshold: float = 0.0
    eval_k: int = 100
    eval_batch_size: int = 64
    index_corpus: typing.List[str] = dataclasses.field(default_factory=list)
    search_fusion: str = "auto"
    reranker: dict = dataclasses.field(default_factory=dict)
    index_method: str = "auto"
    brute_force_below: int = 20000
    serving_dir: str = ""
    model_name: str = "dual_encoder"
    stock_compatible: bool = True
    enable_cache: bool = True
    runner: str = "local"
    direct_num_workers: int = 2
    beam_pipeline_args: typing.List[str] = dataclasses.field(default_factory=list)
    image: str = ""
    query: str = ""
    # Set by `from_file`: the config file's folder, where `dataset` is looked for (after TF_DUALENC_DATA).
    config_dir: str = ""

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_file(cls, path, overrides=()):
        """Reads YAML or JSON (a file, or a shipped config by name: `config_file`), applies `key=value` overrides
        (`train.key=value` for training keys)."""
        from tf_dualenc.config_files import read_config_mapping

        path = config_file(path)
        values = read_config_mapping(path, "Pipeline config")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; valid keys: {cls.field_names()}.")
        # Relative paths in the file are relative to the directory the command runs in, as on the command line; a
        # `dataset` name is looked up beside the file (`tf_dualenc.data.beir_download.dataset_search_dirs`).
        config = cls(**dict(values, config_dir=os.path.dirname(os.path.abspath(path))))
        return config.with_overrides(overrides)

    def with_overrides(self, overrides):
        import yaml

        values = dataclasses.asdict(self)
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"--set expects key=value; got {item!r}.")
            key, raw = item.split("=", 1)
            value = yaml.safe_load(raw) if raw else ""
            if key.startswith("train."):
                from tf_dualenc.training.train_config import TrainConfig

                name = key[len("train."):]
                # TrainConfig's own parser: YAML reads "3e-5" as a string (a float needs a dot there).
                types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
                value = _parse_train_value(name, raw, types[name]) if name in types else value
                values["train"] = dict(values["train"], **{name: value})
            elif key.startswith("reranker."):
                values["reranker"] = dict(values["reranker"], **{key[len("reranker."):]: value})
            elif key in values:
                values[key] = raw if isinstance(values[key], str) else value
            else:
                raise ValueError(f"--set {key}: unknown key; valid keys: {self.field_names()} (and train.<TrainConfig key>, reranker.<key>).")
        return PipelineConfig(**values)

    def resolved(self, print_fn=print):
        """A copy with `dataset` resolved to a folder (downloaded if needed) and defaults filled in."""
        from tf_dualenc.data.beir_download import resolve_beir_dataset

        values = dataclasses.asdict(self)
        if self.dataset and not self.data:
            from tf_dualenc.data.beir_download import dataset_search_dirs

            values["data"] = resolve_beir_dataset(self.dataset, search_dirs=dataset_search_dirs(self.config_dir or None),
                                                  print_fn=print_fn)
        if not values["eval_data"] and values["data"] and os.path.isdir(values["data"]):
            values["eval_data"] = values["data"]
        if not values["metadata_path"]:
            values["metadata_path"] = os.path.join(self.pipeline_root, "metadata.sqlite")
        if not values["serving_dir"]:
            values["serving_dir"] = os.path.join(self.pipeline_root, "serving")
        # Artifact URIs are stored in the metadata: local ones must not depend on the working directory.
        if not values["validation_data"] and values["data"] and os.path.isdir(values["data"]):
            values["validation_data"] = values["data"]
        for name in ("pipeline_root", "metadata_path", "serving_dir", "data", "eval_data", "validation_data"):
            values[name] = _absolute(values[name])
        values["index_corpus"] = [_absolute(p) for p in values["index_corpus"]]
        if isinstance(values["reranker"], dict) and values["reranker"].get("vocabulary"):
            values["reranker"] = dict(values["reranker"], vocabulary=_absolute(values["reranker"]["vocabulary"]))
        return PipelineConfig(**values)

    def validate(self, *, check_paths=True):
        """Raises one ValueError listing every problem with the valid values; returns self.

        check_paths: whether local data paths must exist (off when compiling for a remote runner, whose data lives on
        cloud storage).
        """
        errors = []

        def choice(name, options):
            if getattr(self, name) not in options:
                errors.append(f"{name}={getattr(self, name)!r} (valid: {list(options)})")

        choice("runner", RUNNERS)
        choice("index_method", INDEX_METHODS)
        choice("metric", MEASURES)
        from tf_dualenc.tfx.components.retrieval_evaluator import SEARCH_FUSIONS

        choice("search_fusion", SEARCH_FUSIONS)
        if not self.data and not self.dataset:
            errors.append("set `dataset` (a BEIR name, e.g. scifact) or `data` (a BEIR folder or pair files)")
        if not self.eval_data and not self.dataset and not (self.data and (os.path.isdir(self.data) or not check_paths)):
            errors.append("eval_data is needed when data are pair files (a BEIR folder with the evaluation split)")
        if check_paths:
            for name in ("data", "eval_data"):
                path = getattr(self, name)
                if path and os.path.isdir(path):
                    continue
                if name == "data" and path:
                    from tf_dualenc.data.pair_records import resolve_pair_files

                    try:
                        resolve_pair_files(path)
                    except FileNotFoundError as error:
                        errors.append(f"data={path!r}: {error}")
                elif path:
                    errors.append(f"eval_data={path!r} is not a folder (a BEIR folder with qrels/{self.eval_split}.tsv)")
            eval_data = self.eval_data or (self.data if self.data and os.path.isdir(self.data) else "")
            if eval_data and os.path.isdir(eval_data) and not os.path.isfile(os.path.join(eval_data, "qrels", f"{self.eval_split}.tsv")):
                errors.append(f"eval_data={eval_data!r} has no qrels/{self.eval_split}.tsv (eval_split={self.eval_split!r})")
        errors.extend(self._validation_errors(check_paths))
        for name, low in (("train_steps", 0), ("num_shards", 1), ("eval_k", 10), ("eval_batch_size", 1), ("brute_force_below", 0),
                          ("direct_num_workers", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                errors.append(f"{name}={value!r} (must be an integer >= {low})")
        if not isinstance(self.threshold, (int, float)) or isinstance(self.threshold, bool) or not 0.0 <= self.threshold <= 1.0:
            errors.append(f"threshold={self.threshold!r} (must be a number in [0, 1])")
        for name in ("lenient", "ignore_identical_ids", "stock_compatible", "enable_cache"):
            if not isinstance(getattr(self, name), bool):
                errors.append(f"{name}={getattr(self, name)!r} (must be true or false)")
        if not isinstance(self.train, dict):
            errors.append(f"train={self.train!r} (must be a mapping of TrainConfig keys)")
        else:
            errors.extend(self._train_errors(check_paths))
        errors.extend(self._reranker_errors(check_paths))
        from tf_dualenc.export.layout import ExportError, check_model_name

        try:
            check_model_name(self.model_name)
        except ExportError as error:
            errors.append(str(error))
        if self.runner == "kubeflow_v2" and not self.image:
            errors.append("image is required for runner='kubeflow_v2' (the container image with tf_dualenc installed)")
        if errors:
            raise ValueError("Invalid pipeline config: " + "; ".join(errors) + ".")
        return self

    def _validation_errors(self, check_paths):
        from tf_dualenc.tfx.components.retrieval_evaluator import REFERENCES

        errors = []
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
            errors.append(f"validation_fraction={fraction!r} (must be in (0, 1): blessing is decided on a validation split)")
        if not isinstance(self.bless_against, list) or set(self.bless_against) - set(REFERENCES):
            errors.append(f"bless_against={self.bless_against!r} (a list of {list(REFERENCES)}, or [])")
        source = self.validation_data or (self.data if self.data and (os.path.isdir(self.data) or not check_paths) else "")
        if not source and not self.dataset:
            errors.append("validation_data is needed when data are pair files (a BEIR folder to take the validation split from)")
        elif check_paths and source and not os.path.isdir(source):
            errors.append(f"validation_data={source!r} is not a folder (a BEIR folder with qrels/dev.tsv or qrels/{self.split}.tsv)")
        elif check_paths and source:
            from tf_dualenc.data.validation_split import has_dev_split

            eval_data = self.eval_data or self.data
            same = eval_data and os.path.realpath(eval_data) == os.path.realpath(source)
            if has_dev_split(source) and self.split == "dev":
                errors.append(f"split='dev': {source}'s dev split is the validation split blessing is decided on; train on another split")
            if same and (self.eval_split == "dev" if has_dev_split(source) else self.eval_split == self.split):
                errors.append(f"eval_split={self.eval_split!r} is the split the validation queries come from; evaluate on another split")
        return errors

    def _reranker_errors(self, check_paths):
        from tf_dualenc.tfx.reranker_section import RerankerSection

        if self.reranker in (None, {}):
            return []
        try:
            section = RerankerSection.from_dict(self.reranker)
        except (ValueError, TypeError) as error:
            return [str(error)]
        errors = section.errors()
        if not self._beir_data(check_paths):
            errors.append("reranker: its lists are mined from the training queries over their corpus, so `data` must be a BEIR "
                          "folder (or `dataset`)")
        if check_paths and section.vocabulary and "://" not in section.vocabulary and not os.path.isfile(section.vocabulary):
            errors.append(f"reranker.vocabulary={section.vocabulary!r} does not exist")
        if section.served_name(self.model_name) == self.model_name:
            errors.append(f"reranker.model_name={section.model_name!r} is the encoder's model_name; the two are served side by side")
        return errors

    def _beir_data(self, check_paths):
        """Whether ingest will write the training data as a BEIR folder (what mining needs)."""
        return bool(self.dataset) or bool(self.data and (os.path.isdir(self.data) or not check_paths)
                                          and self.data_format in ("auto", "beir"))

    def _train_errors(self, check_paths):
        from tf_dualenc.tfx.trainer_module import OWNED_KEYS, pipeline_train_config
        from tf_dualenc.training.train_config import TrainConfig

        owned = sorted(set(self.train) & set(OWNED_KEYS))
        if owned:
            return [f"train sets {owned}: the pipeline sets data and output locations itself (use train_steps for steps)"]
        unknown = sorted(set(self.train) - set(TrainConfig.field_names()))
        if unknown:
            return [f"train: unknown key(s) {unknown}; valid keys: {[k for k in TrainConfig.field_names() if k not in OWNED_KEYS]}"]
        # Checked as the Trainer will run it, with stand-ins for what ingest writes: a folder for the BEIR copy of a
        # BEIR `data` (or `dataset`), an existing file for the TFRecord pairs.
        beir = self._beir_data(check_paths)
        here = os.path.abspath(__file__)
        errors = []
        try:
            steps = self.train_steps if isinstance(self.train_steps, int) and self.train_steps > 0 else None
            config = pipeline_train_config(self.train, train_steps=steps, training_folder=os.path.dirname(here) if beir else None,
                                           train_files=here, output_dir=os.path.join(self.pipeline_root, "_"))
            if steps is None and config.epochs is None and self.train_steps == 0:
                errors.append("train_steps=0 trains for the train config's `epochs`, and it sets none: set train_steps, "
                              "train.epochs, or train.recipe (e.g. quick)")
            config.validate()
        except ValueError as error:
            message = str(error).replace("Invalid training config: ", "")
            if not check_paths:
                message = "; ".join(p for p in message.rstrip(".").split("; ") if "does not exist" not in p)
            return errors + ([f"train: {message}"] if message else [])
        return errors

    def to_dict(self):
        return dataclasses.asdict(self)


def _parse_train_value(name, raw, annotation):
    from tf_dualenc.training.train_config import parse_value

    return parse_value(f"train.{name}", raw, annotation)


def _absolute(path):
    if not path or "://" in path:
        return path
    return ",".join(os.path.abspath(p) for p in path.split(","))
