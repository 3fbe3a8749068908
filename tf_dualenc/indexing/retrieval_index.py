"""A document index on disk: ids, texts, embeddings and a ScaNN searcher (or exact search for small corpora).

Folder layout (everything listed, with sizes and SHA-256, in `manifest.json`):

    manifest.json        model, dimension, count, build config, recall@10 vs exact search, checksums
    ids.jsonl            one JSON string per line: row i's document id
    documents.jsonl      row i's {"id", "text"}; documents.offsets.npy holds each line's byte offset
    embeddings.npy       [N, D] float32 unit vectors (exact search and ScaNN's exact re-scoring)
    scann/               the serialised ScaNN searcher (method "scann" only)
    bm25/                BM25 over the stored documents, when the recorded search fuses it (`record_search`)

The manifest's `search` (when recorded) is the ranking chosen for the index on validation: dense alone, or BM25
interpolated with dense at a weight (`RetrievalIndex.search_recorded` answers it).

`build_index` writes into a temporary sibling folder and renames it when complete, so a crashed build never
leaves a folder that loads (the next build removes a killed build's temporary folder); `RetrievalIndex.load` checks
every file against the manifest.
"""

import hashlib
import json
import os
import shutil
import time
import uuid

import numpy as np

from tf_dualenc.index_config import INDEX_METHODS, MIN_SCANN_DOCUMENTS, scann_build_config
from tf_dualenc.process_owner import owner_is_dead, this_host

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
BM25_FOLDER = "bm25"


class RetrievalIndexError(ValueError):
    """A missing, incomplete or corrupted index folder, or a bad build request."""


def _sha256(path, chunk=1 << 22):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _files(folder):
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if rel != MANIFEST:
                yield rel, path


def build_scann_searcher(embeddings, config, k=10):
    from tf_dualenc.extras import require

    require("scann", feature="a ScaNN index")
    from scann.scann_ops.py import scann_ops_pybind

    builder = scann_ops_pybind.builder(embeddings, k, "dot_product")
    builder = builder.tree(
        num_leaves=config["num_leaves"],
        num_leaves_to_search=config["num_leaves_to_search"],
        training_sample_size=config["training_sample_size"],
    )
    builder = builder.score_ah(config["dimensions_per_block"], anisotropic_quantization_threshold=config["anisotropic_quantization_threshold"])
    return builder.reorder(config["reordering_num_neighbors"]).build()


def _owned_sibling(output_dir, kind):
    # The owner's pid and host are in the name, so a later build can tell a killed build's folder from a running one's.
    return f"{output_dir}.{kind}-{os.getpid()}-{this_host()}-{uuid.uuid4().hex[:8]}"


def remove_dead_builds(output_dir, print_fn=print):
    """Removes the `<output_dir>.tmp-*` / `.old-*` folders of builds whose process ended without cleaning up (kill -9,
    a crash); those of running builds, of other hosts, or without an owner in their name are left alone."""
    parent, name = os.path.split(os.path.abspath(output_dir))
    if not os.path.isdir(parent):
        return
    for entry in sorted(os.listdir(parent)):
        for kind in ("tmp", "old"):
            prefix = f"{name}.{kind}-"
            if not entry.startswith(prefix):
                continue
            pid, _, rest = entry[len(prefix):].partition("-")
            host = rest.rpartition("-")[0]
            if pid.isdigit() and host and owner_is_dead(int(pid), host):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
                print_fn(f"removed {os.path.join(parent, entry)}, left by build process {pid} on {host}, which has ended")


