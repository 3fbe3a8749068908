"""A small local server that speaks TF Serving's gRPC PredictionService API and REST `:predict` over exports.

For local use and tests where no `tensorflow_model_server` binary exists; `tf_dualenc.serving.client.ServingClient` works the
same against this and against real TF Serving. It serves the latest version of each model (TF Serving's default
version policy), binds 127.0.0.1 unless told otherwise, bounds request size, batch size and text length, and
answers bad requests with TF Serving's status codes: NOT_FOUND (unknown model or version), INVALID_ARGUMENT
(unknown signature or input, wrong dtype, empty batch, oversize batch or text), UNIMPLEMENTED (Classify, Regress,
MultiInference).

    python -m tf_dualenc.serving.local_server --model scifact=exports/scifact --grpc-port 8500 --rest-port 8501
    python -m tf_dualenc.serving.local_server --model-config-file serving/models.local.config
"""

import argparse
import http
import http.server
import io
import json
import os
import queue
import re
import selectors
import socket
import sys
import threading
import time
from concurrent import futures

import numpy as np

from tf_dualenc.serving.server_options import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_TEXT_BYTES, add_server_arguments

DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024


class RequestError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def read_model_config(path, resolve=True):
    """TF Serving's `--model_config_file` (text proto `model_config_list { config { name base_path } }`) → {name: base_path}.
    A relative base_path is read from the config file's folder (with `resolve=False`: as the file writes it)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    with open(path, encoding="utf-8") as f:
        try:
            text_format.Parse(f.read(), config)
        except text_format.ParseError as error:
            raise ValueError(f"{path}: not a TF Serving model config: {error}") from None
    models = {}
    for entry in config.model_config_list.config:
        base = entry.base_path
        if resolve and not os.path.isabs(base):
            base = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), base))
        models[entry.name] = base
    if not models:
        raise ValueError(f"{path}: model_config_list has no config entries.")
    return models


def check_model_folders(models, config_file=None):
    """FileNotFoundError naming the model, its folder and (when the folder came from one) the config file, for the
    first model whose folder does not exist or holds no numeric version: before anything loads TensorFlow."""
    from tf_dualenc.export.layout import model_versions

    written = read_model_config(config_file, resolve=False) if config_file else {}
    for name, base_path in models.items():
        source = f"{config_file}: " if config_file else ""
        if not os.path.isdir(base_path):
            hint = " (tf-dualenc export writes <output-dir>/<model-name>/<version>/)"
            if os.path.isabs(written.get(name, "")):
                hint = (". An absolute base_path is a folder of the machine or container that serves (serving/models.config "
                        "is the container deployment's, under /models); to serve the exports of this machine, give --model "
                        "NAME=FOLDER or a config whose base_path is a folder here, relative to the config file's folder "
                        "(serving/models.local.config)")
            raise FileNotFoundError(f"{source}model {name!r}: base_path {base_path} does not exist{hint}.")
        if not model_versions(base_path):
            raise FileNotFoundError(f"{source}model {name!r}: no numeric version folder in {base_path} "
                                    "(tf-dualenc export writes <output-dir>/<model-name>/<version>/).")


class ServedModel:
    """The latest version of one model folder, its signatures and their input specs."""

    def __init__(self, name, base_path):
        from tensorflow.core.protobuf import saved_model_pb2

        from tf_dualenc.export import load_export, model_versions

        versions = model_versions(base_path)
        if not versions:
            raise FileNotFoundError(f"Model {name!r}: no numeric version folder in {base_path}.")
        self.name = name
        self.version = versions[-1]
        self.path = path = os.path.abspath(os.path.join(base_path, str(self.version)))
        self.loaded = load_export(path)
        self.signatures = dict(self.loaded.signatures)
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            self.signature_defs = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0].signature_def

    def input_specs(self, signature):
        return self.signatures[signature].structured_input_signature[1]


class _Batcher:
    """Runs requests that arrive together for one signature as one model call, as TF Serving's `--enable_batching`
    does: under load, many small requests cost one call's overhead instead of one each. Only for signatures whose
    inputs are all vectors ([None]), whose requests can be concatenated; a batch whose call fails, or whose outputs are
    not one row per input row, is run again request by request, so one bad request fails only itself."""

    def __init__(self, function, dtypes, max_batch_size):
        self.function, self.dtypes, self.max_batch_size = function, dtypes, max_batch_size
        self._pending = queue.SimpleQueue()
        self._carry = None
        threading.Thread(target=self._run, name="batcher", daemon=True).start()

    def __call__(self, arrays):
        """{input name: np.ndarray [n]} → {output name: np.ndarray [n, ...]} (or the model call's exception)."""
        future = futures.Future()
        self._pending.put((arrays, future))
        return future.result()

    def _call(self, arrays):
        import tensorflow as tf

        outputs = self.function(**{name: tf.constant(value, dtype=self.dtypes[name]) for name, value in arrays.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def _run(self):
        while True:
            items = [self._carry or self._pending.get()]
            self._carry = None
            rows = len(next(iter(items[0][0].values())))
            while True:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                size = len(next(iter(item[0].values())))
                if rows + size > self.max_batch_size:
                    self._carry = item
                    break
                items.append(item)
                rows += size
            self._answer(items, rows)

    def _answer(self, items, rows):
        if len(items) > 1:
            try:
                outputs = self._call({name: np.concatenate([arrays[name] for arrays, _ in items]) for name in items[0][0]})
                if all(value.ndim and len(value) == rows for value in outputs.values()):
                    start = 0
                    for arrays, future in items:
                        size = len(next(iter(arrays.values())))
                        future.set_result({key: value[start : start + size] for key, value in outputs.items()})
                        start += size
                    return
            except Exception:  # noqa: BLE001  (run alone below, each request gets its own error)
                pass
        for arrays, future in items:
            try:
                future.set_result(self._call(arrays))
            except Exception as error:  # noqa: BLE001  (the caller's predict turns it into a status)
                future.set_exception(error)


class ModelRegistry:
    def __init__(self, models, max_batch_size=DEFAULT_MAX_BATCH_SIZE, max_text_bytes=DEFAULT_MAX_TEXT_BYTES, enable_batching=False):
        self.models = {name: ServedModel(name, path) for name, path in models.items()}
        self.max_batch_size = max_batch_size
        self.max_text_bytes = max_text_bytes
        self.batchers = {}
        for model in self.models.values() if enable_batching else []:
            for signature in model.signatures:
                specs = model.input_specs(signature)
                if specs and all(spec.shape.as_list() == [None] for spec in specs.values()):
                    self.batchers[model.name, signature] = _Batcher(model.signatures[signature],
                                                                    {name: spec.dtype for name, spec in specs.items()}, max_batch_size)

    def lookup(self, name, version=None):
        model = self.models.get(name)
        if model is None:
            raise RequestError("NOT_FOUND", f"Servable not found for request: Latest({name}); served models: {sorted(self.models)}")
        if version is not None and int(version) != model.version:
            raise RequestError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version}); served version: {model.version}")
        return model

    def check_declared_shape(self, name, proto):
        """Checks a TensorProto's declared shape before anything is allocated for it: `make_ndarray` allocates the
        declared size even when the message carries one value (a 60 KB request could ask for gigabytes)."""
        dims = [d.size for d in proto.tensor_shape.dim]
        if any(d < 0 for d in dims):
            raise RequestError("INVALID_ARGUMENT", f"Input {name!r}: declared shape {dims} has a negative dimension.")
        if dims and dims[0] > self.max_batch_size:
            raise RequestError("INVALID_ARGUMENT", f"Input {name!r}: declared batch of {dims[0]} exceeds the limit of {self.max_batch_size}.")
        count = int(np.prod(dims, dtype=np.float64)) if dims else 1
        # The signatures take one text (or one value per text) per example: more than a few values each is not a request.
        if count > self.max_batch_size * 64:
            raise RequestError("INVALID_ARGUMENT", f"Input {name!r}: declared shape {dims} holds {count} values; the limit is "
                                                   f"{self.max_batch_size * 64}.")

    def predict(self, model, signature, inputs):
        """Validates and runs one request; inputs are {name: np.ndarray}."""
        import tensorflow as tf

        signature = signature or "serving_default"
        if signature not in model.signatures:
            raise RequestError("INVALID_ARGUMENT", f'Serving signature key "{signature}" not found; the model has {sorted(model.signatures)}.')
        specs = model.input_specs(signature)
        if set(inputs) != set(specs):
            raise RequestError("INVALID_ARGUMENT", f"Signature {signature!r} takes inputs {sorted(specs)}; got {sorted(inputs)}.")
        arrays = {}
        for name, spec in specs.items():
            value = inputs[name]
            # Before the dtype check: an empty JSON list carries no dtype.
            if value.ndim and value.shape[0] == 0:
                raise RequestError("INVALID_ARGUMENT", f"Input {name!r} is an empty batch.")
            if spec.dtype == tf.string:
                if value.dtype != object and value.dtype.kind not in ("U", "S"):
                    raise RequestError("INVALID_ARGUMENT", f"Input {name!r} must be DT_STRING; got {value.dtype}.")
                # Every item, not the first: a number or null among the strings is the client's error, not ours.
                encoded = []
                for i, v in enumerate(value.ravel()):
                    if isinstance(v, bytes):
                        encoded.append(v)
                    elif isinstance(v, str):
                        try:
                            encoded.append(v.encode("utf-8"))
                        except UnicodeEncodeError:
                            raise RequestError("INVALID_ARGUMENT", f"Input {name!r}: item {i} is not valid Unicode (a lone surrogate?).") from None
                    else:
                        raise RequestError("INVALID_ARGUMENT", f"Input {name!r}: item {i} is {type(v).__name__}, not a string.")
                too_long = [i for i, v in enumerate(encoded) if len(v) > self.max_text_bytes]
                if too_long:
                    raise RequestError("INVALID_ARGUMENT", f"Input {name!r}: item {too_long[0]} is longer than {self.max_text_bytes} bytes.")
                value = np.array(encoded, dtype=object).reshape(value.shape)
            elif value.dtype == object or value.dtype.kind in ("U", "S"):
                raise RequestError("INVALID_ARGUMENT", f"Input {name!r} must be {spec.dtype.name}; got strings.")
            elif not np.can_cast(value.dtype, spec.dtype.as_numpy_dtype, casting="same_kind"):
                raise RequestError("INVALID_ARGUMENT", f"Input {name!r} must be {spec.dtype.name}; got {value.dtype}.")
            if value.ndim != spec.shape.rank or any(d is not None and d != v for d, v in zip(spec.shape.as_list(), value.shape)):
                raise RequestError("INVALID_ARGUMENT", f"Input {name!r} must have shape {spec.shape.as_list()} (None: any); got {list(value.shape)}.")
            if value.shape and value.shape[0] > self.max_batch_size:
                raise RequestError("INVALID_ARGUMENT", f"Input {name!r}: batch of {value.shape[0]} exceeds the limit of {self.max_batch_size}.")
            arrays[name] = value
        batcher = self.batchers.get((model.name, signature))
        try:
            if batcher is not None:
                return batcher(arrays)
            outputs = model.signatures[signature](**{name: tf.constant(value, dtype=specs[name].dtype) for name, value in arrays.items()})
        except tf.errors.OpError as error:
            raise RequestError("INVALID_ARGUMENT" if isinstance(error, tf.errors.InvalidArgumentError) else "INTERNAL", error.message) from None
        return {key: value.numpy() for key, value in outputs.items()}


# ---- gRPC ----------------------------------------------------------------------------------------------

class _Unparsable:
    """What the lenient deserializer hands on for bytes that are not the method's request message: gRPC's own
    deserializer would log a traceback and answer INTERNAL for what is the client's error."""

    def __init__(self, error):
        self.error = error


def _lenient(message_class):
    def parse(data):
        try:
            return message_class.FromString(data)
        except Exception as error:  # noqa: BLE001  (any parse failure is the client's)
            return _Unparsable(f"{type(error).__name__}: {error}")

    return parse


def _servicer(registry):
    """{method name: (behaviour(request) → response, request class, response class)} of PredictionService."""
    import tensorflow as tf
    from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, inference_pb2, predict_pb2,
                                         regression_pb2)

    def predict(request):
        spec = request.model_spec
        model = registry.lookup(spec.name, spec.version.value if spec.HasField("version") else None)
        inputs = {}
        for name, proto in request.inputs.items():
            registry.check_declared_shape(name, proto)
            try:
                inputs[name] = tf.make_ndarray(proto)
            except Exception as error:  # a malformed TensorProto
                raise RequestError("INVALID_ARGUMENT", f"Input {name!r} is not a valid TensorProto: {error}") from None
        outputs = registry.predict(model, spec.signature_name, inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = spec.signature_name or "serving_default"
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def get_model_metadata(request):
        spec = request.model_spec
        model = registry.lookup(spec.name, spec.version.value if spec.HasField("version") else None)
        unsupported = [f for f in request.metadata_field if f != "signature_def"]
        if unsupported or not request.metadata_field:
            raise RequestError("INVALID_ARGUMENT", f"Metadata field(s) {unsupported or []} not supported; ask for 'signature_def'.")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in model.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def unimplemented(request):
        raise RequestError("UNIMPLEMENTED", "Only Predict and GetModelMetadata are served by the local server.")

    return {
        "Predict": (predict, predict_pb2.PredictRequest, predict_pb2.PredictResponse),
        "GetModelMetadata": (get_model_metadata, get_model_metadata_pb2.GetModelMetadataRequest,
                             get_model_metadata_pb2.GetModelMetadataResponse),
        "Classify": (unimplemented, classification_pb2.ClassificationRequest, classification_pb2.ClassificationResponse),
        "Regress": (unimplemented, regression_pb2.RegressionRequest, regression_pb2.RegressionResponse),
        "MultiInference": (unimplemented, inference_pb2.MultiInferenceRequest, inference_pb2.MultiInferenceResponse),
    }


def _rpc(behaviour):
    """One status for every failure: a RequestError's own code, INTERNAL with a one-line message for anything else
    (gRPC would log a traceback and answer UNKNOWN)."""
    import grpc

    def handle(request, context):
        try:
            if isinstance(request, _Unparsable):
                raise RequestError("INVALID_ARGUMENT", f"The request is not a valid protobuf message: {request.error}")
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                # It waited in the queue past the client's deadline: nobody is left to read the answer.
                raise RequestError("DEADLINE_EXCEEDED", "The request's deadline passed while it was queued.")
            return behaviour(request)
        except RequestError as error:
            code, message = error.code, error.message
        except Exception as error:  # noqa: BLE001  (answered, not raised: see the docstring)
            code, message = "INTERNAL", f"internal error: {type(error).__name__}: {error}"
            _log_error(message)
        context.abort(getattr(grpc.StatusCode, code), message)

    return handle


def _add_prediction_service(registry, server):
    import grpc

    handlers = {name: grpc.unary_unary_rpc_method_handler(_rpc(behaviour), request_deserializer=_lenient(request_class),
                                                          response_serializer=response_class.SerializeToString)
                for name, (behaviour, request_class, response_class) in _servicer(registry).items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", handlers),))


def _log_error(message):
    # One line, no traceback: a server log full of tracebacks hides the one that matters.
    print(f"serving error: {message}", file=sys.stderr, flush=True)


# ---- REST ----------------------------------------------------------------------------------------------

_HTTP_STATUS = {"NOT_FOUND": 404, "INVALID_ARGUMENT": 400, "RESOURCE_EXHAUSTED": 413, "UNIMPLEMENTED": 501, "INTERNAL": 500}
_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<suffix>:predict|/metadata)?$")


def _jsonable(value):
    if value.dtype == object:
        return np.vectorize(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v, otypes=[object])(value).tolist()
    return value.tolist()


def _rest_handler(registry, max_request_bytes):
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2

    class Handler(http.server.BaseHTTPRequestHandler):
        """Answers one request that `_RestServer` has already read whole: it never waits on a client."""

        protocol_version = "HTTP/1.1"

        def setup(self):
            self.connection, received = self.request
            self.rfile = io.BytesIO(received)
            self.wfile = self.connection.makefile("wb")

        # http.server assumes HTTP/0.9 until it has parsed a version, and answers 0.9 without a status line: a
        # malformed request line would get an error page the client cannot tell from a dropped connection.
        default_request_version = "HTTP/1.1"

        def parse_request(self):
            if super().parse_request():
                return True
            if not self.requestline.split():
                self.send_error(400, "Empty request line")  # http.server closes without a word
            return False

        def handle_expect_100(self):
            return True  # the reading loop has sent "100 Continue" already, before it read the body

        def log_message(self, *args):  # quiet by default; the gRPC side does not log either
            pass

        def _reply(self, status, payload):
            body = json.dumps(payload).encode("utf-8")
            # One request per connection: an idle keep-alive client would otherwise hold a pool worker.
            self.close_connection = True
            self.send_response(status)
            self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _answer(self, respond):
            try:
                respond()
            except RequestError as error:
                self._reply(_HTTP_STATUS.get(error.code, 500), {"error": error.message})
            except OSError:
                raise  # the client went away mid-answer: nobody to answer
            except Exception as error:  # noqa: BLE001  (never drop a connection without an answer)
                _log_error(f"{type(error).__name__}: {error}")
                self._reply(500, {"error": f"internal error: {type(error).__name__}: {error}"})

        def do_GET(self):
            self._answer(self._get)

        def do_POST(self):
            self._answer(self._post)

        def _route(self):
            match = _PATH.match(self.path)
            if not match:
                raise RequestError("NOT_FOUND", f"Unknown path {self.path}; use /v1/models/<name>[/versions/<v>][:predict|/metadata].")
            return registry.lookup(match["name"], match["version"]), match["suffix"]

        def _get(self):
            model, suffix = self._route()
            if suffix == ":predict":
                raise RequestError("INVALID_ARGUMENT", ":predict needs POST.")
            if suffix == "/metadata":
                signature_map = get_model_metadata_pb2.SignatureDefMap()
                for key, value in model.signature_defs.items():
                    signature_map.signature_def[key].CopyFrom(value)
                self._reply(200, {"model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
                                  "metadata": {"signature_def": json_format.MessageToDict(signature_map, preserving_proto_field_name=True)}})
            else:
                self._reply(200, {"model_version_status": [{"version": str(model.version), "state": "AVAILABLE",
                                                            "status": {"error_code": "OK", "error_message": ""}}]})

        def _post(self):
            length = _body_length(self.headers.get_all("Content-Length") or [], self.headers.get("Transfer-Encoding"), max_request_bytes)
            raw = self.rfile.read(length)
            if len(raw) < length:
                raise RequestError("INVALID_ARGUMENT", f"The body ended after {len(raw)} of the {length} bytes its Content-Length announced.")
            model, suffix = self._route()
            if suffix != ":predict":
                raise RequestError("INVALID_ARGUMENT", "POST goes to :predict.")
            signature, inputs, row_format = _predict_request(raw, model)
            outputs = {k: _jsonable(v) for k, v in registry.predict(model, signature, inputs).items()}
            self._reply(200, _predict_payload(outputs, row_format))

    return Handler


def _predict_request(raw, model):
    """(signature name, input arrays, whether the body was in row format) of a REST :predict body for `model`, or
    the RequestError that answers it."""
    body = _json_object(raw)
    signature = _signature_name(body, model)
    columns, row_format = _input_columns(body, sorted(model.input_specs(signature)))
    return signature, _input_arrays(columns), row_format


def _json_object(raw):
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError("INVALID_ARGUMENT", "The body is not valid JSON.") from None
    except RecursionError:
        raise RequestError("INVALID_ARGUMENT", "The body's JSON is nested too deeply.") from None
    if not isinstance(body, dict):
        raise RequestError("INVALID_ARGUMENT", f"The body must be a JSON object with 'inputs' or 'instances'; got a {type(body).__name__}.")
    return body


def _signature_name(body, model):
    signature = body.get("signature_name") or "serving_default"
    if not isinstance(signature, str):
        raise RequestError("INVALID_ARGUMENT", f"'signature_name' must be a string; got a {type(signature).__name__}.")
    if signature not in model.signatures:
        raise RequestError("INVALID_ARGUMENT", f'Serving signature key "{signature}" not found; the model has {sorted(model.signatures)}.')
    return signature


def _input_columns(body, names):
    """({input name: values}, row format?) from TF Serving's columnar 'inputs' or row-format 'instances'; an unnamed
    input goes to the first of the signature's `names`."""
    if "inputs" in body:
        return (body["inputs"] if isinstance(body["inputs"], dict) else {names[0]: body["inputs"]}), False
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list):
            raise RequestError("INVALID_ARGUMENT", "'instances' must be a list.")
        named = [isinstance(r, dict) for r in rows]
        if any(named) and not all(named):
            raise RequestError("INVALID_ARGUMENT", f"'instances' item {named.index(False)} is not an object like the others.")
        return ({n: [r.get(n) for r in rows] for n in names} if rows and all(named) else {names[0]: rows}), True
    raise RequestError("INVALID_ARGUMENT", "The body needs 'inputs' (columnar) or 'instances' (row format).")


