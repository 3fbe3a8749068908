"""The pipeline config's optional `reranker` section: a cross-encoder trained on candidate lists mined from the ingested
training queries, kept only when re-ranking the blessed search raises the validation metric (`RerankerTrainer`), and
then pushed beside the encoder as a second served model that `search` uses."""

import dataclasses

TOWERS = ("bert", "t5")
NEGATIVES = ("bm25", "dense")
WEIGHT_AUTO = "auto"


@dataclasses.dataclass
class RerankerSection:
    """Keys of the `reranker:` mapping (an empty or absent mapping: no cascade).

    Lists: `negatives` ("bm25", or "dense": mined with the trained dual encoder, the first stage it will re-rank) from
    the top `depth` hits of each training query, the first `skip_top` skipped (near-duplicates of the positive are
    often unlabelled positives); each list is the positive and `list_size` − 1 of its mined negatives.
    Model: `tower` "bert" (`preset`, default all-MiniLM-L6-v2) or "t5" (`size`, `vocabulary`, or `preset`),
    `pair_length` tokens of query + document. Training: `steps`, `batch_size` lists per step, `learning_rate`,
    `warmup_steps`, `pointwise_weight` (`tf_dualenc.losses.reranker_loss`), `seed`.
    Use: the blessed search's top `rerank_k` are re-ranked, the cross-encoder's share of the final score `weight`
    ("auto": chosen on validation, `choose_rerank_weight`) over the first `check_queries` validation queries (0: all).
    Push: `model_name` (default: the pipeline's model_name + "_reranker").
    """

    tower: str = "bert"
    preset: str = ""
    size: str = "tiny"
    vocabulary: str = ""
    pair_length: int = 256
    negatives: str = "bm25"
    depth: int = 30
    skip_top: int = 1
    list_size: int = 4
    steps: int = 200
    batch_size: int = 8
    learning_rate: float = 5e-5
    warmup_steps: int = 0
    pointwise_weight: float = 0.5
    seed: int = 0
    rerank_k: int = 20
    weight: object = WEIGHT_AUTO
    check_queries: int = 0
    model_name: str = ""

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values):
        """The section from a config mapping; unknown keys raise, listing the valid ones."""
        if not isinstance(values, dict):
            raise ValueError(f"reranker={values!r} (must be a mapping of {cls.field_names()})")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"reranker: unknown key(s) {unknown}; valid keys: {cls.field_names()}")
        return cls(**values)

    def errors(self):
        """Every problem with the section's values, each naming the key and the valid values."""
        errors = []
        for name, options in (("tower", TOWERS), ("negatives", NEGATIVES)):
            if getattr(self, name) not in options:
                errors.append(f"reranker.{name}={getattr(self, name)!r} (valid: {list(options)})")
        for name, low in (("pair_length", 8), ("depth", 2), ("skip_top", 0), ("list_size", 2), ("steps", 1), ("batch_size", 1),
                          ("warmup_steps", 0), ("seed", 0), ("rerank_k", 2), ("check_queries", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                errors.append(f"reranker.{name}={value!r} (must be an integer >= {low})")
        for name in ("learning_rate", "pointwise_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (name == "learning_rate" and value == 0):
                errors.append(f"reranker.{name}={value!r} (must be a {'positive' if name == 'learning_rate' else 'non-negative'} number)")
        weight = self.weight
        if weight != WEIGHT_AUTO and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 < weight <= 1.0):
            errors.append(f"reranker.weight={weight!r} (must be 'auto' or the cross-encoder's share in (0, 1])")
        if isinstance(self.depth, int) and isinstance(self.skip_top, int) and isinstance(self.list_size, int) and \
                self.depth - self.skip_top < self.list_size - 1:
            errors.append(f"reranker.depth={self.depth} less skip_top={self.skip_top} leaves fewer than list_size - 1 = "
                          f"{self.list_size - 1} negatives per query")
        if self.tower == "t5" and not (self.vocabulary or self.preset):
            errors.append("reranker.tower='t5' needs reranker.vocabulary (a SentencePiece model) or reranker.preset")
        if self.tower == "bert" and (self.vocabulary or self.size != "tiny"):
            errors.append("reranker.vocabulary and reranker.size are T5 keys; a bert tower takes reranker.preset")
        if self.model_name:
            from tf_dualenc.export.layout import ExportError, check_model_name

            try:
                check_model_name(self.model_name)
            except ExportError as error:
                errors.append(f"reranker.model_name: {error}")
        return errors

    def served_name(self, model_name):
        """The name the cross-encoder is served under beside the encoder `model_name`."""
        return self.model_name or f"{model_name}_reranker"

    def build(self):
        """The untrained cross-encoder this section describes."""
        from tf_dualenc.models import build_bert_cross_encoder, build_t5_cross_encoder

        if self.tower == "bert":
            return build_bert_cross_encoder(self.preset or "all-MiniLM-L6-v2", sequence_length=self.pair_length)
        return build_t5_cross_encoder(self.size, vocabulary=self.vocabulary or None, sequence_length=self.pair_length,
                                      preset=self.preset or None)

    def to_dict(self):
        return dataclasses.asdict(self)
