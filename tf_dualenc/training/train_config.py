"""The training configuration: one flat dataclass, loaded from YAML/JSON and `--set key=value` flags,
validated as a whole before anything expensive starts."""

import dataclasses
import os
import typing

from tf_dualenc import losses
from tf_dualenc.mining.hard_negatives import MINERS as HARD_NEGATIVE_MINERS  # the miner's own list of retrievers
from tf_dualenc.models.dual_encoder import ARCHITECTURES
from tf_dualenc.models.t5_tower_configs import T5_TOWER_CONFIGS
from tf_dualenc.precision import PRECISIONS  # one list for training and inference

# Training may also leave the choice to the hardware: "auto" is bfloat16 where it computes bfloat16 natively
# (`tf_dualenc.precision.resolve_precision`).
TRAINING_PRECISIONS = PRECISIONS + ("auto",)
# Pairs of keys that say the same thing two ways: a later layer (a config file over its recipe, `--set` over both)
# that sets one clears the other, and one layer may not set both.
EXCLUSIVE_KEYS = {"steps": "epochs", "epochs": "steps", "warmup_steps": "warmup_fraction", "warmup_fraction": "warmup_steps"}

# The registry lists the loss names; this alias keeps the old import working.
LOSSES = losses.names()
MODELS = ("t5", "bert")
OPTIMIZERS = ("adafactor", "adam", "sgd")
DATA_FORMATS = ("auto", "beir", "jsonl", "tsv", "tfrecord")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