def _input_arrays(columns):
    inputs = {}
    for name, value in columns.items():
        try:
            inputs[name] = np.asarray(value, dtype=object if _has_text(value) else None)
        except (ValueError, TypeError, RecursionError):
            raise RequestError("INVALID_ARGUMENT", f"Input {name!r} is not a rectangular array.") from None
    return inputs


def _predict_payload(outputs, row_format):
    """The answer in the request's format, as TF Serving shapes it: one output is the value itself, several are
    keyed by name (per row in row format)."""
    if row_format:
        keys = sorted(outputs)
        rows_out = outputs[keys[0]] if len(keys) == 1 else [dict(zip(keys, row)) for row in zip(*(outputs[k] for k in keys))]
        return {"predictions": rows_out}
    return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}


def _body_length(lengths, transfer_encoding, max_request_bytes):
    """The body's size from its headers, or the RequestError that answers them; the reading loop and the handler
    both use it, so a body is read only when the handler will accept its framing."""
    if transfer_encoding is not None:
        raise RequestError("INVALID_ARGUMENT", f"Transfer-Encoding {transfer_encoding!r} is not supported; send a Content-Length.")
    if len(lengths) > 1:
        # Two lengths frame the body two ways (request smuggling): refuse rather than pick one.
        raise RequestError("INVALID_ARGUMENT", f"{len(lengths)} Content-Length headers; send one.")
    raw = lengths[0] if lengths else "0"
    if not raw.strip().isdigit() or not raw.strip().isascii():
        raise RequestError("INVALID_ARGUMENT", f"Content-Length {raw!r} is not a non-negative integer.")
    length = int(raw)
    if length > max_request_bytes:
        raise RequestError("RESOURCE_EXHAUSTED", f"Request of {length} bytes exceeds the limit of {max_request_bytes}.")
    return length