def build_index(records, output_dir, *, dimension, count, model_info=None, method="auto", brute_force_below=20_000, k=10,
                scann_config=None, recall_queries=None, overwrite=False, print_fn=print):
    """Writes an index folder from a stream of (id, text, embedding) records.

    Args:
        records: an iterable of (document_id, text, embedding [D]) — read once, never held as a list: the
            embeddings go straight into `embeddings.npy` (memory-mapped).
        output_dir: the index folder to create.
        dimension, count: D and N (the encoding job knows them; they size the memory map).
        model_info: recorded in the manifest (export path, version, ...).
        method: "scann", "brute_force", or "auto" (brute force below `brute_force_below` documents).
        scann_config: overrides of `scann_build_config(count, k)`.
        recall_queries: [Nq, D] query vectors for the recall@10 check against exact search (default: 200
            document vectors).
        overwrite: replace an existing index folder (the old one is removed only after the new one is in place).
    """
    output_dir = os.path.abspath(output_dir)
    method = _check_build_request(output_dir, method, count, dimension, brute_force_below, overwrite)
    config = dict(scann_build_config(count, k), **(scann_config or {})) if method == "scann" else {}
    remove_dead_builds(output_dir, print_fn)
    tmp = _owned_sibling(output_dir, "tmp")
    os.makedirs(tmp)
    try:
        started = time.perf_counter()
        embeddings = _write_rows(tmp, records, count, dimension)
        encode_seconds = time.perf_counter() - started
        build_start = time.perf_counter()
        searcher = _build_searcher(tmp, method, embeddings, config, k)
        build_seconds = time.perf_counter() - build_start
        recall, queries = _recall_vs_exact(embeddings, searcher, recall_queries)
        manifest = {
            "format_version": FORMAT_VERSION,
            "method": method,
            "count": count,
            "dimension": dimension,
            "model": model_info or {},
            "build_config": config,
            "recall_at_10_vs_exact": {"recall": round(recall, 4), "queries": int(len(queries)),
                                      "sample": "given queries" if recall_queries is not None else "document vectors"},
            "seconds": {"write": round(encode_seconds, 3), "build": round(build_seconds, 3)},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {rel: {"bytes": os.path.getsize(path), "sha256": _sha256(path)} for rel, path in _files(tmp)},
        }
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        del embeddings
        _move_into_place(tmp, output_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    print_fn(f"index: {output_dir} ({method}, {count} x {dimension}); recall@10 vs exact {recall:.4f} on {len(queries)} queries")
    return manifest


def _check_build_request(output_dir, method, count, dimension, brute_force_below, overwrite):
    """Refuses a request `build_index` cannot fulfil, before anything is written; returns the method "auto" resolves to."""
    if method not in INDEX_METHODS:
        raise RetrievalIndexError(f"method={method!r}; valid: {list(INDEX_METHODS)}.")
    if count < 1 or dimension < 1:
        raise RetrievalIndexError(f"Nothing to index: count={count}, dimension={dimension}.")
    if os.path.exists(output_dir) and not overwrite:
        raise RetrievalIndexError(f"{output_dir} already exists; pass overwrite=True (--overwrite) to replace it.")
    method = ("brute_force" if count < brute_force_below else "scann") if method == "auto" else method
    if method == "scann" and count < MIN_SCANN_DOCUMENTS:
        raise RetrievalIndexError(
            f"method='scann' needs at least {MIN_SCANN_DOCUMENTS} documents to train its quantiser; got {count}. Use 'brute_force'.")
    return method


def _write_rows(folder, records, count, dimension):
    """Streams the records into `embeddings.npy`, `ids.jsonl`, `documents.jsonl` and its offsets; returns the
    embeddings' memory map."""
    embeddings = np.lib.format.open_memmap(os.path.join(folder, "embeddings.npy"), mode="w+", dtype=np.float32, shape=(count, dimension))
    offsets = np.empty(count, np.int64)
    seen = set()
    row = 0
    with open(os.path.join(folder, "ids.jsonl"), "w", encoding="utf-8") as ids_file, open(os.path.join(folder, "documents.jsonl"), "wb") as docs_file:
        for doc_id, text, vector in records:
            if row >= count:
                raise RetrievalIndexError(f"More records than count={count}.")
            doc_id = str(doc_id)
            if doc_id in seen:
                raise RetrievalIndexError(f"Duplicate document id {doc_id!r} in the corpus.")
            seen.add(doc_id)
            vector = np.asarray(vector, np.float32)
            if vector.shape != (dimension,) or not np.all(np.isfinite(vector)):
                raise RetrievalIndexError(f"Document {doc_id!r}: embedding of shape {vector.shape} (want ({dimension},)) or not finite.")
            embeddings[row] = vector
            ids_file.write(json.dumps(doc_id) + "\n")
            offsets[row] = docs_file.tell()
            docs_file.write((json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n").encode("utf-8"))
            row += 1
    if row != count:
        raise RetrievalIndexError(f"Expected {count} records, got {row}.")
    embeddings.flush()
    np.save(os.path.join(folder, "documents.offsets.npy"), offsets)
    return embeddings


def _build_searcher(folder, method, embeddings, config, k):
    """The ScaNN searcher, serialised under `folder/scann` (method "scann"); None for brute force."""
    if method != "scann":
        return None
    searcher = build_scann_searcher(np.asarray(embeddings), config, k)
    os.makedirs(os.path.join(folder, "scann"))
    # Relative paths: the folder is renamed into place after the build.
    searcher.serialize(os.path.join(folder, "scann"), relative_path=True)
    return searcher


def _recall_vs_exact(embeddings, searcher, recall_queries=None):
    """(recall@10 of the searcher against exact search, the query vectors used): the given queries, or a fixed
    sample of 200 document vectors."""
    from tf_dualenc.evaluation.exact_search import exact_top_k

    count = len(embeddings)
    rng = np.random.default_rng(0)
    queries = np.asarray(recall_queries, np.float32) if recall_queries is not None else np.asarray(embeddings[np.sort(rng.choice(count, min(200, count), replace=False))])
    depth = min(10, count)
    exact, _ = exact_top_k(queries, embeddings, depth)
    found = exact if searcher is None else searcher.search_batched(queries, final_num_neighbors=depth)[0]
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / depth for a, b in zip(exact, found)])), queries


