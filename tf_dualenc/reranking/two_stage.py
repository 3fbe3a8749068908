"""Two-stage retrieval: a dual encoder's top-k from an index (ScaNN or exact), re-scored by a cross-encoder."""

import time

import numpy as np


def rerank_hits(query, hits, scorer, top_n=None, batch_size=32):
    """Re-orders one query's `hits` ([{"id", "score", "text"}, ...]) by `scorer(queries, documents) → scores`.

    Each returned hit keeps the first-stage score as `retrieval_score` and gets `score` = the re-ranker's; the order
    is by re-ranker score, descending (ties keep the first-stage order). `top_n` keeps the best n.
    """
    if not hits:
        return []
    missing = [i for i, hit in enumerate(hits) if "text" not in hit]
    if missing:
        raise ValueError(f"re-ranking needs each hit's text; hits {missing[:5]} have none (search with_text=True).")
    scores = np.asarray(scorer([query] * len(hits), [hit["text"] for hit in hits]), np.float32)
    if scores.shape != (len(hits),):
        raise ValueError(f"the re-ranker returned scores of shape {scores.shape} for {len(hits)} hits.")
    order = np.argsort(-scores, kind="stable")
    reranked = [dict(hits[i], retrieval_score=hits[i]["score"], score=float(scores[i])) for i in order]
    return reranked[:top_n] if top_n is not None else reranked


class TwoStageRetriever:
    """Query text → dual-encoder top-`k` from a `RetrievalIndex` → cross-encoder re-ranking → best `top_n`.

    Args:
        index: a `tf_dualenc.indexing.RetrievalIndex`.
        query_encoder: texts → [N, D] (`local_query_encoder`, `serving_query_encoder`, or `DualEncoder.encode_queries`).
        scorer: (queries, documents) → scores: `CrossEncoder.score_pairs` or `ExportedCrossEncoder.score_pairs`.
        k: candidates taken from the first stage; top_n: hits returned after re-ranking.

    `search` returns the hits per query and records the seconds each stage took in `last_timings`.

    Example:
    ```python
    retriever = TwoStageRetriever(RetrievalIndex.load("indexes/scifact"), local_query_encoder("exports/scifact/1"),
                                  ExportedCrossEncoder("exports/scifact_reranker/1").score_pairs, k=100, top_n=10)
    retriever.search(["vitamin d and bone density"])
    ```
    """

    def __init__(self, index, query_encoder, scorer, k=100, top_n=10, exact=False):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k={k!r} must be a positive integer (first-stage candidates).")
        if not isinstance(top_n, int) or not 1 <= top_n <= k:
            raise ValueError(f"top_n={top_n!r} must be an integer in [1, k={k}].")
        self.index, self.query_encoder, self.scorer = index, query_encoder, scorer
        self.k, self.top_n, self.exact = k, top_n, exact
        self.last_timings = {}

    def search(self, texts):
        texts = list(texts)
        start = time.perf_counter()
        vectors = self.query_encoder(texts)
        first = self.index.search_embeddings(vectors, k=self.k, exact=self.exact, with_text=True)
        retrieval_seconds = time.perf_counter() - start
        start = time.perf_counter()
        results = [rerank_hits(text, hits, self.scorer, self.top_n) for text, hits in zip(texts, first)]
        self.last_timings = {"retrieval_seconds": retrieval_seconds, "rerank_seconds": time.perf_counter() - start, "queries": len(texts)}
        return results


def recorded_reranker(index):
    """The cascade recorded in an index's search (the pipeline pushes it when its re-ranker was kept on validation):
    {"model_name", "version", "export", "k", "weight", ...}, or None."""
    return (index.recorded_search or {}).get("rerank")


def rerank_recorded_search(index, texts, query_encoder, scorer, k=10, *, exact=False):
    """The index's recorded cascade: its recorded first stage (`RetrievalIndex.search_recorded`: dense, or BM25 + dense
    fused) to depth max(k, the recorded `k`), the top recorded-`k` re-scored by `scorer` and mixed with the first-stage
    score at the recorded `weight` (`reranked_order`, the formula the pipeline's check evaluated). Returns hits
    {"id", "score" (the mixed score; the first stage's for hits below the re-ranked head), "retrieval_score", "text"
    [, "rerank_score"]}, best first."""
    from tf_dualenc.evaluation.rerank_evaluation import reranked_order
    from tf_dualenc.evaluation.trec_metrics import rank

    rerank = recorded_reranker(index)
    if rerank is None:
        raise ValueError(f"{index.folder} records no re-ranker in its search; use RetrievalIndex.search_recorded.")
    texts = [texts] if isinstance(texts, str) else list(texts)
    head_size = int(rerank["k"])
    results = []
    for text, hits in zip(texts, index.search_recorded(texts, query_encoder, k=max(k, head_size), exact=exact)):
        by_id = {hit["id"]: hit for hit in hits}
        first_stage = {hit["id"]: hit["score"] for hit in hits}
        # The head as evaluation takes it (`cross_encoder_scores`): the first `head_size` in trec_eval order.
        head = [by_id[d] for d in rank(first_stage)[:head_size]]
        scores = np.asarray(scorer([text] * len(head), [hit["text"] for hit in head]), np.float32) if head else []
        cross = {hit["id"]: float(score) for hit, score in zip(head, scores)}
        ranked = []
        for doc, mixed in reranked_order(first_stage, cross, float(rerank["weight"]))[:k]:
            hit = dict(by_id[doc], retrieval_score=by_id[doc]["score"])
            if mixed is not None:
                hit.update(score=mixed, rerank_score=cross[doc])
            ranked.append(hit)
        results.append(ranked)
    return results