def _has_text(value):
    # Any string makes it a text input; the per-item check in `predict` then names any item that is not one.
    flat = np.ravel(np.asarray(value, dtype=object))
    return any(isinstance(v, str) for v in flat)


class _Connection:
    __slots__ = ("sock", "address", "received", "deadline", "size", "reserved", "draining", "queued_at")

    def __init__(self, sock, address, deadline):
        self.sock, self.address, self.deadline = sock, address, deadline
        self.received = bytearray()
        self.size = None  # of the whole request, once its headers are in
        self.reserved = 0  # bytes of the read budget it holds
        self.draining = False
        self.queued_at = None


_HEAD_END = re.compile(rb"\r?\n\r?\n")
_EXPECT_CONTINUE = re.compile(rb"(?im)^expect:[ \t]*100-continue")
_MAX_HEAD_BYTES = 64 * 1024
_LINGER_SECONDS = 2.0


class _RestServer(http.server.HTTPServer):
    """HTTP front whose requests are read by one non-blocking loop and answered by a fixed pool of workers.

    A worker only ever gets a request that is complete (or that can be answered without its body), so slow or
    stalled clients (slowloris) cost a buffer, not a worker: each has `timeout` seconds from connecting to send its
    whole request, then gets 408; a complete request has `queue_timeout` seconds to wait for a worker, then gets 503.
    Connections being read, waiting for a worker or being answered are bounded by
    `workers + queued`, and the bytes read and not yet answered by `read_budget` (default: 4 requests of the largest
    size); beyond either the server answers 503 at once. After answering, the loop reads what the client
    still sends for a moment before closing, so a client that is still writing gets the answer instead of a reset.
    """

    def __init__(self, address, handler, workers, queued, timeout, max_request_bytes, queue_timeout=30.0, read_budget=None):
        self.request_queue_size = max(int(queued), 5)
        super().__init__(address, handler)
        self.socket.setblocking(False)
        self.pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rest")
        self.read_timeout = timeout
        self.queue_timeout = queue_timeout
        self.max_request_bytes = max_request_bytes
        self._slots = threading.BoundedSemaphore(workers + max(int(queued), 0))
        # Reading every waiting client's body at once must not cost (workers + queued) x max_request_bytes of memory.
        # Bytes actually received count, not declared ones: a client that declares much and sends little costs nothing.
        self.read_budget = 4 * max_request_bytes if read_budget is None else read_budget
        self._buffered = 0  # touched by the loop thread only
        self._answered = queue.SimpleQueue()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._stopping = threading.Event()
        self._stopped = threading.Event()

    def serve_forever(self, poll_interval=None):
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ, "accept")
        selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        open_connections = {}
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                wait = min((c.deadline for c in open_connections.values()), default=now + 1.0) - now
                for key, _ in selector.select(min(max(wait, 0.0), 1.0)):
                    if key.data == "accept":
                        self._accept(selector, open_connections)
                    elif key.data == "wake":
                        self._take_answered(selector, open_connections)
                    else:
                        try:
                            self._read(selector, open_connections, key.data)
                        except Exception as error:  # noqa: BLE001  (one connection's fault must not stop the loop that reads all)
                            _log_error(f"REST read: {type(error).__name__}: {error}")
                            if key.data.sock in open_connections:
                                if not key.data.draining:
                                    self._slots.release()
                                self._close(selector, open_connections, key.data)
                now = time.monotonic()
                for connection in [c for c in open_connections.values() if c.deadline <= now]:
                    if not connection.draining:
                        self._send_now(connection.sock, 408, f"The request did not arrive whole within {self.read_timeout} s.")
                        self._slots.release()
                    self._close(selector, open_connections, connection)
        finally:
            for connection in list(open_connections.values()):
                if not connection.draining:
                    self._slots.release()
                self._close(selector, open_connections, connection)
            selector.close()
            self._stopped.set()

    def shutdown(self):
        self._stopping.set()
        self._wake_write.send(b"x")
        self._stopped.wait()

    def server_close(self):
        super().server_close()
        self._wake_read.close()
        self._wake_write.close()

    def _accept(self, selector, open_connections):
        while True:
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of file descriptors: the listen backlog keeps the client until we can
                # The listening socket stays readable meanwhile; without a pause the loop would spin on it.
                time.sleep(0.05)
                return
            sock.setblocking(False)
            connection = _Connection(sock, address, time.monotonic() + self.read_timeout)
            open_connections[sock] = connection
            selector.register(sock, selectors.EVENT_READ, connection)
            if not self._slots.acquire(blocking=False):
                self._refuse(connection, "The server is at capacity; retry later.")

    def _refuse(self, connection, message):
        """503 now, then only drain (the caller has given back its slot and budget)."""
        self._send_now(connection.sock, 503, message, retry_after=1)
        self._drain(connection)

    @staticmethod
    def _drain(connection):
        try:
            connection.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        connection.draining, connection.deadline = True, time.monotonic() + _LINGER_SECONDS

    def _read(self, selector, open_connections, connection):
        try:
            data = connection.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if connection.draining:
            if not data:
                self._close(selector, open_connections, connection)
            return
        if not data:
            if connection.received:
                # The client stopped sending: what it sent gets an answer (a truncated body is a 400).
                self._hand_over(selector, open_connections, connection)
            else:
                self._slots.release()
                self._close(selector, open_connections, connection)
            return
        if self._buffered + len(data) > self.read_budget:
            self._slots.release()
            self._unreserve(connection)
            connection.received = bytearray()
            self._refuse(connection, "The server holds as many request bytes as it may; retry later.")
            return
        connection.received += data
        connection.reserved += len(data)
        self._buffered += len(data)
        if connection.size is None:
            # From just before the new bytes: rescanning the whole head on every byte of a drip-fed one costs quadratic time.
            end = _HEAD_END.search(connection.received, max(0, len(connection.received) - len(data) - 3))
            if end is None:
                if len(connection.received) > _MAX_HEAD_BYTES:
                    self._hand_over(selector, open_connections, connection)  # the handler answers 414/431
                return
            head = bytes(connection.received[: end.end()])
            length = self._body_length(head)
            if length is None:
                self._hand_over(selector, open_connections, connection)  # the handler answers the framing
                return
            connection.size = end.end() + length
            if length and len(connection.received) == end.end() and _EXPECT_CONTINUE.search(head):
                try:
                    connection.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                except OSError:
                    pass
        if len(connection.received) >= connection.size:
            self._hand_over(selector, open_connections, connection)

    def _body_length(self, head):
        """The body's size, or None when the headers alone get an answer (framing the handler refuses)."""
        lengths = [v.decode("latin-1") for v in re.findall(rb"(?im)^content-length:[ \t]*([^\r\n]*?)[ \t]*\r?$", head)]
        encoding = re.search(rb"(?im)^transfer-encoding:[ \t]*([^\r\n]*?)[ \t]*\r?$", head)
        try:
            return _body_length(lengths, encoding and encoding[1].decode("latin-1"), self.max_request_bytes)
        except RequestError:
            return None

    def _hand_over(self, selector, open_connections, connection):
        selector.unregister(connection.sock)
        del open_connections[connection.sock]
        connection.sock.setblocking(True)
        # Now a bound on writing the answer: a client that does not read cannot hold the worker for ever.
        connection.sock.settimeout(self.read_timeout)
        connection.queued_at = time.monotonic()
        self.pool.submit(self._answer, connection)

    def _answer(self, connection):
        try:
            waited = time.monotonic() - connection.queued_at
            if waited > self.queue_timeout:
                # The queue's deadline: its client has likely given up, and computing it now would only delay the
                # requests queued behind it.
                self._send_now(connection.sock, 503, f"The request waited {waited:.1f} s for a worker, more than "
                                                     f"{self.queue_timeout} s; retry later.", retry_after=1)
                return
            self.RequestHandlerClass((connection.sock, bytes(connection.received)), connection.address, self)
        except OSError:
            pass  # the client went away before its answer was written
        except Exception as error:  # noqa: BLE001  (the handler answers its own errors; this is a bug, logged in one line)
            _log_error(f"REST: {type(error).__name__}: {error}")
        finally:
            self._slots.release()
            connection.received = bytearray()
            self._drain(connection)
            self._answered.put(connection)
            try:
                self._wake_write.send(b"x")
            except OSError:  # the server is shutting down
                connection.sock.close()

    def _take_answered(self, selector, open_connections):
        try:
            while self._wake_read.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                connection = self._answered.get_nowait()
            except queue.Empty:
                return
            self._unreserve(connection)
            connection.sock.setblocking(False)
            open_connections[connection.sock] = connection
            selector.register(connection.sock, selectors.EVENT_READ, connection)

    @staticmethod
    def _send_now(sock, status, message, retry_after=None):
        """A short answer from the reading loop itself; it fits in the socket buffer, so it does not block."""
        body = json.dumps({"error": message}).encode("utf-8")
        extra = f"Retry-After: {retry_after}\r\n" if retry_after else ""
        head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\nConnection: close\r\n"
                f"{extra}Content-Length: {len(body)}\r\n\r\n")
        try:
            sock.send(head.encode("ascii") + body)
        except OSError:
            pass

    def _unreserve(self, connection):
        self._buffered -= connection.reserved
        connection.reserved = 0

    def _close(self, selector, open_connections, connection):
        self._unreserve(connection)
        selector.unregister(connection.sock)
        del open_connections[connection.sock]
        connection.sock.close()