def _move_into_place(tmp, output_dir):
    """Renames the finished build to `output_dir`; an index already there is removed only once the new one is in place."""
    if os.path.exists(output_dir):
        old = _owned_sibling(output_dir, "old")
        os.replace(output_dir, old)
        os.replace(tmp, output_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, output_dir)


def record_search(folder, search):
    """Records in index `folder` the search chosen for it on validation, `search` ({"fusion": "dense" | "interpolate",
    "weight", "depth", ...}; `tf_dualenc.tfx.components.retrieval_evaluator.choose_search`). With a fusion it also
    builds BM25 over the stored documents and keeps it in `bm25/`, listed with its checksums in the manifest, so the
    index answers the chosen ranking (`RetrievalIndex.search_recorded`) without reading its corpus again. The manifest
    is replaced last, in one rename: until then the folder is the index it was."""
    from tf_dualenc.atomic_write import write_json_atomic
    from tf_dualenc.evaluation.bm25_baseline import BM25Index
    from tf_dualenc.evaluation.hybrid import FUSIONS

    fusion = (search or {}).get("fusion")
    if fusion not in ("dense",) + FUSIONS:
        raise ValueError(f"search fusion {fusion!r} (valid: {['dense', *FUSIONS]})")
    if fusion == "interpolate" and not isinstance(search.get("weight"), (int, float)):
        raise ValueError(f"search {search!r}: 'interpolate' needs the dense share, 'weight', in [0, 1]")
    index = RetrievalIndex.load(folder, verify_checksums=False)
    manifest = dict(index.manifest, search=search)
    bm25_dir = os.path.join(folder, BM25_FOLDER)
    if os.path.exists(bm25_dir):
        shutil.rmtree(bm25_dir)
    if fusion != "dense":
        BM25Index(index.ids, [index.document(row)["text"] for row in range(len(index))]).save(bm25_dir)
    manifest["files"] = {rel: {"bytes": os.path.getsize(path), "sha256": _sha256(path)} for rel, path in _files(folder)}
    write_json_atomic(os.path.join(folder, MANIFEST), manifest)
    return manifest


