"""A re-ranker served by TF Serving (or `tf_dualenc.serving.local_server`): the second stage of a two-stage service over gRPC/REST."""

import numpy as np


def serving_reranker(address, model_name, version=None, signature="score", timeout=30.0, batch_size=64):
    """(queries, documents) → scores through a served cross-encoder export (`export_cross_encoder`'s `score` signature).

    Args:
        address: "host:port" (gRPC) or "http://host:port" (REST) of TF Serving or `tf-dualenc serve`.
        model_name, version: the served re-ranker (version None: the latest the server has).
        batch_size: pairs per request (a re-ranked top-100 goes in a few requests, each within the server's batch limits).

    Example:
    ```python
    retriever = TwoStageRetriever(index, serving_query_encoder("10.0.0.5:8500", "scifact"),
                                  serving_reranker("10.0.0.5:8500", "scifact_reranker"), k=100, top_n=10)
    ```
    """
    from tf_dualenc.serving.client import ServingClient

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer.")
    client = ServingClient(address, model_name, version=version, timeout=timeout)

    def score(queries, documents):
        queries, documents = list(queries), list(documents)
        if len(queries) != len(documents):
            raise ValueError(f"score needs as many queries as documents; got {len(queries)} and {len(documents)}.")
        parts = [np.asarray(client.predict({"query": queries[i : i + batch_size], "document": documents[i : i + batch_size]},
                                           signature)["score"], np.float32).reshape(-1)
                 for i in range(0, len(queries), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    score.client = client
    return score
