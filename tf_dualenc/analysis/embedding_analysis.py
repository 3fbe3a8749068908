"""The paper's embedding-space analysis (Moiseev et al. 2023, Section 4) for any trained dual encoder.

For a sample of an evaluation set's queries q_i, their positive documents p_i and a document sample D:

- top-1 cosine: max_{d ∈ D ∪ {p}} cos(q_i, d), the similarity of each query to what it retrieves first;
- same-tower ratio: r_ij = cos(q_i, q_j) / cos(q_i, p_j) for random i ≠ j — near 1.0 when queries sit among
  documents as documents do (SamToNe's effect), far from it when the towers' spaces are apart;
- tower alignment: mean cos(q_i, p_i) − mean cos(q_i, p_j) (j ≠ i), and the distance between the centroids of the
  query and document clouds (0 when the two towers' spaces overlap);
- t-SNE of the sampled queries and positives together, to show whether the towers' spaces are separable.
"""

import dataclasses

import numpy as np

from tf_dualenc.progress import encoder_options


class AnalysisError(ValueError):
    pass


@dataclasses.dataclass
class EmbeddingAnalysis:
    name: str
    query_ids: list
    document_ids: list
    queries: np.ndarray  # [Nq, D] sampled queries
    positives: np.ndarray  # [Nq, D] each query's (first, highest-graded) positive document
    top1_cosines: np.ndarray  # [Nq]
    ratios: np.ndarray  # [P] sim(q_i, q_j) / sim(q_i, p_j)
    pair_indices: np.ndarray  # [P, 2] the (i, j) behind each ratio
    tsne: np.ndarray  # [2 Nq, 2]: queries first, then positives
    summary: dict


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def analyze_embeddings(name, query_ids, query_embeddings, document_ids, document_embeddings, qrels, *, num_pairs=5000,
                       seed=0, tsne=True, tsne_perplexity=30.0):
    """Computes every number and the t-SNE layout behind the three figures from precomputed embeddings.

    Args:
        query_ids, query_embeddings: the sampled queries and their [Nq, D] embeddings.
        document_ids, document_embeddings: the document sample (must include each query's positive).
        qrels: {query id: {document id: grade}}; each query's positive is its highest-graded document.
        num_pairs: random (i, j) pairs, i ≠ j, for the ratio histogram.
    """
    q = _unit(query_embeddings)
    d = _unit(document_embeddings)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise AnalysisError(f"{name}: query embeddings {q.shape} and document embeddings {d.shape} need the same dimension.")
    if len(query_ids) != len(q) or len(document_ids) != len(d):
        raise AnalysisError(f"{name}: {len(query_ids)} query ids for {len(q)} vectors, {len(document_ids)} document ids for {len(d)}.")
    if len(q) < 2:
        raise AnalysisError(f"{name}: need at least 2 queries with a positive document; got {len(q)}.")
    row = {doc_id: i for i, doc_id in enumerate(document_ids)}
    positives = []
    for qid in query_ids:
        judged = {doc: grade for doc, grade in qrels.get(qid, {}).items() if grade > 0}
        if not judged:
            raise AnalysisError(f"{name}: query {qid!r} has no positive document in the qrels.")
        best = max(sorted(judged), key=lambda doc: judged[doc])
        if best not in row:
            raise AnalysisError(f"{name}: the positive {best!r} of query {qid!r} is not among the documents given.")
        positives.append(row[best])
    p = d[positives]

    top1 = (q @ d.T).max(axis=1)
    rng = np.random.default_rng(seed)
    i = rng.integers(len(q), size=num_pairs)
    j = (i + rng.integers(1, len(q), size=num_pairs)) % len(q)  # uniform over j ≠ i
    same = np.einsum("nd,nd->n", q[i], q[j])
    cross = np.einsum("nd,nd->n", q[i], p[j])
    ratios = same / np.where(np.abs(cross) < 1e-6, np.copysign(1e-6, cross), cross)

    own = np.einsum("nd,nd->n", q, p)
    all_pairs = q @ p.T
    off_diagonal = (all_pairs.sum() - np.trace(all_pairs)) / (len(q) * (len(q) - 1))
    summary = {
        "queries": len(q),
        "documents": len(d),
        "dimension": int(q.shape[1]),
        "top1_cosine_mean": float(top1.mean()),
        "top1_cosine_std": float(top1.std()),
        "ratio_median": float(np.median(ratios)),
        "ratio_iqr": float(np.subtract(*np.percentile(ratios, [75, 25]))),
        "ratio_mean_clipped": float(np.clip(ratios, -5, 5).mean()),
        "alignment_positive_minus_random": float(own.mean() - off_diagonal),
        "positive_cosine_mean": float(own.mean()),
        "random_pair_cosine_mean": float(off_diagonal),
        "centroid_distance": float(np.linalg.norm(q.mean(axis=0) - p.mean(axis=0))),
    }
    layout = np.zeros((2 * len(q), 2))
    if tsne:
        from sklearn.manifold import TSNE

        points = np.concatenate([q, p])
        perplexity = min(tsne_perplexity, (len(points) - 1) / 3)
        layout = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine").fit_transform(points)
    return EmbeddingAnalysis(name, list(query_ids), list(document_ids), q, p, top1, ratios, np.stack([i, j], axis=1), layout, summary)


def sample_evaluation_set(dataset, *, num_queries=300, num_documents=2000, seed=0):
    """Query ids with a positive, and a document sample holding their positives plus random others (sorted ids)."""
    rng = np.random.default_rng(seed)
    with_positive = sorted(q for q in dataset.queries if any(g > 0 for g in dataset.qrels.get(q, {}).values()))
    if len(with_positive) < 2:
        raise AnalysisError(f"{dataset.path} ({dataset.split}): fewer than 2 queries with a positive document.")
    query_ids = sorted(rng.choice(with_positive, size=min(num_queries, len(with_positive)), replace=False).tolist())
    needed = {doc for q in query_ids for doc, g in dataset.qrels[q].items() if g > 0 and doc in dataset.corpus}
    others = sorted(set(dataset.corpus) - needed)
    extra = max(0, min(num_documents - len(needed), len(others)))
    document_ids = sorted(needed | set(rng.choice(others, size=extra, replace=False).tolist() if extra else []))
    return query_ids, document_ids


def analyze_model(name, model, dataset, *, num_queries=300, num_documents=2000, seed=0, batch_size=64, title_separator=" ",
                  progress=False, **kwargs):
    """Samples `dataset` (a BeirDataset), embeds with `model` (a DualEncoder) and runs `analyze_embeddings`.
    `progress`: progress lines on stderr while the samples are encoded (`tf_dualenc.progress`)."""
    query_ids, document_ids = sample_evaluation_set(dataset, num_queries=num_queries, num_documents=num_documents, seed=seed)
    verbose = encoder_options(progress)
    queries = model.encode_queries([dataset.queries[q] for q in query_ids], batch_size=batch_size, **verbose)
    documents = model.encode_documents([dataset.document_text(d, title_separator) for d in document_ids], batch_size=batch_size,
                                       **verbose)
    return analyze_embeddings(name, query_ids, queries, document_ids, documents, dataset.qrels, seed=seed, **kwargs)