class LocalModelServer:
    """Serves exports over gRPC (PredictionService) and REST on 127.0.0.1 by default.

    Args:
        models: {model name: model folder with numeric version subfolders}.
        host: bind address (127.0.0.1: local only).
        grpc_port / rest_port: 0 picks a free port (see `.grpc_port` / `.rest_port` after `start()`); None disables.
        max_batch_size, max_text_bytes, max_request_bytes: request bounds.
        max_workers: requests computed at once (per protocol).
        max_queued_requests: requests that wait for a worker instead of being refused (beyond workers + queue, gRPC
            answers RESOURCE_EXHAUSTED and REST 503 with Retry-After).
        rest_timeout: seconds a REST client has from connecting to send its whole request (then 408); requests are
            read by one loop and reach a worker only when complete, so slow clients never hold a worker.
        queue_timeout: seconds a complete REST request may wait for a worker (then 503 with Retry-After: the queue's
            deadline). A gRPC request waits as long as its client's deadline allows.
        enable_batching: requests that arrive together for one signature (with only [None]-shaped inputs) are run as
            one model call of at most max_batch_size rows, as with TF Serving's --enable_batching.

    Example:
    ```python
    with LocalModelServer({"scifact": "exports/scifact"}, grpc_port=0) as server:
        client = ServingClient(f"127.0.0.1:{server.grpc_port}", "scifact")
    ```
    """

    def __init__(self, models, host="127.0.0.1", grpc_port=8500, rest_port=8501, max_batch_size=DEFAULT_MAX_BATCH_SIZE,
                 max_text_bytes=DEFAULT_MAX_TEXT_BYTES, max_request_bytes=DEFAULT_MAX_REQUEST_BYTES, max_workers=8,
                 max_queued_requests=1024, rest_timeout=30.0, queue_timeout=30.0, enable_batching=False):
        if not models:
            raise ValueError("No models to serve.")
        self.registry = ModelRegistry(models, max_batch_size, max_text_bytes, enable_batching)
        self.host = host
        self._grpc_port, self._rest_port = grpc_port, rest_port
        self.max_request_bytes = max_request_bytes
        self.max_workers = max_workers
        self.max_queued_requests = max_queued_requests
        self.rest_timeout = rest_timeout
        self.queue_timeout = queue_timeout
        self.grpc_port = self.rest_port = None
        self._grpc_server = self._http_server = self._http_thread = None

    def start(self):
        import grpc

        if self._grpc_port is not None:
            options = [("grpc.max_receive_message_length", self.max_request_bytes), ("grpc.max_send_message_length", 64 * 1024 * 1024)]
            self._grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.max_workers), options=options,
                                            maximum_concurrent_rpcs=self.max_workers + self.max_queued_requests)
            _add_prediction_service(self.registry, self._grpc_server)
            self.grpc_port = self._grpc_server.add_insecure_port(f"{self.host}:{self._grpc_port}")
            if not self.grpc_port:
                raise OSError(f"Could not bind gRPC to {self.host}:{self._grpc_port}.")
            self._grpc_server.start()
        if self._rest_port is not None:
            handler = _rest_handler(self.registry, self.max_request_bytes)
            self._http_server = _RestServer((self.host, self._rest_port), handler, self.max_workers, self.max_queued_requests,
                                            self.rest_timeout, self.max_request_bytes, self.queue_timeout)
            self.rest_port = self._http_server.server_address[1]
            self._http_thread = threading.Thread(target=self._http_server.serve_forever, name="rest", daemon=True)
            self._http_thread.start()
        return self

    def stop(self):
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=2).wait()
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server.pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait(self):
        if self._grpc_server is not None:
            self._grpc_server.wait_for_termination()
        elif self._http_thread is not None:
            self._http_thread.join()


