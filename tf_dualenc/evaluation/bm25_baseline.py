"""The lexical baseline: BM25 with bm25s, scored the same way as the dual encoders."""

import numpy as np


def bm25_run(corpus_ids, corpus_texts, query_ids, query_texts, *, k=100, stemmer="english", k1=1.5, b=0.75):
    """BM25 (Lucene variant, English stopwords, Snowball stemming) top-k as {query id: {doc id: score}}.

    Documents BM25 does not match at all (score 0) are left out of the run.
    """
    import bm25s

    stem = None
    if stemmer:
        import Stemmer

        stem = Stemmer.Stemmer(stemmer)
    corpus_tokens = bm25s.tokenize(list(corpus_texts), stopwords="en", stemmer=stem, show_progress=False)
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = bm25s.tokenize(list(query_texts), stopwords="en", stemmer=stem, show_progress=False)
    k = min(k, len(corpus_ids))
    indices, scores = retriever.retrieve(query_tokens, k=k, show_progress=False, n_threads=1)
    run = {}
    for qid, row, row_scores in zip(query_ids, np.asarray(indices), np.asarray(scores)):
        run[qid] = {corpus_ids[int(i)]: float(s) for i, s in zip(row, row_scores) if s > 0}
    return run
