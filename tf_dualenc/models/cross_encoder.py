"""The cross-encoder re-ranker: one tower reads the query and the document together; a linear head scores the pair."""

import keras
import numpy as np
import tensorflow as tf

from tf_dualenc.models.dual_encoder import tower_output_dim, trim_to_longest

PAIR_FORMATS = ("segments", "joined")


@keras.saving.register_keras_serializable(package="tf_dualenc")
class CrossEncoder(keras.Model):
    """Scores (query, document) pairs: s(q, d) = w · pool(tower(tokens(q, d))) + b.

    A cross-encoder attends across the query and the document, so it ranks more precisely than a dual encoder but
    costs one forward pass per pair: it re-ranks a dual encoder's top-k (`tf_dualenc.reranking`). Trained listwise
    (`tf_dualenc.losses.listwise_softmax_loss`: one positive against the query's other candidates), its scores are
    logits; `probability = sigmoid(score)` is what RocketQA-style denoising thresholds.

    Inputs to `call`: {"query": strings [B], "documents": strings [B, C]} → scores [B, C].

    Args:
        tower: a Keras model mapping the preprocessor's output dict to [B, H] (`BertEncoderTower`, `T5EncoderTower`).
        preprocessor: raw text → the tower's input dict. With pair_format="segments" it takes (queries, documents) and
            packs them as BERT does ([CLS] q [SEP] d [SEP], segment ids; `BertTextClassifierPreprocessor`); with "joined"
            it takes one string "query: q document: d" (T5, whose preprocessor has no segments).
        pair_format: "segments" or "joined".
        trim_padding: cut each batch to its longest pair (off where shapes must be static: TPU, XLA).

    Example:
    ```python
    reranker = build_bert_cross_encoder("all-MiniLM-L6-v2", sequence_length=256)
    reranker.score_pairs(["who wrote hamlet"], ["Hamlet is a tragedy by William Shakespeare."])
    ```

    Reference: Nogueira & Cho 2019 (BERT re-ranking); Qu et al. 2021 (RocketQA); Ren et al. 2021 (RocketQAv2).
    """

    def __init__(self, tower, preprocessor, pair_format="segments", trim_padding=True, **kwargs):
        if pair_format not in PAIR_FORMATS:
            raise ValueError(f"`pair_format` must be one of {list(PAIR_FORMATS)}; got {pair_format!r}.")
        super().__init__(**kwargs)
        self.tower = tower
        self.preprocessor = preprocessor
        self.pair_format = pair_format
        self.trim_padding = bool(trim_padding)
        self.head = keras.layers.Dense(1, name="score_head")
        self.head.build((None, tower_output_dim(tower)))
        self.built = True
        self._score_fn = None

    def _features(self, queries, documents):
        queries, documents = tf.convert_to_tensor(queries), tf.convert_to_tensor(documents)
        for name, texts in (("queries", queries), ("documents", documents)):
            if texts.dtype != tf.string:
                raise ValueError(f"CrossEncoder {name} must be strings; got dtype {texts.dtype.name}.")
        if self.pair_format == "segments":
            # `.call`: the layer's __call__ would read a (queries, documents) tuple as (x, y). `build` makes the packer
            # from the tokenizer's special tokens, so it must run after a loaded model's vocabulary is restored.
            packer = getattr(self.preprocessor, "packer", None)
            if packer is None or packer.start_value is None:
                self.preprocessor.build(None)
            features = self.preprocessor.call((queries, documents))
        else:
            features = self.preprocessor(tf.strings.join(["query: ", queries, " document: ", documents]))
        return trim_to_longest(features) if self.trim_padding else features

    def score(self, queries, documents, training=False):
        """Strings [B] and [B] → scores [B] (float32 logits; graph-friendly)."""
        pooled = self.tower(self._features(queries, documents), training=training)
        return tf.cast(tf.squeeze(self.head(pooled), -1), tf.float32)

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict) or set(inputs) != {"query", "documents"}:
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(f"CrossEncoder expects a dict with 'query' [B] and 'documents' [B, C]; got {got}.")
        queries = tf.convert_to_tensor(inputs["query"])
        documents = tf.convert_to_tensor(inputs["documents"])
        batch, count = tf.shape(documents)[0], tf.shape(documents)[1]
        flat_queries = tf.reshape(tf.repeat(queries[:, None], count, axis=1), [-1])
        scores = self.score(flat_queries, tf.reshape(documents, [-1]), training=training)
        return tf.reshape(scores, [batch, count])

    def score_pairs(self, queries, documents, batch_size=32):
        """Lists of N query and N document strings → float32 [N] scores (batched by length, input order kept)."""
        queries, documents = list(queries), list(documents)
        if len(queries) != len(documents):
            raise ValueError(f"score_pairs needs as many queries as documents; got {len(queries)} and {len(documents)}.")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1; got {batch_size}.")
        if not queries:
            return np.zeros((0,), np.float32)
        if self._score_fn is None:
            spec = tf.TensorSpec([None], tf.string)
            self._score_fn = tf.function(lambda q, d: self.score(q, d), input_signature=[spec, spec], reduce_retracing=True)
        order = sorted(range(len(queries)), key=lambda i: -(len(queries[i]) + len(documents[i])))
        out = np.empty(len(queries), np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._score_fn(tf.constant([queries[i] for i in rows]), tf.constant([documents[i] for i in rows])).numpy()
        return out

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A cross-encoder from a preset: a `save_to_preset` folder (takes only `sequence_length`), "all-MiniLM-L6-v2"
        or a BERT checkpoint folder (`build_bert_cross_encoder`'s arguments), a T5 size or T5 checkpoint folder
        (`build_t5_cross_encoder`'s). What each preset means: `tf_dualenc.models.presets`."""
        from tf_dualenc.models.presets import from_preset

        return from_preset(cls, preset, **kwargs)

    def save_to_preset(self, preset_dir):
        """Writes the model as a preset folder (`model.keras` + `metadata.json`) that `from_preset` loads."""
        from tf_dualenc.models.presets import save_to_preset

        return save_to_preset(self, preset_dir)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "trainable": self.trainable,
            "tower": serialize(self.tower),
            "preprocessor": serialize(self.preprocessor),
            "pair_format": self.pair_format,
            "trim_padding": self.trim_padding,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("tower", "preprocessor"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
