"""The dual-encoder task model: preprocessors, query/document towers, projection, L2 normalisation."""

import keras
import numpy as np
import tensorflow as tf

from tf_dualenc.progress import Progress

ARCHITECTURES = ("sde", "ade", "ade_spl")


def tower_output_dim(tower):
    """The width of a tower's output (what a projection or a scoring head on top of it takes)."""
    dim = getattr(tower, "output_dim", None)
    if dim is None:
        dim = tower.output.shape[-1]
    return int(dim)


def trim_to_longest(features):
    """Cuts a batch of token features to its longest text (the preprocessors pad at the end, so the rest is padding)."""
    mask = features.get("padding_mask")
    if mask is None:
        return features
    length = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=-1)), 1)
    return {key: value[..., :length] if value.shape.rank and value.shape.rank >= 2 else value for key, value in features.items()}


def pairs_as_inputs(parts):
    """A (query, document) or (query, document, negatives) tuple → the dict `DualEncoder.call` reads."""
    if len(parts) not in (2, 3):
        raise ValueError(
            f"A DualEncoder input tuple is (query, document) or (query, document, negatives); got {len(parts)} parts. "
            "Ids for `mask_duplicates` go beside it as the target: ((query, document), ids)."
        )
    return dict(zip(("query", "document", "negatives"), parts))


def _is_text_spec(spec):
    return isinstance(spec, (tf.TensorSpec, tf.RaggedTensorSpec)) and spec.dtype == tf.string


def _as_text_tensor(value):
    # Keras' in-memory data adapters take tensors and numeric arrays, not Python lists of strings.
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype.kind in "OUS"):
        return tf.constant(value, tf.string)
    return value


def as_keras_data(data):
    """What `fit` / `evaluate` / `predict` accept beyond Keras' own forms → a form Keras passes to `call` unchanged.

    - In memory: a (query, document[, negatives]) tuple, or a dict, of string lists, arrays or tensors.
    - A dataset of flat (query, document[, negatives]) string tuples. Keras reads a dataset element (a, b) as
      (inputs, targets): left alone, the documents would become the loss's `y_true` and the model would see the
      queries only. Elements (inputs, ids) and dicts pass as they are.
    """
    if isinstance(data, (tuple, list)) and not any(isinstance(part, (str, bytes)) for part in data):
        data = pairs_as_inputs(data)
    if isinstance(data, dict):
        return {key: _as_text_tensor(value) for key, value in data.items()}
    if not isinstance(data, tf.data.Dataset):
        return data
    dataset = data
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or not _is_text_spec(spec[0]):
        return dataset
    if not all(_is_text_spec(part) for part in spec):
        raise ValueError(
            f"A dataset of flat tuples must hold strings only, (query, document[, negatives]); got {spec}. "
            "Ids for `mask_duplicates` go beside the texts: ((query, document), ids)."
        )
    return dataset.map(lambda *parts: (pairs_as_inputs(parts),))


