"""Query encoders for `RetrievalIndex.search`: an export loaded in this process, or a TF Serving endpoint.

The production path in one call:

    index = RetrievalIndex.load("indexes/scifact")
    hits = index.search(["vitamin d and bone density"], serving_query_encoder("10.0.0.5:8500", "scifact"), k=10)
"""

import numpy as np


def local_query_encoder(export_dir, signature="encode_query", batch_size=256):
    """texts → [N, D] with an encoder export loaded here (`tf_dualenc.export.ExportedDualEncoder`)."""
    from tf_dualenc.export.exported_dual_encoder import ExportedDualEncoder

    encoder = ExportedDualEncoder(export_dir)
    sides = {"encode_query": encoder.encode_queries, "encode_document": encoder.encode_documents}
    if signature not in sides:
        raise ValueError(f"signature={signature!r} is not an encoder signature of an export (valid: {list(sides)}).")
    encode_side = sides[signature]

    def encode(texts):
        return encode_side(texts, batch_size)

    encode.encoder = encoder  # keeps the SavedModel's variables alive with the function
    return encode


def serving_query_encoder(address, model_name, version=None, signature="encode_query", timeout=30.0, batch_size=256):
    """texts → [N, D] through TF Serving (or `tf_dualenc.serving.local_server`) at `address` ("host:port" gRPC, "http://..." REST)."""
    from tf_dualenc.serving.client import ServingClient

    client = ServingClient(address, model_name, version=version, timeout=timeout)

    def encode(texts):
        texts = list(texts)
        parts = [client.encode(texts[i : i + batch_size], signature) for i in range(0, len(texts), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    encode.client = client
    return encode
