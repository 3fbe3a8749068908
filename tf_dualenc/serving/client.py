"""A client for TF Serving's PredictionService (gRPC: Predict, GetModelMetadata) and its REST API.

Works unchanged against a real `tensorflow_model_server` and against `tf_dualenc.serving.local_server`.

Example:
```python
client = ServingClient("127.0.0.1:8500", "scifact")                  # gRPC
vectors = client.predict({"text": ["who wrote hamlet"]}, signature_name="encode_query")["embedding"]
rest = ServingClient("http://127.0.0.1:8501", "scifact")             # REST
rest.get_model_metadata()["signatures"]["encode_query"]["inputs"]      # {"text": {"dtype": "DT_STRING", ...}}
```
"""

import json
import urllib.error
import urllib.request

import numpy as np

# A MiniLM/T5 request of 256 texts is ~100 KB; room for large batches and retrieval outputs.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ServingError(RuntimeError):
    """A failed request; `code` is the gRPC status name (REST errors are mapped from the HTTP status)."""

    def __init__(self, code, message, retryable=False):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # The server shed the request under load (or was unreachable): the same request may succeed later.
        self.retryable = retryable


# Each kind of tf_dualenc export by the signature that defines it: (signature, its inputs, its outputs).
EXPORT_SIGNATURES = {
    "retrieval": ("search", ("text",), ("document_ids", "scores")),
    "encoder": ("encode_query", ("text",), ("embedding",)),
    "cross_encoder": ("score", ("query", "document"), ("score",)),
}

_HTTP_TO_CODE = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def _tensor_info(info):
    from tensorflow.core.framework import types_pb2

    shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
    return {"dtype": types_pb2.DataType.Name(info.dtype), "shape": shape}