class RetrievalIndex:
    """Loads an index folder and answers top-k searches by embedding or (with a query encoder) by text.

    Example:
    ```python
    index = RetrievalIndex.load("indexes/scifact")
    hits = index.search_embeddings(query_vectors, k=10)      # [[{"id", "score", "text"}, ...], ...]
    ```
    """

    def __init__(self, folder, manifest, ids, embeddings, offsets, searcher=None):
        self.folder = folder
        self.manifest = manifest
        self.ids = ids
        self.embeddings = embeddings
        self._offsets = offsets
        self._searcher = searcher

    @classmethod
    def load(cls, folder, *, verify_checksums=True):
        manifest_path = os.path.join(folder, MANIFEST)
        if not os.path.isfile(manifest_path):
            raise RetrievalIndexError(f"{folder} is not an index folder (no {MANIFEST}).")
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise RetrievalIndexError(f"{manifest_path}: format_version {manifest.get('format_version')!r}; this tf_dualenc reads {FORMAT_VERSION}.")
        for rel, expected in manifest["files"].items():
            path = os.path.join(folder, rel)
            if not os.path.isfile(path) or os.path.getsize(path) != expected["bytes"]:
                raise RetrievalIndexError(f"{path}: missing or of the wrong size; the index is incomplete.")
            if verify_checksums and _sha256(path) != expected["sha256"]:
                raise RetrievalIndexError(f"{path}: SHA-256 differs from {MANIFEST}; the index is corrupted.")
        with open(os.path.join(folder, "ids.jsonl"), encoding="utf-8") as f:
            ids = [json.loads(line) for line in f]
        embeddings = np.load(os.path.join(folder, "embeddings.npy"), mmap_mode="r")
        offsets = np.load(os.path.join(folder, "documents.offsets.npy"))
        searcher = None
        if manifest["method"] == "scann":
            from tf_dualenc.extras import require

            require("scann", feature=f"{folder}, a ScaNN index,")
            from scann.scann_ops.py import scann_ops_pybind

            searcher = scann_ops_pybind.load_searcher(os.path.join(folder, "scann"))
        return cls(folder, manifest, ids, embeddings, offsets, searcher)

    def __len__(self):
        return len(self.ids)

    @property
    def dimension(self):
        return int(self.manifest["dimension"])

    def document(self, row):
        with open(os.path.join(self.folder, "documents.jsonl"), "rb") as f:
            f.seek(int(self._offsets[row]))
            return json.loads(f.readline())

    def search_embeddings(self, query_embeddings, k=10, *, exact=False, with_text=True):
        """Top-k hits per query vector: lists of {"id", "score"[, "text"]}, best first."""
        from tf_dualenc.evaluation.exact_search import exact_top_k

        queries = np.asarray(query_embeddings, np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"Query embeddings must be [Nq, {self.dimension}]; got {queries.shape}.")
        k = min(int(k), len(self))
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}.")
        if self._searcher is None or exact:
            rows, scores = exact_top_k(queries, self.embeddings, k)
        else:
            rows, scores = self._searcher.search_batched(queries, final_num_neighbors=k)
        results = []
        for row_list, score_list in zip(rows, scores):
            hits = []
            for row, score in zip(row_list, score_list):
                hit = {"id": self.ids[int(row)], "score": float(score)}
                if with_text:
                    hit["text"] = self.document(int(row))["text"]
                hits.append(hit)
            results.append(hits)
        return results

    def search(self, texts, query_encoder, k=10, **kwargs):
        """Encodes query texts with `query_encoder` (a callable: list of strings → [Nq, D]) and searches."""
        if isinstance(texts, str):
            texts = [texts]
        return self.search_embeddings(query_encoder(list(texts)), k, **kwargs)

    def lexical_run(self, texts, depth=100):
        """BM25 over the index's stored documents: {query position (str): {document id: score}}. An index with a
        recorded search (`record_search`) keeps its BM25 index in `bm25/` (loaded once); another builds one in memory
        on first use (seconds for 10^4 documents; it reads every stored text once)."""
        from tf_dualenc.evaluation.bm25_baseline import BM25Index

        if getattr(self, "_bm25", None) is None:
            folder = os.path.join(self.folder, BM25_FOLDER)
            if os.path.isdir(folder):
                self._bm25 = BM25Index.load(folder)
            else:
                self._bm25 = BM25Index(self.ids, [self.document(row)["text"] for row in range(len(self))])
        return self._bm25.run([str(i) for i in range(len(texts))], list(texts), k=min(depth, len(self)))

    @property
    def recorded_search(self):
        """The search chosen for this index on validation (`record_search`): {"fusion": "dense" | "interpolate",
        "weight", "depth", ...}, or None when none was recorded."""
        return self.manifest.get("search")

    def search_recorded(self, texts, query_encoder, k=10, *, exact=False):
        """The index's own search: its recorded fusion of dense and BM25 (`recorded_search`), else dense alone."""
        search = self.recorded_search
        if search and search.get("fusion") == "interpolate":
            return self.search_hybrid(texts, query_encoder, k, fusion="interpolate", weight=search["weight"],
                                      depth=int(search.get("depth", 100)), exact=exact)
        return self.search(texts, query_encoder, k, exact=exact)

    def search_hybrid(self, texts, query_encoder, k=10, *, fusion="rrf", weight=None, depth=100, exact=False):
        """Dense and BM25 retrieval fused (`tf_dualenc.evaluation.hybrid.fuse_runs`: "rrf", or "interpolate" with the
        dense `weight` chosen on a validation split by `tf-dualenc evaluate --hybrid interpolate`); each side
        contributes its top `depth`. Returns lists of {"id", "score", "text"}, best first."""
        from tf_dualenc.evaluation.hybrid import fuse_runs
        from tf_dualenc.evaluation.trec_metrics import rank

        if isinstance(texts, str):
            texts = [texts]
        dense_hits = self.search(texts, query_encoder, k=max(depth, k), exact=exact, with_text=False)
        dense = {str(i): {hit["id"]: hit["score"] for hit in hits} for i, hits in enumerate(dense_hits)}
        fused = fuse_runs(dense, self.lexical_run(texts, depth), fusion, weight=weight)
        row_of = {doc_id: row for row, doc_id in enumerate(self.ids)}
        return [[{"id": doc, "score": float(fused.get(str(i), {})[doc]), "text": self.document(row_of[doc])["text"]}
                 for doc in rank(fused.get(str(i), {}))[:k]] for i in range(len(texts))]