@dataclasses.dataclass
class TrainConfig:
    """Everything `tf-dualenc train` needs. Defaults are the paper's (Moiseev et al. 2023, Section 3).

    Data:
        data: BEIR folder (pairs = qrels rows with score > 0) or a JSONL pair file
            (`{"query_id"?, "query", "document_id"?, "document"}` per line).
        data_format: "auto" (a folder → beir; files → by suffix .jsonl/.tsv/.tfrecord), "beir", "jsonl", "tsv",
            "tfrecord". Pair files are streamed; `data` may be a comma list or a glob of shards.
        shuffle_buffer: records in the shuffle buffer when streaming pair files.
        num_negatives: hard negatives per pair taken from pair files (each record needs at least this many).
        split: BEIR qrels split to train on.
        title_separator: joins a BEIR document's title and text.
        lenient: skip and count bad records instead of failing (the validation split's too).
        ignore_identical_ids: BEIR's rule for sets whose queries are also documents: the validation runs drop the
            hit whose id is the query id, and mining never returns it as a negative. A BEIR folder's `beir.json` can
            turn this and `lenient` on (`tf_dualenc.data.evaluation_rules`); summary.json records the rules used.
        validation_fraction: share of the BEIR split's queries held out as the validation split (a seeded hash of
            the query id, see `tf_dualenc.data.validation_split`; a folder's `dev` split is used instead when it has
            one). Their pairs are not trained on; checkpoints are chosen on them. 0 = no validation split.
        validation_every: also evaluate on the validation split every N steps (TensorBoard `validation/...`); the
            best one is saved as `best_model.keras`. 0 = only once, at the end.
        validation_metric: the measure that picks the best step (e.g. "NDCG@10", "MRR@10").
        hard_negatives: mine hard negatives for every training pair before training: "bm25", "dense" (the model
            being fine-tuned, before training) or a pair JSONL file that has them. Mined lists are cached in
            `hard_negatives_cache` (default: output_dir), keyed by everything that decides them.
        hard_negatives_depth, hard_negatives_skip_top: negatives are drawn (seeded) from the first `depth` mined
            non-positives after skipping the first `skip_top` (the likeliest unlabelled positives).
        encode_batch_size: texts per forward pass when the trainer encodes a corpus (dense mining, validation). On a
            2-core Xeon with AMX, 16 encoded 256-token documents ~1.3x faster than 64 in bfloat16 (docs/benchmarks.md).
        distillation: a trained cross-encoder (`tf-dualenc train-reranker`'s .keras) to distil from: before training
            it scores every pair's positive and hard negatives once (cached beside the mined negatives), and the
            loss adds `distillation_weight` × the listwise KL from its distribution over each query's list to the
            dual encoder's (`tf_dualenc.losses.listwise_distillation_loss`; RocketQAv2). Needs num_negatives >= 1
            (mined by `hard_negatives`, or read from pair files).
        distillation_weight: weight of that term (> 0).
        distillation_temperature: temperature of the cross-encoder's logits (> 0).
    Model:
        model: "t5" (T5 encoder towers) or "bert" (BERT-family, e.g. all-MiniLM-L6-v2).
        size: T5 size name (ignored for bert or with preset).
        vocabulary: T5 SentencePiece model (required for t5).
        preset: keras-hub preset / local folder to initialise towers from ("all-MiniLM-L6-v2" for bert).
        architecture: "sde", "ade", "ade_spl".
        embedding_dim: projection size (default: tower size).
        query_length, document_length: token budgets.
        dropout: the dropout of T5 towers built from `size`; towers from a preset keep the preset's own (any other
            value with a preset is refused).
    Loss:
        loss: a name from the loss registry, `tf_dualenc.losses.names()`: "samtone", "in_batch", "pair".
        same_tower, bidirectional, temperature: as `contrastive_loss` (same_tower applies to "samtone").
        alpha: PAIR weight.
        mask_duplicates: drop same-id pairs from the denominators.
        The trainer hands each loss the settings it takes (`losses.settings(loss)`) as one object, `losses.get`.
    Recipe:
        recipe: a named recipe shipped with the package (`tf_dualenc.recipes`: "quick", "strong"), the bottom layer of
            the config: every key set beside it wins over the recipe's.
    Optimisation:
        optimizer: "adafactor" (paper), "adam" or "sgd"; learning_rate warms up linearly over `warmup_steps`, then
            decays linearly to 0 at `steps`.
        batch_size, steps, seed.
        epochs: instead of `steps`: steps = int(epochs × (training pairs // batch_size)), counted on the pairs actually
            trained on (after the validation split and hard-negative mining); recorded in summary.json ("schedule").
        warmup_fraction: instead of `warmup_steps`: warmup_steps = int(warmup_fraction × steps). A warm-up as long
            as the run or longer is cut to steps − 1 (the run says so), rather than refused: short runs still run.
        no_duplicates: batches never repeat a query id or a document id.
        jit_compile: XLA-compile the train step.
        mini_batch_size: pairs per forward/backward pass with gradient caching (GradCache): the step still takes
            the exact gradient of the whole batch's loss, with the activation memory of this many pairs (it
            encodes the batch twice). It must divide batch_size (under several replicas: each replica's share).
            0 (or batch_size) = off. See `tf_dualenc.training.cached_step`.
        mixed_precision: "float32", or "bfloat16": Keras' mixed_bfloat16 policy (bfloat16 compute, float32
            variables; embeddings, logits and the loss stay float32), or "auto": bfloat16 where the hardware computes
            it natively (a CPU with AVX-512-BF16 or AMX, a GPU of compute capability 8.0 or newer, a TPU), else
            float32; summary.json records what it was. The saved model computes in float32.
        trim_padding: cut each batch to its longest text (off under XLA and TPU, which need static shapes).
    Output:
        output_dir, checkpoint_every (steps), keep_checkpoints, log_every (steps), strategy.
    """

    recipe: typing.Optional[str] = None
    data: str = ""
    data_format: str = "auto"
    shuffle_buffer: int = 10000
    num_negatives: int = 0
    split: str = "train"
    title_separator: str = " "
    lenient: bool = False
    ignore_identical_ids: bool = False
    validation_fraction: float = 0.0
    validation_every: int = 0
    validation_metric: str = "NDCG@10"
    hard_negatives: typing.Optional[str] = None
    hard_negatives_depth: int = 8
    hard_negatives_skip_top: int = 1
    hard_negatives_cache: typing.Optional[str] = None
    encode_batch_size: int = 64
    distillation: typing.Optional[str] = None
    distillation_weight: float = 1.0
    distillation_temperature: float = 1.0
    model: str = "t5"
    size: str = "t5_1.1_small"
    vocabulary: typing.Optional[str] = None
    preset: typing.Optional[str] = None
    architecture: str = "ade_spl"
    embedding_dim: typing.Optional[int] = None
    query_length: int = 64
    document_length: int = 256
    dropout: float = 0.1
    loss: str = "samtone"
    same_tower: str = "query"
    bidirectional: bool = True
    temperature: float = 0.01
    alpha: float = 0.1
    mask_duplicates: bool = True
    optimizer: str = "adafactor"
    learning_rate: float = 1e-3
    warmup_steps: int = 0
    batch_size: int = 512
    steps: int = 20000
    epochs: typing.Optional[float] = None
    warmup_fraction: typing.Optional[float] = None
    seed: int = 0
    no_duplicates: bool = True
    jit_compile: bool = False
    mini_batch_size: int = 0
    mixed_precision: str = "float32"
    trim_padding: bool = True
    output_dir: str = "runs/train"
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    strategy: str = "default"

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values, source="config"):
        """A config from a mapping of keys; a `recipe` key puts that recipe's keys beneath the others."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {unknown}; valid keys: {cls.field_names()}.")
        values = dict(values)
        if values.get("recipe") is not None:
            from tf_dualenc.recipes import read_recipe

            try:
                layered = read_recipe(values["recipe"])
            except ValueError as error:
                raise ValueError(f"{source}: {error}") from None
            layered = _layer(layered, {k: v for k, v in values.items() if k != "recipe"})
            values = dict(layered, recipe=values["recipe"])
        return cls(**values)

    @classmethod
    def from_file(cls, path, overrides=()):
        """Reads YAML or JSON, applies `key=value` overrides, validates."""
        from tf_dualenc.config_files import read_config_mapping

        values = read_config_mapping(path)
        config = cls.from_dict(values, source=path)
        return config.with_overrides(overrides)

    def with_overrides(self, overrides):
        values = dataclasses.asdict(self)
        types = {f.name: f.type for f in dataclasses.fields(self)}
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"--set expects key=value; got {item!r}.")
            key, raw = item.split("=", 1)
            if key not in types:
                raise ValueError(f"--set {key}: unknown key; valid keys: {self.field_names()}.")
            if key == "recipe":
                raise ValueError("--set recipe: a recipe is the bottom layer of the config; give it with --recipe NAME or as "
                                 "`recipe:` in the config file.")
            values = _layer(values, {key: parse_value(key, raw, types[key])})
        return TrainConfig(**values)

    @classmethod
    def from_recipe(cls, name, values=None, source="config"):
        """Recipe `name` (`tf_dualenc.recipes`) with `values` over it."""
        return cls.from_dict(dict(values or {}, recipe=name), source=source)

    def schedule(self, pairs):
        """The run's concrete schedule for `pairs` training pairs: {"steps", "warmup_steps", "epochs",
        "warmup_fraction", "pairs", "note"}. `epochs` and `warmup_fraction` are turned into steps here; a warm-up
        that is not shorter than the run is cut to steps − 1 (`note` says so)."""
        steps = self.steps if self.epochs is None else max(1, int(self.epochs * (pairs // self.batch_size)))
        warmup = self.warmup_steps if self.warmup_fraction is None else int(self.warmup_fraction * steps)
        note = ""
        if warmup >= steps:
            note = f"warm-up of {warmup} steps cut to {steps - 1}: the run has {steps} steps"
            warmup = steps - 1
        return {"steps": steps, "warmup_steps": warmup, "epochs": self.epochs, "warmup_fraction": self.warmup_fraction,
                "pairs": pairs, "batch_size": self.batch_size, "note": note}

    def validate(self):
        """Raises one ValueError listing every problem, each with the valid values."""
        errors = []

        def choice(name, options):
            if getattr(self, name) not in options:
                errors.append(f"{name}={getattr(self, name)!r} (valid: {list(options)})")

        choice("data_format", DATA_FORMATS)
        choice("model", MODELS)
        choice("architecture", ARCHITECTURES)
        choice("loss", losses.names())
        for name, check in (("same_tower", losses.check_same_tower), ("temperature", losses.check_temperature),
                            ("alpha", losses.check_alpha)):
            try:
                check(getattr(self, name))
            except ValueError as error:
                errors.append(str(error))
        choice("optimizer", OPTIMIZERS)
        choice("strategy", STRATEGIES)
        choice("mixed_precision", TRAINING_PRECISIONS)
        self._validate_schedule(errors)
        if self.recipe is not None:
            from tf_dualenc.recipes import recipe_names

            if self.recipe not in recipe_names():
                errors.append(f"recipe={self.recipe!r} (valid: {recipe_names()})")
        if not self.data:
            errors.append("data is empty (a BEIR folder, or pair files: a path, comma list or glob)")
        elif not os.path.isdir(self.data):
            from tf_dualenc.data.pair_records import resolve_pair_files

            try:
                resolve_pair_files(self.data)
            except FileNotFoundError:
                errors.append(f"data={self.data!r} does not exist (a BEIR folder, or pair files: a path, comma list or glob)")
            if self.data_format == "beir":
                errors.append(f"data_format='beir' needs a folder; data={self.data!r} is not one")
        elif self.data_format not in ("auto", "beir"):
            errors.append(f"data={self.data!r} is a folder, so data_format must be 'auto' or 'beir' (got {self.data_format!r})")
        if self.model == "t5":
            if self.preset is None:
                choice("size", tuple(T5_TOWER_CONFIGS))
            if not self.vocabulary:
                errors.append("vocabulary is required for model='t5' (a SentencePiece model; see `tf-dualenc train-vocab`)")
            elif not os.path.isfile(self.vocabulary):
                errors.append(f"vocabulary={self.vocabulary!r} does not exist")
        if self.model == "bert" and not self.preset:
            errors.append("preset is required for model='bert' (e.g. 'all-MiniLM-L6-v2' or a Hugging Face folder)")
        default_dropout = type(self).__dataclass_fields__["dropout"].default
        if self.preset and self.dropout != default_dropout:
            # Silently training with the preset's own rate would be worse than refusing.
            errors.append(f"dropout={self.dropout!r} sets the dropout of T5 towers built from `size`; towers from "
                          f"preset={self.preset!r} keep the preset's own rate (leave dropout at {default_dropout})")
        for name, low in (("query_length", 2), ("document_length", 2), ("batch_size", 2), ("steps", 1),
                          ("shuffle_buffer", 1), ("num_negatives", 0), ("encode_batch_size", 1), ("validation_every", 0), ("warmup_steps", 0),
                          ("hard_negatives_depth", 1), ("hard_negatives_skip_top", 0),
                          ("checkpoint_every", 1), ("keep_checkpoints", 1), ("log_every", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                errors.append(f"{name}={value!r} (must be an integer >= {low})")
        if self.embedding_dim is not None and (not isinstance(self.embedding_dim, int) or self.embedding_dim < 1):
            errors.append(f"embedding_dim={self.embedding_dim!r} (must be a positive integer or null)")
        for name, low, high in (("learning_rate", 0.0, None), ("dropout", 0.0, 1.0), ("distillation_weight", 0.0, None),
                                ("distillation_temperature", 0.0, None)):
            value = getattr(self, name)
            bad = not isinstance(value, (int, float)) or isinstance(value, bool)
            bad = bad or (high is None and value <= low) or (high is not None and not low <= value <= high)
            if bad:
                errors.append(f"{name}={value!r} (must be {'> 0' if high is None else f'in [{low}, {high}]'})")
        for field in dataclasses.fields(self):
            if field.type is bool and not isinstance(getattr(self, field.name), bool):
                errors.append(f"{field.name}={getattr(self, field.name)!r} (must be true or false)")
        self._validate_mini_batch_size(errors)
        self._validate_selection_and_negatives(errors)
        if isinstance(self.num_negatives, int) and self.num_negatives > 0:
            if self.data and os.path.isdir(self.data) and not self.hard_negatives:
                errors.append(f"num_negatives={self.num_negatives} needs pair files with hard negatives; a BEIR folder has none")
            if self.loss == "pair":
                errors.append("num_negatives > 0 is not defined for loss='pair' (use 'samtone' or 'in_batch')")
        if self.loss == "pair" and self.mask_duplicates:
            errors.append("mask_duplicates=True is not defined for loss='pair' (set mask_duplicates: false)")
        if errors:
            raise ValueError("Invalid training config: " + "; ".join(errors) + ".")
        return self

    def _validate_schedule(self, errors):
        defaults = TrainConfig.__dataclass_fields__
        for name, low, high in (("epochs", 0.0, None), ("warmup_fraction", 0.0, 1.0)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (high is None and value == low) or (
                    high is not None and value >= high):
                errors.append(f"{name}={value!r} (must be {'> 0' if high is None else f'in [{low}, {high})'}, or null)")
        for name in ("epochs", "warmup_fraction"):
            other = EXCLUSIVE_KEYS[name]
            if getattr(self, name) is not None and getattr(self, other) != defaults[other].default:
                errors.append(f"{name}={getattr(self, name)!r} and {other}={getattr(self, other)!r} say the same thing twice "
                              f"({other} is derived from {name}): set one of them")

    def _validate_mini_batch_size(self, errors):
        size, batch = self.mini_batch_size, self.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or (
                size and isinstance(batch, int) and batch > 0 and batch % size):
            errors.append(f"mini_batch_size={size!r} (valid: a positive integer dividing batch_size={batch!r}, "
                          "or 0 for no gradient caching)")

    def _validate_selection_and_negatives(self, errors):
        from tf_dualenc.evaluation.trec_metrics import parse_measure

        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
            errors.append(f"validation_fraction={fraction!r} (must be in [0, 1))")
        elif fraction > 0 and self.data and not os.path.isdir(self.data):
            errors.append(f"validation_fraction={fraction} needs a BEIR folder (queries with qrels); data={self.data!r} is not one")
        try:
            parse_measure(self.validation_metric)
        except (ValueError, TypeError):
            errors.append(f"validation_metric={self.validation_metric!r} (valid forms: NDCG@k, MRR@k, P@k, Recall@k, MAP@k)")
        if self.distillation is not None:
            if not os.path.exists(str(self.distillation)):
                errors.append(f"distillation={self.distillation!r} does not exist (a trained cross-encoder: the .keras file "
                              "`tf-dualenc train-reranker` writes)")
            if not (isinstance(self.num_negatives, int) and self.num_negatives >= 1):
                errors.append("distillation needs hard negatives, num_negatives >= 1 (mined with hard_negatives, or from "
                              "pair files that have them): the cross-encoder scores each query's positive and hard negatives")
        if self.hard_negatives is None:
            return
        if self.hard_negatives not in HARD_NEGATIVE_MINERS and not os.path.isfile(str(self.hard_negatives)):
            errors.append(f"hard_negatives={self.hard_negatives!r} (valid: {list(HARD_NEGATIVE_MINERS)}, a pair JSONL file "
                          "with negatives, or null)")
        if self.hard_negatives in HARD_NEGATIVE_MINERS and not (self.data and os.path.isdir(self.data)):
            errors.append(f"hard_negatives={self.hard_negatives!r} mines from a BEIR folder's corpus; data={self.data!r} is not one")
        if self.num_negatives == 0:
            errors.append(f"hard_negatives={self.hard_negatives!r} needs num_negatives >= 1 (negatives per training pair)")

    def to_dict(self):
        return dataclasses.asdict(self)


def _layer(below, above):
    """`above` over `below`, where a key of `above` also clears its `EXCLUSIVE_KEYS` partner from `below` (to its
    default): `steps` set over a recipe with `epochs` trains `steps` steps."""
    merged = dict(below)
    defaults = TrainConfig.__dataclass_fields__
    for key in above:
        partner = EXCLUSIVE_KEYS.get(key)
        if partner is not None and partner not in above and partner in merged:
            merged[partner] = defaults[partner].default
    merged.update(above)
    return merged


def parse_value(key, raw, annotation):
    """A `--set key=raw` string as the type `annotation` names (bool, int, float, str, lists, Optional); ValueError
    naming `key` otherwise. Also used for the pipeline config's `train.KEY` overrides (tf_dualenc.tfx)."""
    base = annotation
    if typing.get_origin(annotation) is typing.Union:
        if raw.lower() in ("none", "null"):
            return None
        base = [a for a in typing.get_args(annotation) if a is not type(None)][0]
    try:
        if base is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError
        return base(raw)
    except ValueError:
        raise ValueError(f"--set {key}={raw!r}: expected a {base.__name__}.") from None