class ServingClient:
    """Talks to one model of a TF Serving-compatible server.

    Args:
        address: "host:port" for gRPC, or "http://host:port" for REST.
        model_name: the served model's name.
        version: a model version (default: the server's latest).
        timeout: seconds per request.
        retries: how often a request the server shed (RESOURCE_EXHAUSTED, UNAVAILABLE; HTTP 429/503) is tried again,
            after 0.1 s, 0.2 s, 0.4 s, ... (capped at 5 s); other errors are not retried.
    """

    def __init__(self, address, model_name, version=None, timeout=30.0, retries=5):
        self.address = address
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.retries = retries
        self.rest = address.startswith(("http://", "https://"))
        self._stub = None
        self._channel = None

    # ---- gRPC ------------------------------------------------------------------------------------------

    def _grpc_stub(self):
        if self._stub is None:
            from tf_dualenc.extras import require

            grpc = require("grpc", feature="the TF Serving gRPC client (search --server)")
            require("tensorflow_serving", feature="the TF Serving gRPC client (search --server)")
            from tensorflow_serving.apis import prediction_service_pb2_grpc

            options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES), ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
            self._channel = grpc.insecure_channel(self.address, options=options)
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        return self._stub

    def _model_spec(self, spec, signature_name=None):
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = int(self.version)
        if signature_name:
            spec.signature_name = signature_name

    def _retrying(self, attempt):
        import time

        for tries in range(self.retries + 1):
            try:
                return attempt()
            except ServingError as error:
                if not error.retryable or tries == self.retries:
                    raise
                time.sleep(min(0.1 * 2**tries, 5.0))

    def _call(self, method, request):
        import grpc

        def attempt():
            try:
                return getattr(self._grpc_stub(), method)(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code, details = error.code().name, error.details() or ""
                # RESOURCE_EXHAUSTED also means "message too large", which no retry fixes.
                retryable = code == "UNAVAILABLE" or (code == "RESOURCE_EXHAUSTED" and "larger than max" not in details)
                raise ServingError(code, details, retryable) from None

        return self._retrying(attempt)

    # ---- API -------------------------------------------------------------------------------------------

    def predict(self, inputs, signature_name="serving_default"):
        """{input name: array-like} → {output name: np.ndarray} (strings come back as `bytes` objects for gRPC, `str` for REST)."""
        if self.rest:
            return self._rest_predict(inputs, signature_name)
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec, signature_name)
        for name, value in inputs.items():
            array = np.asarray(value, dtype=object if _is_text(value) else None)
            request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
        response = self._call("Predict", request)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def get_model_metadata(self):
        """{"model": {"name", "version"}, "signatures": {name: {"inputs": {...}, "outputs": {...}}}}."""
        if self.rest:
            return self._rest_metadata()
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._model_spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._call("GetModelMetadata", request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {
            "model": {"name": response.model_spec.name, "version": response.model_spec.version.value},
            "signatures": {
                key: {"inputs": {n: _tensor_info(i) for n, i in sig.inputs.items()}, "outputs": {n: _tensor_info(i) for n, i in sig.outputs.items()}}
                for key, sig in signature_map.signature_def.items()
            },
        }

    def export_kind(self):
        """"encoder", "retrieval" or "cross_encoder" (the `kind` of tf_dualenc's export manifest), told from the served
        signatures alone: the manifest stays on the server's disk. None for any other model."""
        signatures = self.get_model_metadata()["signatures"]
        for kind, (signature, inputs, outputs) in EXPORT_SIGNATURES.items():
            found = signatures.get(signature, {})
            if set(inputs) <= set(found.get("inputs", {})) and set(outputs) <= set(found.get("outputs", {})):
                return kind
        return None

    def search(self, texts, signature_name="search", batch_size=256):
        """Query texts → lists of {"id", "score"}, best first, with a retrieval export's `search` signature (its k hits)."""
        texts, hits = list(texts), []
        for start in range(0, len(texts), batch_size):
            outputs = self.predict({"text": texts[start : start + batch_size]}, signature_name)
            hits += [[{"id": doc.decode("utf-8") if isinstance(doc, bytes) else str(doc), "score": float(score)}
                      for doc, score in zip(ids, scores)] for ids, scores in zip(outputs["document_ids"], outputs["scores"])]
        return hits

    def encode(self, texts, signature_name="encode_query"):
        """Texts → float32 [N, D] with an encoder export's `encode_query` / `encode_document` signature."""
        return np.asarray(self.predict({"text": list(texts)}, signature_name)["embedding"], np.float32)

    def close(self):
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None

    # ---- REST ------------------------------------------------------------------------------------------

    def _rest_url(self, suffix):
        version = f"/versions/{int(self.version)}" if self.version is not None else ""
        return f"{self.address.rstrip('/')}/v1/models/{self.model_name}{version}{suffix}"

    def _rest(self, url, body=None):
        return self._retrying(lambda: self._rest_once(url, body))

    def _rest_once(self, url, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", error.reason)
            except (ValueError, AttributeError):
                message = str(error.reason)
            raise ServingError(_HTTP_TO_CODE.get(error.code, "UNKNOWN"), message, retryable=error.code in (429, 503)) from None
        except urllib.error.URLError as error:
            raise ServingError("UNAVAILABLE", str(error.reason), retryable=True) from None

    def _rest_predict(self, inputs, signature_name):
        body = {"signature_name": signature_name, "inputs": {k: np.asarray(v).tolist() if not _is_text(v) else list(v) for k, v in inputs.items()}}
        outputs = self._rest(self._rest_url(":predict"), body)["outputs"]
        if not isinstance(outputs, dict):
            # TF Serving returns a signature's only output bare; its name is in the metadata.
            names = list(self._rest_metadata()["signatures"][signature_name]["outputs"])
            outputs = {names[0]: outputs}
        return {k: np.asarray(v) for k, v in outputs.items()}

    def _rest_metadata(self):
        payload = self._rest(self._rest_url("/metadata"))
        defs = payload["metadata"]["signature_def"]["signature_def"]

        def infos(section):
            # Proto3 JSON leaves out default values (DT_INVALID, empty shapes).
            return {n: {"dtype": i.get("dtype", "DT_INVALID"),
                        "shape": None if i.get("tensor_shape", {}).get("unknown_rank") else [int(d["size"]) for d in i.get("tensor_shape", {}).get("dim", [])]}
                    for n, i in section.items()}

        return {
            "model": {"name": payload["model_spec"]["name"], "version": int(payload["model_spec"]["version"])},
            "signatures": {key: {"inputs": infos(sig.get("inputs", {})), "outputs": infos(sig.get("outputs", {}))} for key, sig in defs.items()},
        }


def _is_text(value):
    if isinstance(value, (str, bytes)):
        return True
    flat = np.ravel(np.asarray(value, dtype=object))
    return flat.size > 0 and isinstance(flat[0], (str, bytes))
