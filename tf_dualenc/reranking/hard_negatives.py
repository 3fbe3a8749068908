"""Hard negatives: mined from BM25 or a trained dual encoder (known positives excluded), then denoised by a
cross-encoder as RocketQA does — a mined "negative" the cross-encoder thinks is likely relevant is dropped, since
unlabelled positives are common in retrieval data (Qu et al. 2021)."""

import numpy as np

MINERS = ("bm25", "dense")


def mine_hard_negatives(dataset, *, retriever="bm25", model=None, depth=100, skip_top=0, title_separator=" ", batch_size=64,
                        queries=None):
    """Top-ranked non-positive documents per query.

    Args:
        dataset: a `BeirDataset` split (its corpus is searched; its qrels rows with score > 0 are the positives).
        retriever: "bm25" or "dense" (then `model`: anything with `encode_queries` / `encode_documents`).
        depth: documents retrieved per query; negatives are what remains after removing positives.
        skip_top: also drop the first `skip_top` non-positive hits (they are the likeliest unlabelled positives).
        queries: optional subset of query ids (default: every query with a positive).

    Returns:
        {query id: [(document id, text), ...]} in rank order.
    """
    if retriever not in MINERS:
        raise ValueError(f"retriever={retriever!r} (valid: {list(MINERS)}).")
    if retriever == "dense" and model is None:
        raise ValueError("retriever='dense' needs a `model` (a DualEncoder or an ExportedDualEncoder).")
    positives = {q: {d for d, s in docs.items() if s > 0} for q, docs in dataset.qrels.items()}
    query_ids = [q for q in (queries if queries is not None else dataset.qrels) if positives.get(q)]
    doc_ids = list(dataset.corpus)
    texts = [dataset.document_text(d, title_separator) for d in doc_ids]
    query_texts = [dataset.queries[q] for q in query_ids]
    if retriever == "bm25":
        from tf_dualenc.evaluation.bm25_baseline import bm25_run

        run = bm25_run(doc_ids, texts, query_ids, query_texts, k=depth)
        ranked = {q: sorted(run.get(q, {}), key=lambda d: -run[q][d]) for q in query_ids}
    else:
        from tf_dualenc.evaluation import exact_top_k

        indices, _ = exact_top_k(model.encode_queries(query_texts, batch_size=batch_size),
                                 model.encode_documents(texts, batch_size=batch_size), min(depth, len(doc_ids)))
        ranked = {q: [doc_ids[int(i)] for i in row] for q, row in zip(query_ids, indices)}
    text_of = dict(zip(doc_ids, texts))
    return {q: [(d, text_of[d]) for d in [d for d in ranked[q] if d not in positives[q]][skip_top:]] for q in query_ids}


def denoise_candidates(query, candidates, scorer, threshold=0.9):
    """Splits mined negatives into (kept, dropped): dropped when the cross-encoder's probability sigmoid(score) of
    relevance exceeds `threshold` (likely an unlabelled positive).

    Args:
        query: the query text.
        candidates: [(document id, text), ...].
        scorer: (queries, documents) → scores (logits), e.g. `CrossEncoder.score_pairs`.
        threshold: probability in (0, 1); RocketQA keeps negatives the cross-encoder scores as confidently irrelevant.

    Returns:
        (kept, dropped): lists of (document id, text, probability), in the input order.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold={threshold!r} must be a probability in (0, 1).")
    if not candidates:
        return [], []
    scores = np.asarray(scorer([query] * len(candidates), [text for _, text in candidates]), np.float64)
    probabilities = 1.0 / (1.0 + np.exp(-scores))
    kept, dropped = [], []
    for (doc_id, text), probability in zip(candidates, probabilities):
        (dropped if probability > threshold else kept).append((doc_id, text, float(probability)))
    return kept, dropped