@keras.saving.register_keras_serializable(package="tf_dualenc")
class DualEncoder(keras.Model):
    """Maps queries and documents to unit vectors with two towers; similarity is their cosine.

    The paper's architectures (Moiseev et al. 2023, Dong et al. 2022):

    - "sde": one tower and one projection shared by queries and documents;
    - "ade": two towers, two projections;
    - "ade_spl": two towers, one shared projection layer (the paper's main setting).

        e_q = normalize(P_q · tower_q(tokens(q)))      e_d = normalize(P_d · tower_d(tokens(d)))

    with P_q = P_d for "sde" and "ade_spl".

    Inputs. `call` takes a dict with "query" and "document" (raw strings [B], or the preprocessors' output
    dicts), and optionally "negatives" (strings [B, N] or token dicts with [B, N, L] tensors: hard-negative
    documents), or the same as a (query, document[, negatives]) tuple. It returns the stacked embeddings
    [B, 2 + N, D]: `[:, 0]` queries, `[:, 1]` documents, `[:, 2:]` hard negatives — the layout the losses in
    `tf_dualenc.losses` read as `y_pred`. `fit`, `evaluate` and `predict` take those inputs as Keras does, and also
    as a dataset of (query, document[, negatives]) string tuples or as Python lists (`as_keras_data`).

    Args:
        query_tower: a Keras model mapping the query preprocessor's output dict to [B, H].
        document_tower: the document tower; must be None (or the same object) for "sde".
        query_preprocessor: a layer mapping raw strings [B] to the query tower's input dict.
        document_preprocessor: the same for documents (usually a longer sequence length).
        architecture: one of "sde", "ade", "ade_spl".
        embedding_dim: size of the projected embedding.
        projection_initializer: initializer of the projection kernel(s). "identity" (needs embedding_dim equal
            to the tower size) starts a pretrained tower exactly at its own embeddings.
        trim_padding: cut each batch's token tensors to its longest text before the tower runs (the
            preprocessors pad to a fixed length). Attention and pooling are masked, so embeddings are the same
            up to float rounding, and short texts cost far less. Turn it off where shapes must be static
            (TPU, XLA), which the trainer does.

    Example:
    ```python
    model = DualEncoder.from_preset("tiny", vocabulary="spiece.model", architecture="ade_spl")
    model.compile(optimizer=keras.optimizers.Adafactor(1e-3), loss=SamToNeLoss())
    model.fit(tf.data.Dataset.from_tensor_slices((queries, documents)).batch(512, drop_remainder=True))
    q = model.encode_queries(["who wrote hamlet"])
    d = model.encode_documents(["Hamlet is a tragedy by William Shakespeare."])
    model.similarity(q, d)
    ```
    """

    def __init__(
        self,
        query_tower,
        query_preprocessor,
        document_preprocessor,
        document_tower=None,
        architecture="ade_spl",
        embedding_dim=None,
        projection_initializer="glorot_uniform",
        trim_padding=True,
        **kwargs,
    ):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"`architecture` must be one of {ARCHITECTURES}; got {architecture!r}.")
        if architecture == "sde" and document_tower is not None and document_tower is not query_tower:
            raise ValueError("architecture='sde' shares one tower: pass `document_tower=None`.")
        if architecture != "sde" and (document_tower is None or document_tower is query_tower):
            raise ValueError(f"architecture={architecture!r} needs a separate `document_tower`.")
        super().__init__(**kwargs)
        self.architecture = architecture
        self.query_tower = query_tower
        self.document_tower = query_tower if architecture == "sde" else document_tower
        self.query_preprocessor = query_preprocessor
        self.document_preprocessor = document_preprocessor

        query_dim = tower_output_dim(self.query_tower)
        document_dim = tower_output_dim(self.document_tower)
        if architecture == "ade_spl" and query_dim != document_dim:
            raise ValueError(
                f"architecture='ade_spl' shares one projection, so both towers need the same output size; "
                f"got query {query_dim} and document {document_dim}."
            )
        embedding_dim = int(embedding_dim or query_dim)
        if embedding_dim <= 0:
            raise ValueError(f"`embedding_dim` must be positive; got {embedding_dim}.")
        if keras.initializers.get(projection_initializer).__class__.__name__ == "Identity" and embedding_dim not in (
            query_dim,
        ):
            raise ValueError(
                f"projection_initializer='identity' needs embedding_dim equal to the tower size {query_dim}; "
                f"got {embedding_dim}."
            )
        self.embedding_dim = embedding_dim
        self.trim_padding = bool(trim_padding)
        self.projection_initializer = keras.initializers.get(projection_initializer)
        self.query_projection = self._projection("query_projection", query_dim)
        if architecture == "ade":
            self.document_projection = self._projection("document_projection", document_dim)
        else:
            self.document_projection = self.query_projection
        self.built = True
        self._encode_fns, self._encode_policies = {}, {}

    def _projection(self, name, input_dim):
        # Linear projection with no bias, as in t5x_retrieval's dual encoders.
        layer = keras.layers.Dense(
            self.embedding_dim,
            use_bias=False,
            kernel_initializer=self.projection_initializer,
            dtype=self.dtype_policy,
            name=name,
        )
        layer.build((None, input_dim))
        return layer

    # ---- graph-level pieces -------------------------------------------------------------------------

    @staticmethod
    def _normalize(x):
        # In float32: a float16 norm of a 768-wide vector can overflow.
        x = tf.cast(x, tf.float32)
        return tf.math.l2_normalize(x, axis=-1)

    def _features(self, inputs, preprocessor):
        if not isinstance(inputs, dict):
            inputs = tf.convert_to_tensor(inputs)
            if inputs.dtype != tf.string:
                raise ValueError(f"Text inputs must be strings; got dtype {inputs.dtype.name}.")
            inputs = preprocessor(inputs)
        return self._trim(inputs)

    def _trim(self, features):
        return trim_to_longest(features) if self.trim_padding else features

    @staticmethod
    def _run_tower(tower, features, training):
        # Inference (training=False, what encoding and exports run) takes the tower's fused graph when it has one:
        # the same numbers, faster (BertEncoderTower.inference_call).
        if training is False and hasattr(tower, "inference_call"):
            return tower.inference_call(features)
        return tower(features, training=training)

    def embed_queries(self, inputs, training=False):
        """Raw strings [B] or query features → [B, D] unit vectors (graph-friendly)."""
        features = self._features(inputs, self.query_preprocessor)
        return self._normalize(self.query_projection(self._run_tower(self.query_tower, features, training)))

    def embed_documents(self, inputs, training=False):
        """Raw strings [B] or document features → [B, D] unit vectors (graph-friendly)."""
        features = self._features(inputs, self.document_preprocessor)
        return self._normalize(self.document_projection(self._run_tower(self.document_tower, features, training)))

    def embed_negatives(self, negatives, training=False):
        """Hard-negative documents, strings [B, N] or token dicts of [B, N, L] tensors → [B, N, D] unit vectors."""
        if isinstance(negatives, dict):
            first = next(iter(negatives.values()))
            batch, count = tf.shape(first)[0], tf.shape(first)[1]
            flat = {k: tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], 0)) for k, v in negatives.items()}
        else:
            negatives = tf.convert_to_tensor(negatives)
            batch, count = tf.shape(negatives)[0], tf.shape(negatives)[1]
            flat = tf.reshape(negatives, [-1])
        embedded = self.embed_documents(flat, training=training)
        return tf.reshape(embedded, [batch, count, self.embedding_dim])

    def call(self, inputs, training=None):
        if isinstance(inputs, (tuple, list)):
            inputs = pairs_as_inputs(inputs)
        if not isinstance(inputs, dict) or "query" not in inputs or "document" not in inputs:
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                "DualEncoder expects a dict with 'query' and 'document' (and optional 'negatives'), or a (query, document"
                f"[, negatives]) tuple; got {got}."
            )
        unknown = set(inputs) - {"query", "document", "negatives"}
        if unknown:
            raise ValueError(f"Unknown DualEncoder input keys {sorted(unknown)}; valid: ['document', 'negatives', 'query'].")
        parts = [
            self.embed_queries(inputs["query"], training=training)[:, None],
            self.embed_documents(inputs["document"], training=training)[:, None],
        ]
        if inputs.get("negatives") is not None:
            parts.append(self.embed_negatives(inputs["negatives"], training))
        return tf.concat(parts, axis=1)

    # ---- Keras training entry points -----------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, *args, **kwargs):
        """`keras.Model.compile`, whose `loss` may also name a loss of the registry (`tf_dualenc.losses.names()`:
        "samtone", "in_batch", "pair"), built with its default settings by `tf_dualenc.losses.get`.

        A name is resolved here rather than by Keras, whose own loss names ("mse", ...) know nothing of these.
        """
        if isinstance(loss, str):
            from tf_dualenc import losses

            if loss in losses.names():
                loss = losses.get(loss)
        return super().compile(optimizer, loss, *args, **kwargs)

    def compile_from_config(self, config):
        """Compiles a loaded model as it was saved (optimizer, loss, metrics), as Keras' own `compile_from_config`
        does. Keras skips that step, with a warning, for any model that overrides `compile`; this one only adds loss
        names, which the saved config never holds (it stores the loss object), so the base behaviour is right here."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """`keras.Model.fit`, whose `x` may also be (query, document[, negatives]) texts: see `as_keras_data`.

        `y`, when given, holds the (query id, document id) pairs a loss with `mask_duplicates=True` reads.
        """
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # Keras ignores it for a dataset, with a warning when it is True
        if isinstance(validation_data, tf.data.Dataset):
            validation_data = as_keras_data(validation_data)
        return super().fit(as_keras_data(x), y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, whose `x` may also be (query, document[, negatives]) texts: see `as_keras_data`."""
        return super().evaluate(as_keras_data(x), y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`, whose `x` may also be (query, document[, negatives]) texts: see `as_keras_data`."""
        return super().predict(as_keras_data(x), *args, **kwargs)

    # ---- user-level encoding -------------------------------------------------------------------------

    def _encode(self, side, texts, batch_size, verbose):
        if isinstance(texts, str):
            raise ValueError(f"encode_{side}s expects a list of strings, not a single string: {texts[:60]!r}.")
        texts = list(texts)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1; got {batch_size}.")
        for i, text in enumerate(texts):
            if not isinstance(text, (str, bytes)):
                raise ValueError(f"encode_{side}s: item {i} is {type(text).__name__}, not a string.")
        # A trace bakes in the layers' dtype policies: after `tf_dualenc.precision.set_precision` the function is made anew.
        policy = self.dtype_policy.name
        if side not in self._encode_fns or self._encode_policies.get(side) != policy:
            embed = self.embed_queries if side == "query" else self.embed_documents
            self._encode_fns[side] = tf.function(
                lambda x: embed(x, training=False),
                input_signature=[tf.TensorSpec([None], tf.string)],
                reduce_retracing=True,
            )
            self._encode_policies[side] = policy
        fn = self._encode_fns[side]
        if not texts:
            return np.zeros((0, self.embedding_dim), np.float32)
        # Batches of similar length (longest first, so the memory peak comes at once): with trim_padding a
        # batch costs its longest text, so sorting saves most of the padding of a mixed-length corpus.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i])) if self.trim_padding else list(range(len(texts)))
        ordered = [texts[i] for i in order]
        progress = Progress(len(ordered), "queries" if side == "query" else "documents", enabled=bool(verbose))
        batches = []
        for i in range(0, len(ordered), batch_size):
            batches.append(fn(tf.constant(ordered[i : i + batch_size], tf.string)).numpy())
            progress.update(len(batches[-1]))
        out = np.concatenate(batches, axis=0)
        result = np.empty_like(out)
        result[np.asarray(order)] = out
        return result

    def encode_queries(self, texts, batch_size=64, verbose=0):
        """Embeds query strings: a list of N strings → float32 array [N, D] of unit vectors.

        Args:
            texts: a list of strings.
            batch_size: texts per forward pass.
            verbose: 1 shows progress on stderr, a line every few seconds with queries done, queries per second and time
                left (`tf_dualenc.progress`); 0 is silent.
        """
        return self._encode("query", texts, batch_size, verbose)

    def encode_documents(self, texts, batch_size=64, verbose=0):
        """Embeds document strings: a list of N strings → float32 array [N, D] of unit vectors.

        Args:
            texts: a list of strings.
            batch_size: texts per forward pass.
            verbose: 1 shows progress on stderr (a corpus takes minutes), a line every few seconds with documents done,
                documents per second and time left (`tf_dualenc.progress`); 0 is silent.
        """
        return self._encode("document", texts, batch_size, verbose)

    @staticmethod
    def similarity(query_embeddings, document_embeddings):
        """Cosine similarity matrix [Nq, Nd] (inputs are normalised here, so any embeddings work)."""
        q = np.asarray(query_embeddings, np.float32)
        d = np.asarray(document_embeddings, np.float32)
        if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
            raise ValueError(
                f"similarity needs [Nq, D] and [Nd, D] arrays with the same D; got {q.shape} and {d.shape}."
            )
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        return q @ d.T

    # ---- presets -------------------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A dual encoder from a preset: a folder written by `save_to_preset`, "all-MiniLM-L6-v2", a T5 size
        ("tiny", "t5_1.1_base", ...; pass `vocabulary=`), or a Hugging Face / keras-hub checkpoint folder.

        Args:
            preset: the name or folder (what each means: `tf_dualenc.models.presets`).
            **kwargs: for a name or checkpoint, the arguments of `build_bert_dual_encoder` / `build_t5_dual_encoder`
                (`architecture`, `embedding_dim`, `query_sequence_length`, `document_sequence_length`, `vocabulary`,
                ...); for a saved preset folder, only the two sequence lengths.

        Example:
        ```python
        model = DualEncoder.from_preset("all-MiniLM-L6-v2", query_sequence_length=64)
        model.save_to_preset("presets/minilm_scifact")
        model = DualEncoder.from_preset("presets/minilm_scifact")
        ```
        """
        from tf_dualenc.models.presets import from_preset

        return from_preset(cls, preset, **kwargs)

    def save_to_preset(self, preset_dir):
        """Writes the model as a preset folder (`model.keras` + `metadata.json`) that `from_preset` loads."""
        from tf_dualenc.models.presets import save_to_preset

        return save_to_preset(self, preset_dir)

    # ---- serialisation -------------------------------------------------------------------------------

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "trainable": self.trainable,
            "architecture": self.architecture,
            "embedding_dim": self.embedding_dim,
            "projection_initializer": keras.initializers.serialize(self.projection_initializer),
            "trim_padding": self.trim_padding,
            "query_tower": serialize(self.query_tower),
            "document_tower": None if self.architecture == "sde" else serialize(self.document_tower),
            "query_preprocessor": serialize(self.query_preprocessor),
            "document_preprocessor": serialize(self.document_preprocessor),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("query_tower", "document_tower", "query_preprocessor", "document_preprocessor"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
