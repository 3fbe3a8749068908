"""Hard negatives: mined from BM25 or a trained dual encoder (known positives excluded), then denoised by a
cross-encoder as RocketQA does — a mined "negative" the cross-encoder thinks is likely relevant is dropped, since
unlabelled positives are common in retrieval data (Qu et al. 2021)."""

import numpy as np

from tf_dualenc.mining.candidate_lists import CandidateList
from tf_dualenc.progress import encoder_options

MINERS = ("bm25", "dense")


def mine_hard_negatives(dataset, *, retriever="bm25", model=None, depth=100, skip_top=0, title_separator=" ", batch_size=64,
                        queries=None, progress=False, on_documents=None, ignore_identical_ids=False):
    """Top-ranked non-positive documents per query.

    Args:
        dataset: a `BeirDataset` split (its corpus is searched; its qrels rows with score > 0 are the positives).
        retriever: "bm25" or "dense" (then `model`: anything with `encode_queries` / `encode_documents`).
        depth: documents retrieved per query; negatives are what remains after removing positives.
        skip_top: also drop the first `skip_top` non-positive hits (they are the likeliest unlabelled positives).
        queries: optional subset of query ids (default: every query with a positive).
        progress: dense: progress lines on stderr while the queries and the corpus are encoded (`tf_dualenc.progress`).
        on_documents: dense: called with ([(id, text)], [N, D] embeddings) once the corpus is encoded, so a caller
            can keep the vectors (the pipeline's evaluator scores the starting model with them).
        ignore_identical_ids: the data's BEIR rule (`tf_dualenc.data.evaluation_rules`): a query's own id is excluded
            like a positive (on sets whose queries are also documents, it would be the hardest "negative").

    Returns:
        {query id: [(document id, text), ...]} in rank order.
    """
    if retriever not in MINERS:
        raise ValueError(f"retriever={retriever!r} (valid: {list(MINERS)}).")
    if retriever == "dense" and model is None:
        raise ValueError("retriever='dense' needs a `model` (a DualEncoder or an ExportedDualEncoder).")
    positives = {q: {d for d, s in docs.items() if s > 0} for q, docs in dataset.qrels.items()}
    # Excluded, not positive: a query with no positive still gets no list.
    excluded = {q: found | ({q} if ignore_identical_ids else set()) for q, found in positives.items()}
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

        verbose = encoder_options(progress)
        documents = model.encode_documents(texts, batch_size=batch_size, **verbose)
        if on_documents is not None:
            on_documents(list(zip(doc_ids, texts)), documents)
        indices, _ = exact_top_k(model.encode_queries(query_texts, batch_size=batch_size, **verbose), documents,
                                 min(depth, len(doc_ids)))
        ranked = {q: [doc_ids[int(i)] for i in row] for q, row in zip(query_ids, indices)}
    text_of = dict(zip(doc_ids, texts))
    return {q: [(d, text_of[d]) for d in [d for d in ranked[q] if d not in excluded[q]][skip_top:]] for q in query_ids}


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


def hybrid_negatives(denoised, undenoised, count, denoised_share=0.5):
    """RocketQAv2's hybrid data augmentation for one query: `count` negatives, the first ceil(count × denoised_share)
    from the denoised ones (precise), the rest filled from the undenoised ones (diverse; unlabelled positives among
    them are the price of diversity), without repeats.

    Args:
        denoised, undenoised: [(document id, text), ...] in preference order (`denoise_candidates`' kept ones and the
            mined list before denoising).
        count: negatives wanted; fewer come back when the two lists together hold fewer distinct documents.
        denoised_share: fraction in [0, 1] taken from the denoised list first (when it has enough).
    """
    if not 0.0 <= denoised_share <= 1.0:
        raise ValueError(f"denoised_share={denoised_share!r} must be in [0, 1].")
    if not isinstance(count, int) or count < 0:
        raise ValueError(f"count={count!r} must be a non-negative integer.")
    chosen, seen = [], set()

    def take(candidates, limit):
        for doc_id, text, *_ in candidates:
            if len(chosen) >= limit:
                return
            if doc_id not in seen:
                seen.add(doc_id)
                chosen.append((doc_id, text))

    take(denoised, int(np.ceil(count * denoised_share)))
    take(undenoised, count)
    # The undenoised list ran short: top up from the denoised one.
    take(denoised, count)
    return chosen


def mine_candidate_lists(dataset, *, retriever="bm25", model=None, depth=30, skip_top=0, negatives_per_query=8, scorer=None,
                         threshold=0.9, hybrid=False, queries=None, batch_size=64, progress=False, ignore_identical_ids=False):
    """Training lists for every (query, positive) pair of `dataset`: the positive, then up to `negatives_per_query`
    mined negatives in rank order — RocketQA's recipe end to end.

    1. `mine_hard_negatives` (BM25 or a dense `model`; known positives excluded, the first `skip_top` skipped).
    2. With a `scorer` (a cross-encoder's `score_pairs`): `denoise_candidates` drops negatives whose probability of
       relevance exceeds `threshold`. With `hybrid`, a pool of twice `negatives_per_query` is mined and denoised, and
       `hybrid_negatives` fills each list from it (half denoised, half undenoised), RocketQAv2's augmentation; from a
       pool of exactly the list's size the mix would just be the undenoised list reordered.

    `progress`: progress lines on stderr while a dense `model` encodes (`mine_hard_negatives`); `ignore_identical_ids`
    excludes each query's own id from its negatives (`mine_hard_negatives`).

    Returns:
        (lists, stats): `CandidateList`s (write them with `write_candidate_lists`) and counts — queries mined,
        negatives mined, dropped by denoising, and queries left with no negative (no list for them).
    """
    if not isinstance(negatives_per_query, int) or negatives_per_query < 1:
        raise ValueError(f"negatives_per_query={negatives_per_query!r} must be a positive integer.")
    if hybrid and scorer is None:
        raise ValueError("hybrid=True mixes denoised and undenoised negatives; it needs a `scorer` to denoise with.")
    mined = mine_hard_negatives(dataset, retriever=retriever, model=model, depth=depth, skip_top=skip_top, batch_size=batch_size,
                                queries=queries, progress=progress, ignore_identical_ids=ignore_identical_ids)
    stats = {"queries": len(mined), "negatives_mined": 0, "dropped_by_denoising": 0, "queries_without_negatives": 0}
    negatives = {}
    pool = 2 * negatives_per_query if hybrid else negatives_per_query
    for query_id, candidates in mined.items():
        candidates = candidates[:pool]
        stats["negatives_mined"] += len(candidates)
        chosen = candidates
        if scorer is not None:
            kept, dropped = denoise_candidates(dataset.queries[query_id], candidates, scorer, threshold)
            stats["dropped_by_denoising"] += len(dropped)
            chosen = hybrid_negatives(kept, candidates, negatives_per_query) if hybrid else [(d, t) for d, t, _ in kept]
        if not chosen:
            stats["queries_without_negatives"] += 1
        negatives[query_id] = chosen
    lists = []
    for query_id, query, document_id, document in dataset.training_pairs():
        chosen = [(d, t) for d, t in negatives.get(query_id, ()) if d != document_id]
        if chosen:
            lists.append(CandidateList(query_id, query, [document_id] + [d for d, _ in chosen], [document] + [t for _, t in chosen]))
    stats["lists"] = len(lists)
    return lists, stats
