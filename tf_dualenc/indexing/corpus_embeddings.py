"""A corpus's document embeddings, saved by whoever encoded it so an index build need not encode it again (the
pipeline's evaluator encodes the evaluation corpus with the candidate model; the indexer builds the blessed model's
index from those vectors: `index_embeddings`).

Folder layout:

    corpus_embeddings.json   {"format_version", "corpus_fingerprint", "model", "count", "dimension"}
    ids.json                 row i's document id
    embeddings.npy           [N, D] float32

Vectors are only worth reusing for the very texts and the very encoder the index would use, so `reusable_embeddings`
checks both: `corpus_fingerprint` hashes the (id, text) pairs exactly as they were encoded (the title separator and
any reader difference included), and `model` names the encoder (the pipeline uses the Model artifact's URI).
"""

import hashlib
import json
import os

import numpy as np

METADATA = "corpus_embeddings.json"
FORMAT_VERSION = 1


def corpus_fingerprint(documents):
    """SHA-256 of (id, text) pairs, independent of their order (readers and Beam jobs order documents differently)."""
    digest = hashlib.sha256()
    for doc_id, text in sorted((str(doc_id), text) for doc_id, text in documents):
        digest.update((json.dumps([doc_id, text], ensure_ascii=False) + "\n").encode("utf-8"))
    return digest.hexdigest()


def write_corpus_embeddings(folder, documents, embeddings, *, model):
    """Saves `embeddings` ([N, D], row i for documents[i] = (id, text)) under `folder`; returns the metadata."""
    documents = list(documents)
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(documents):
        raise ValueError(f"{len(documents)} documents but embeddings of shape {embeddings.shape}.")
    metadata = {"format_version": FORMAT_VERSION, "corpus_fingerprint": corpus_fingerprint(documents), "model": str(model),
                "count": int(embeddings.shape[0]), "dimension": int(embeddings.shape[1])}
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "embeddings.npy"), embeddings)
    with open(os.path.join(folder, "ids.json"), "w", encoding="utf-8") as f:
        json.dump([str(doc_id) for doc_id, _ in documents], f)
    # Written last: a folder whose metadata exists is complete.
    with open(os.path.join(folder, METADATA), "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")
    return metadata


def reusable_embeddings(folder, documents, *, model):
    """(embeddings [N, D] in the order of `documents`, "") when `folder` holds vectors of exactly these (id, text)
    pairs encoded by `model`; otherwise (None, why not)."""
    path = os.path.join(folder, METADATA)
    if not os.path.isfile(path):
        return None, f"no saved embeddings in {folder}"
    with open(path, encoding="utf-8") as f:
        metadata = json.load(f)
    if metadata.get("format_version") != FORMAT_VERSION:
        return None, f"{path}: format_version {metadata.get('format_version')!r}, this tf_dualenc reads {FORMAT_VERSION}"
    if metadata["model"] != str(model):
        return None, f"the saved embeddings are of another model ({metadata['model']}, not {model})"
    documents = list(documents)
    if metadata["corpus_fingerprint"] != corpus_fingerprint(documents):
        return None, (f"the saved embeddings are of another corpus ({metadata['count']} documents, fingerprint "
                      f"{metadata['corpus_fingerprint'][:12]}; this one: {len(documents)}, {corpus_fingerprint(documents)[:12]})")
    with open(os.path.join(folder, "ids.json"), encoding="utf-8") as f:
        row_of = {doc_id: row for row, doc_id in enumerate(json.load(f))}
    embeddings = np.load(os.path.join(folder, "embeddings.npy"))
    if embeddings.shape != (metadata["count"], metadata["dimension"]) or len(row_of) != len(embeddings):
        return None, f"{folder}: embeddings of shape {embeddings.shape} and {len(row_of)} ids disagree with {METADATA}"
    return embeddings[[row_of[str(doc_id)] for doc_id, _ in documents]], ""