def build_parser(prog="python -m tf_dualenc.serving.local_server"):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    return add_server_arguments(parser)


def startup_summary(server, host):
    """What a started server serves, and where: its addresses and each model's version, signatures and folder."""
    return {"grpc": f"{host}:{server.grpc_port}", "rest": f"http://{host}:{server.rest_port}",
            "models": {name: {"version": model.version, "signatures": sorted(model.signatures), "path": model.path}
                       for name, model in server.registry.models.items()}}


def main(argv=None, prog="python -m tf_dualenc.serving.local_server", on_start=None):
    """Parses `argv`, then `serve`s; a model folder or config that is not there is one error line (exit 2)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        serve(args, on_start=on_start)
    except (FileNotFoundError, ValueError) as error:  # a config or model folder that is not there: one line, no traceback
        parser.exit(2, f"{parser.prog}: error: {error}\n")


def serve(args, on_start=None):
    """Starts the server of parsed options (`add_server_arguments`; `tf-dualenc serve` parses them with its own) and
    serves until interrupted. Prints what it serves once it is up, and calls `on_start` with `startup_summary` then
    (`tf-dualenc serve --json` prints it). FileNotFoundError / ValueError for models that cannot be served, before
    anything loads."""
    import tf_dualenc  # noqa: F401  (environment shims)

    configured = read_model_config(args.model_config_file) if args.model_config_file else {}
    given = {}
    for item in args.model:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--model expects NAME=FOLDER; got {item!r}")
        given[name] = folder
    models = {**configured, **given}
    if not models:
        raise ValueError("give --model NAME=FOLDER or --model-config-file")
    check_model_folders({name: path for name, path in configured.items() if name not in given}, args.model_config_file)
    check_model_folders(given)
    server = LocalModelServer(models, args.host, args.grpc_port, args.rest_port, args.max_batch_size, args.max_text_bytes,
                              max_workers=args.max_workers, max_queued_requests=args.max_queued_requests,
                              rest_timeout=args.rest_timeout, queue_timeout=args.queue_timeout,
                              enable_batching=args.enable_batching).start()
    started = startup_summary(server, args.host)
    for name, model in started["models"].items():
        print(f"serving {name} version {model['version']}: signatures {model['signatures']}")
    print(f"gRPC {started['grpc']}  REST {started['rest']}", flush=True)
    if on_start is not None:
        on_start(started)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
