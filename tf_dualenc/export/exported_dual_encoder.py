"""Exports used like the in-process models: a dual encoder (`encode_queries` / `encode_documents`) and a cross-encoder
(`score_pairs`), over their SavedModel signatures."""

import numpy as np


class _ExportedPreprocessor:
    """What `token_budget.count_at_budget` reads of a preprocessor, from an export's `<side>_padding_mask` function."""

    def __init__(self, function, sequence_length):
        self._function = function
        self.sequence_length = int(sequence_length)

    def __call__(self, texts):
        return {"padding_mask": self._function(texts)}


class ExportedDualEncoder:
    """Wraps an encoder export (`export_encoder`) so evaluation and indexing run on exactly what is served.

    Texts are encoded in batches ordered by length (less padding per batch, as `DualEncoder.encode_*` does)
    and returned in input order.

    Args:
        export_dir: a SavedModel version folder written by `export_encoder`.

    Example:
    ```python
    encoder = ExportedDualEncoder("/models/scifact/3")
    report = evaluate_retrieval(load_beir("scifact", "test"), model=encoder)
    ```
    """

    def __init__(self, export_dir):
        from tf_dualenc.export.saved_model_export import export_precision, load_export, read_manifest

        self.export_dir = export_dir
        self.manifest = read_manifest(export_dir)
        if self.manifest.get("kind") != "encoder":
            raise ValueError(f"{export_dir} is a {self.manifest.get('kind')!r} export; an encoder export (export_encoder) is needed.")
        self._loaded = load_export(export_dir)
        self.embedding_dim = int(self.manifest["embedding_dim"])
        self.precision = export_precision(self.manifest)
        # Each side's token budget, for `tf_dualenc.models.token_budget.truncation_report` (None: an export written
        # before exports carried their preprocessors' padding masks).
        for side in ("query", "document"):
            function = getattr(self._loaded, f"{side}_padding_mask", None)
            setattr(self, f"{side}_preprocessor",
                    None if function is None else _ExportedPreprocessor(function, self.manifest[f"{side}_sequence_length"]))

    def _encode(self, signature, texts, batch_size, verbose=0):
        import tensorflow as tf

        from tf_dualenc.progress import Progress

        texts = list(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
        function = self._loaded.signatures[signature]
        output = np.zeros((len(texts), self.embedding_dim), np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        progress = Progress(len(texts), "queries" if signature == "encode_query" else "documents", enabled=bool(verbose))
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            output[rows] = function(text=tf.constant([texts[i] for i in rows]))["embedding"].numpy()
            progress.update(len(rows))
        return output

    def encode_queries(self, texts, batch_size=64, verbose=0):
        """texts → [N, D] float32 query embeddings; `verbose=1` shows progress on stderr, as `DualEncoder.encode_queries`."""
        return self._encode("encode_query", texts, batch_size, verbose)

    def encode_documents(self, texts, batch_size=64, verbose=0):
        """texts → [N, D] float32 document embeddings; `verbose=1` shows progress on stderr, as `DualEncoder.encode_documents`."""
        return self._encode("encode_document", texts, batch_size, verbose)

    def __repr__(self):
        return f"ExportedDualEncoder({self.export_dir!r}, version={self.manifest.get('version')})"


class ExportedCrossEncoder:
    """A cross-encoder export (`export_cross_encoder`) with `score_pairs`, like the in-process `CrossEncoder`."""

    def __init__(self, export_dir):
        from tf_dualenc.export.saved_model_export import load_export, read_manifest

        self.export_dir = export_dir
        self.manifest = read_manifest(export_dir)
        if self.manifest.get("kind") != "cross_encoder":
            raise ValueError(f"{export_dir} is a {self.manifest.get('kind')!r} export; a cross-encoder export (export_cross_encoder) is needed.")
        self._loaded = load_export(export_dir)

    def score_pairs(self, queries, documents, batch_size=32):
        """Lists of N query and N document strings → float32 [N] scores (batched by length, input order kept)."""
        import tensorflow as tf

        queries, documents = list(queries), list(documents)
        if len(queries) != len(documents):
            raise ValueError(f"score_pairs needs as many queries as documents; got {len(queries)} and {len(documents)}.")
        function = self._loaded.signatures["score"]
        out = np.zeros(len(queries), np.float32)
        order = np.argsort([-(len(q) + len(d)) for q, d in zip(queries, documents)], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = function(query=tf.constant([queries[i] for i in rows]), document=tf.constant([documents[i] for i in rows]))["score"].numpy()
        return out

    def __repr__(self):
        return f"ExportedCrossEncoder({self.export_dir!r}, version={self.manifest.get('version')})"
