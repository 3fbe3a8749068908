"""The lexical baseline: BM25 with bm25s, scored the same way as the dual encoders."""

import logging

import numpy as np


def _import_bm25s():
    from tf_dualenc.extras import require

    bm25s = require("bm25s", feature="BM25 (evaluate --model bm25, --hybrid, mine-negatives --retriever bm25)")

    # bm25s sets its own logger to DEBUG, so any root handler (TFX and absl add one) printed "Building index from
    # IDs objects" into every pipeline run; its warnings still show.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class BM25Index:
    """BM25 (Lucene variant, English stopwords, Snowball stemming) over a corpus, indexed once, searched many times."""

    SETTINGS_FILE = "tf_dualenc_bm25.json"

    def __init__(self, corpus_ids, corpus_texts, *, stemmer="english", k1=1.5, b=0.75, _retriever=None):
        bm25s = _import_bm25s()

        self.corpus_ids = list(corpus_ids)
        self.settings = {"stemmer": stemmer, "k1": k1, "b": b, "method": "lucene", "stopwords": "en"}
        self._stemmer = None
        if stemmer:
            from tf_dualenc.extras import require

            Stemmer = require("Stemmer", feature="BM25's stemmer")

            self._stemmer = Stemmer.Stemmer(stemmer)
        if _retriever is not None:
            self._retriever = _retriever
            return
        self._retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        self._retriever.index(bm25s.tokenize(list(corpus_texts), stopwords="en", stemmer=self._stemmer, show_progress=False),
                              show_progress=False)

    def save(self, folder):
        """Writes the index to `folder` (new or empty): bm25s' files and the settings and document ids it was built with."""
        import json
        import os

        os.makedirs(folder, exist_ok=True)
        self._retriever.save(folder, show_progress=False)
        with open(os.path.join(folder, self.SETTINGS_FILE), "w", encoding="utf-8") as f:
            json.dump({"settings": self.settings, "corpus_ids": self.corpus_ids}, f, ensure_ascii=False)

    @classmethod
    def load(cls, folder):
        """An index `save` wrote: the same scores as the one saved, without reading the corpus again."""
        import json
        import os

        bm25s = _import_bm25s()
        path = os.path.join(folder, cls.SETTINGS_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{folder} holds no BM25 index (no {cls.SETTINGS_FILE}).")
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        settings = saved["settings"]
        retriever = bm25s.BM25.load(folder, show_progress=False)
        return cls(saved["corpus_ids"], None, stemmer=settings["stemmer"], k1=settings["k1"], b=settings["b"], _retriever=retriever)

    def run(self, query_ids, query_texts, k=100):
        """Top-k as {query id: {doc id: score}}; documents BM25 does not match at all (score 0) are left out."""
        bm25s = _import_bm25s()

        query_tokens = bm25s.tokenize(list(query_texts), stopwords="en", stemmer=self._stemmer, show_progress=False)
        indices, scores = self._retriever.retrieve(query_tokens, k=min(k, len(self.corpus_ids)), show_progress=False, n_threads=1)
        return {qid: {self.corpus_ids[int(i)]: float(s) for i, s in zip(row, row_scores) if s > 0}
                for qid, row, row_scores in zip(query_ids, np.asarray(indices), np.asarray(scores))}


def bm25_run(corpus_ids, corpus_texts, query_ids, query_texts, *, k=100, stemmer="english", k1=1.5, b=0.75):
    """BM25 (Lucene variant, English stopwords, Snowball stemming) top-k as {query id: {doc id: score}}.

    Documents BM25 does not match at all (score 0) are left out of the run.
    """
    return BM25Index(corpus_ids, corpus_texts, stemmer=stemmer, k1=k1, b=b).run(query_ids, query_texts, k=k)
