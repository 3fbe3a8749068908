"""A seeded corpus of malformed requests for a TF Serving-compatible server, and its replay over REST and gRPC.

Every case says which answers are acceptable: a specific status where the request has one right answer (400, 413,
408, INVALID_ARGUMENT, ...), or "any status but a server error" for seeded random mutations of valid requests (byte
flips, truncations, duplicated keys, junk, ...), whose right answer depends on what the mutation hit. Never
acceptable: a dropped connection (no HTTP status line) or a 500 / INTERNAL / UNKNOWN.

    python -m tf_dualenc.serving.malformed_requests --address 127.0.0.1:8500 --rest-address http://127.0.0.1:8501 --model-name tiny

Stalled cases (a body that never arrives) wait for the server's read timeout (`--rest-timeout`) before their 408.
"""

import argparse
import concurrent.futures
import dataclasses
import json
import random
import socket
import time
import urllib.parse

# Any answer but a server error; what a mutated request deserves depends on what the mutation hit.
REST_ANSWERED = frozenset(range(200, 500)) | {501, 505}
GRPC_ANSWERED = frozenset({"OK", "INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED", "UNIMPLEMENTED", "FAILED_PRECONDITION",
                           "OUT_OF_RANGE"})
_SERVICE = "/tensorflow.serving.PredictionService/"


@dataclasses.dataclass(frozen=True)
class Case:
    transport: str  # "rest" or "grpc"
    name: str
    payload: bytes  # REST: the whole HTTP request as sent; gRPC: the serialized request message
    expect: frozenset  # acceptable HTTP statuses (int) or gRPC status names
    method: str = "Predict"  # gRPC method
    stall: bool = False  # REST: keep the connection open after sending, as a client that never finishes


def http_request(path, body=b"", headers=None, method="POST", length=None):
    """A whole HTTP/1.1 request; `length` replaces the Content-Length (None: the body's; False: no header)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    if length is not False:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def rest_cases(model_name="tiny", signature="encode_query", input_name="text", max_batch_size=512, max_text_bytes=64 * 1024,
               max_request_bytes=32 * 1024 * 1024, seed=0, mutations=160):
    path = f"/v1/models/{model_name}:predict"

    def body(inputs, **extra):
        return json.dumps({"signature_name": signature, "inputs": inputs, **extra}).encode()

    valid = body({input_name: ["a query", "another query about bone density"]})
    cases = [("valid", http_request(path, valid), {200}),
             ("valid, row format", http_request(path, json.dumps({"signature_name": signature, "instances": ["a"]}).encode()), {200}),
             ("valid, Expect: 100-continue", http_request(path, valid, {"Expect": "100-continue"}), {200})]
    # Bodies that are not a JSON object with inputs.
    for label, raw in [("list", b"[1, 2]"), ("null", b"null"), ("number", b"2.5"), ("string", b'"text"'), ("true", b"true"),
                       ("empty body", b""), ("whitespace", b"   "), ("100,000-deep list", b"[" * 100_000 + b"]" * 100_000),
                       ("100,000-deep object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
                       ("deep list inside inputs", b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
                       ("not JSON", b"inputs=a"), ("invalid UTF-8", b'{"inputs": ["\xff\xfe"]}'), 
                       ("NUL bytes", b"\x00" * 64), ("object without inputs", b"{}"), ("unknown key", b'{"input": ["a"]}'),
                       ("instances not a list", b'{"instances": "a"}'), ("unclosed", b'{"inputs": ["a"'),
                       ("trailing garbage", valid + b"}}"), ("two documents", valid + valid)]:
        cases.append((f"body: {label}", http_request(path, raw), {400}))
    # Text inputs with something other than a string somewhere.
    for label, texts in [("null second", ["a", None]), ("number second", ["a", 2.5]), ("number first", [2.5, "a"]),
                         ("bool first", [True, "a"]), ("object first", [{}, "a"]), ("ragged", [["a"], "a"]), ("nested", [["a"], ["b"]]),
                         ("NaN", ["a", float("nan")]), ("huge number", ["a", 1e308]), ("all numbers", [1, 2]), ("empty", []),
                         ("scalar", "a"), ("null", None), ("too many", ["a"] * (max_batch_size + 1)),
                         ("too long", ["x" * (max_text_bytes + 1)]), ("object", {"a": "b"})]:
        cases.append((f"text: {label}", http_request(path, body({input_name: texts})), {400}))
    for label, raw in [("lone high surrogate", b'{"inputs": ["\\ud800"]}'), ("lone low surrogate", b'{"inputs": ["a", "\\udc00"]}'),
                       ("NaN literal", b'{"inputs": ["a", NaN]}'), ("Infinity", b'{"inputs": [Infinity]}'), ("1e999", b'{"inputs": [1e999]}'),
                       ("duplicated key, bad last", b'{"inputs": ["a"], "inputs": [1]}'),
                       ("instances mixing objects and values", json.dumps({"instances": [{input_name: "a"}, 5]}).encode()),
                       ("instances with a missing input", json.dumps({"instances": [{input_name: "a"}, {"other": "b"}]}).encode()),
                       ("empty instances", b'{"instances": []}'), ("empty inputs object", b'{"inputs": {}}'),
                       ("wrong input name", json.dumps({"inputs": {"query": ["a"]}}).encode()),
                       ("extra input", json.dumps({"inputs": {input_name: ["a"], "other": ["b"]}}).encode())]:
        cases.append((f"json: {label}", http_request(path, raw), {400}))
    for label, value in [("object", {"a": 1}), ("number", 5), ("list", ["encode_query"]), ("unknown", "classify")]:
        cases.append((f"signature_name: {label}", http_request(path, json.dumps({"signature_name": value, "inputs": ["a"]}).encode()), {400}))
    # Python's JSON reader accepts a UTF-8 byte order mark; TF Serving's may not.
    cases.append(("byte order mark", http_request(path, b'\xef\xbb\xbf' + valid), {200, 400}))
    cases.append(("duplicated key, good last", http_request(path, b'{"inputs": [1], "inputs": ["a"]}'), {200}))
    # Framing: Content-Length and Transfer-Encoding.
    for label, length in [("abc", "abc"), ("-1", "-1"), ("1e3", "1e3"), ("+5", "+5"), ("0x10", "0x10"), ("empty", ""),
                          ("non-ASCII digits", "\u0661\u0662")]:
        cases.append((f"Content-Length {label}", http_request(path, b"{}", length=length.encode("utf-8").decode("latin-1")), {400}))
    cases += [("Content-Length one over the limit", http_request(path, valid, length=max_request_bytes + 1), {413}),
              ("Content-Length 10**30", http_request(path, valid, length=10**30), {413}),
              ("two Content-Length headers", http_request(path, valid, {"Content-Length": str(len(valid) + 5)}), {400}),
              ("chunked", http_request(path, b"5\r\n{\"in\"\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}, length=False), {400}),
              ("no Content-Length", http_request(path, valid, length=False), {400}),
              ("Content-Length shorter than the body", http_request(path, valid, length=len(valid) // 2), {400})]
    for fraction in (0.0, 0.1, 0.5, 0.9):
        cut = int(len(valid) * fraction)
        cases.append((f"truncated body ({cut} of {len(valid)} bytes), then EOF", http_request(path, valid, length=len(valid))[: -len(valid) + cut or None], {400}))
    # Content types: the body decides, as in TF Serving.
    for content_type, raw, statuses in [("text/plain", valid, {200}), ("application/x-www-form-urlencoded", b"text=a", {400}),
                                        ("multipart/form-data; boundary=x", b"--x\r\n\r\na\r\n--x--", {400}),
                                        ("application/octet-stream", b"\x00\x01\x02", {400}), ("application/json; charset=latin-1", valid, {200})]:
        cases.append((f"Content-Type {content_type}", http_request(path, raw, {"Content-Type": content_type}), statuses))
    # Request line, path, method and headers.
    cases += [("unknown model", http_request(f"/v1/models/{model_name}_nope:predict", valid), {404}),
              ("unknown version", http_request(f"/v1/models/{model_name}/versions/999:predict", valid), {404}),
              ("unknown path", http_request("/v2/whatever", valid), {404}),
              ("path with traversal", http_request(f"/v1/models/../../etc/passwd:predict", valid), {404}),
              ("POST to metadata", http_request(f"/v1/models/{model_name}/metadata", valid), {400}),
              ("GET predict", http_request(path, b"", method="GET", length=False), {400}),
              ("PUT", http_request(path, valid, method="PUT"), {501}), ("DELETE", http_request(path, b"", method="DELETE"), {501}),
              ("empty request line", b"\r\n\r\n", {400}), ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", {400}),
              ("HTTP/2.0", http_request(path, valid).replace(b"HTTP/1.1", b"HTTP/2.0", 1), {505}),
              ("HTTP/1.x", http_request(path, valid).replace(b"HTTP/1.1", b"HTTP/1.x", 1), {400}),
              ("70 KB header", http_request(path, valid, {"X-Long": "a" * 70_000}), {400, 414, 431}),
              ("70 KB request line", http_request("/" + "a" * 70_000, valid), {400, 414, 431}),
              ("200 headers", http_request(path, valid, {f"X-H{i}": "a" for i in range(200)}), {431}),
              ("header without colon", http_request(path, valid).replace(b"Host: localhost", b"Host localhost"), {200, 400}),
              ("bare LF line ends", http_request(path, valid).replace(b"\r\n", b"\n"), {200})]
    # Bodies that never finish: the server's read timeout answers them.
    cases += [("stalled: 10 of 1,000 promised bytes", http_request(path, b'{"inputs":', length=1000), {408}, True),
              ("stalled: half a request line", b"POST /v1/mod", {408}, True),
              ("stalled: headers without their end", http_request(path, b"")[:-2], {408}, True)]
    rng = random.Random(seed)
    valids = [body({input_name: ["a query"]}), valid, body({input_name: ["q%d" % i for i in range(5)]}),
              json.dumps({"instances": [{input_name: "a"}, {input_name: "b"}]}).encode()]
    for index in range(mutations):
        kind, mutated = _mutate(rng, rng.choice(valids))
        if kind == "header byte flip":
            request = bytearray(http_request(path, mutated))
            head = request.index(b"\r\n\r\n")
            request[rng.randrange(head)] ^= 1 << rng.randrange(8)
            cases.append((f"mutation {index}: {kind}", bytes(request), set(REST_ANSWERED)))
        else:
            cases.append((f"mutation {index}: {kind}", http_request(path, mutated), set(REST_ANSWERED)))
    return [Case("rest", name, payload, frozenset(expect), stall=bool(rest and rest[0])) for name, payload, expect, *rest in cases]


_BYTE_MUTATIONS = ["byte flip", "byte flips", "truncation", "junk inserted", "span deleted"]


def _mutate_bytes(rng, data, kind, junk=bytes(range(256))):
    """A byte-level mutation of `data` (a bytearray), in place or returned: flips, a truncation, junk, a deletion."""
    if kind == "byte flip":
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "byte flips":
        for _ in range(rng.randint(2, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "truncation":
        data = data[: rng.randrange(len(data))]
    elif kind == "junk inserted":
        at = rng.randrange(len(data) + 1)
        data[at:at] = bytes(rng.choice(junk) for _ in range(rng.randint(1, 16)))
    elif kind == "span deleted":
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 20)]
    return data


def _mutate(rng, data):
    """One seeded random mutation of a valid JSON body: (kind, bytes)."""
    data = bytearray(data)
    kind = rng.choice(_BYTE_MUTATIONS + ["duplicated key", "string to number", "bracket swapped", "header byte flip"])
    if kind in _BYTE_MUTATIONS:
        # JSON's own characters (and a NUL, a non-UTF-8 byte) hit the parser harder than random bytes.
        data = _mutate_bytes(rng, data, kind, junk=b'[]{}",:\\0123456789aen\x00\xff ')
    elif kind == "duplicated key":
        text = data.decode()
        key = rng.choice(['"inputs"', '"instances"', '"signature_name"']) if rng.random() < 0.7 else '"text"'
        at = text.find(key)
        if at >= 0:
            end = text.find(",", at)
            end = end if end >= 0 else text.rfind("}")
            text = text[:1] + text[at:end] + ", " + text[1:]
        data = bytearray(text.encode())
    elif kind == "string to number":
        text = data.decode()
        at = text.find('"', text.find("[") if "[" in text else 0)
        close = text.find('"', at + 1)
        if at >= 0 and close > at:
            text = text[:at] + str(rng.choice([0, -1, 2.5, 1e308, "null", "true", "{}", "[]"])) + text[close + 1 :]
        data = bytearray(text.encode())
    elif kind == "bracket swapped":
        positions = [i for i, b in enumerate(data) if b in b"[]{}"]
        if positions:
            at = rng.choice(positions)
            data[at] = rng.choice(b"[]{}")
    return kind, bytes(data)


def grpc_cases(model_name="tiny", signature="encode_query", input_name="text", max_batch_size=512, max_text_bytes=64 * 1024,
               seed=0, mutations=100):
    import numpy as np
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, inference_pb2, predict_pb2,
                                         regression_pb2)

    def request(texts=("a query",), name=model_name, sig=signature, inputs=None, version=None):
        message = predict_pb2.PredictRequest()
        message.model_spec.name, message.model_spec.signature_name = name, sig
        if version is not None:
            message.model_spec.version.value = version
        for key, proto in (inputs if inputs is not None else {input_name: strings(texts)}).items():
            message.inputs[key].CopyFrom(proto)
        return message.SerializeToString()

    def strings(texts, shape=None):
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        for size in (shape if shape is not None else [len(texts)]):
            proto.tensor_shape.dim.add().size = size
        proto.string_val.extend(t if isinstance(t, bytes) else t.encode("utf-8") for t in texts)
        return proto

    def tensor(dtype, shape, **fields):
        proto = tensor_pb2.TensorProto(dtype=dtype, **fields)
        for size in shape:
            proto.tensor_shape.dim.add().size = size
        return proto

    invalid, ok_or_invalid = {"INVALID_ARGUMENT"}, {"OK", "INVALID_ARGUMENT"}
    cases = [("valid", request(), {"OK"}), ("valid, two texts", request(["a", "b c"]), {"OK"}),
             ("unknown model", request(name=f"{model_name}_nope"), {"NOT_FOUND"}), ("no model name", request(name=""), {"NOT_FOUND"}),
             ("unknown version", request(version=999), {"NOT_FOUND"}), ("unknown signature", request(sig="classify"), invalid),
             ("no inputs", request(inputs={}), invalid), ("wrong input name", request(inputs={"query": strings(["a"])}), invalid),
             ("extra input", request(inputs={input_name: strings(["a"]), "other": strings(["b"])}), invalid),
             ("empty batch", request(inputs={input_name: strings([], [0])}), invalid),
             ("too many texts", request(["a"] * (max_batch_size + 1)), invalid), ("text too long", request(["x" * (max_text_bytes + 1)]), invalid),
             ("empty message", b"", {"NOT_FOUND"}), ("empty text", request([""]), {"OK"}),
             ("invalid UTF-8 text", request([b"\xff\xfe\xfd"]), ok_or_invalid),
             ("fewer values than the shape", request(inputs={input_name: strings(["a"], [3])}), ok_or_invalid),
             ("more values than the shape", request(inputs={input_name: strings(["a"] * 5, [1])}), invalid),
             ("scalar", request(inputs={input_name: strings(["a"], [])}), invalid),
             ("matrix", request(inputs={input_name: strings(["a", "b"], [1, 2])}), invalid),
             ("unknown rank", request(inputs={input_name: tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"a"],
                                                                                 tensor_shape={"unknown_rank": True})}), invalid),
             ("string tensor_content", request(inputs={input_name: tensor(types_pb2.DT_STRING, [2], tensor_content=b"abcdefgh")}), invalid)]
    for label, shape in [("[20,000,000]", [20_000_000]), ("[2**62]", [2**62]), ("[16, 100,000]", [16, 100_000]), ("[-1]", [-1]),
                         ("[1, -5]", [1, -5]), ("40 dimensions", [1] * 40), ("[1, 2**40]", [1, 2**40])]:
        cases.append((f"declared shape {label}", request(inputs={input_name: strings(["one value"], shape)}), invalid))
    for label, proto in [("DT_FLOAT", tensor(types_pb2.DT_FLOAT, [2], float_val=[1.0, 2.0])),
                         ("DT_INT32", tensor(types_pb2.DT_INT32, [1], int_val=[7])), ("DT_INT64", tensor(types_pb2.DT_INT64, [1], int64_val=[7])),
                         ("DT_BOOL", tensor(types_pb2.DT_BOOL, [1], bool_val=[True])), ("DT_HALF", tensor(types_pb2.DT_HALF, [1], half_val=[1])),
                         ("DT_DOUBLE", tensor(types_pb2.DT_DOUBLE, [1], double_val=[1.0])),
                         ("DT_COMPLEX64", tensor(types_pb2.DT_COMPLEX64, [1], scomplex_val=[1.0, 2.0])),
                         ("DT_INVALID", tensor(types_pb2.DT_INVALID, [1])), ("DT_RESOURCE", tensor(types_pb2.DT_RESOURCE, [1])),
                         ("DT_VARIANT", tensor(types_pb2.DT_VARIANT, [1])), ("dtype 999", tensor(999, [1], string_val=[b"a"])),
                         ("DT_FLOAT tensor_content of the wrong size", tensor(types_pb2.DT_FLOAT, [4], tensor_content=b"\x00" * 7)),
                         ("DT_FLOAT declared [20,000,000]", tensor(types_pb2.DT_FLOAT, [20_000_000], float_val=[1.0])),
                         ("DT_FLOAT tensor_content [1, 2**31]", tensor(types_pb2.DT_FLOAT, [1, 2**31], tensor_content=np.zeros(4, np.float32).tobytes()))]:
        cases.append((f"dtype: {label}", request(inputs={input_name: proto}), invalid))
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = model_name
    cases += [("metadata without a field", metadata.SerializeToString(), invalid, "GetModelMetadata")]
    metadata.metadata_field.append("bogus")
    cases += [("metadata, unknown field", metadata.SerializeToString(), invalid, "GetModelMetadata"),
              ("metadata, garbage bytes", b"\xff\xff\xff\xff", invalid, "GetModelMetadata"),
              ("Classify", classification_pb2.ClassificationRequest().SerializeToString(), {"UNIMPLEMENTED"}, "Classify"),
              ("Regress", regression_pb2.RegressionRequest().SerializeToString(), {"UNIMPLEMENTED"}, "Regress"),
              ("MultiInference", inference_pb2.MultiInferenceRequest().SerializeToString(), {"UNIMPLEMENTED"}, "MultiInference")]
    rng = random.Random(seed)
    cases += [("garbage: 0xff bytes", b"\xff" * 32, invalid), ("garbage: varint overflow", b"\x0a" + b"\xff" * 11, invalid),
              ("garbage: length past the end", b"\x0a\xff\x7f" + b"a" * 10, invalid),
              ("garbage: deep nested messages", b"\x0a\x02" * 10 + b"\x0a" * 200, GRPC_ANSWERED)]
    cases += [(f"garbage: random {n} bytes", bytes(rng.randrange(256) for _ in range(n)), GRPC_ANSWERED) for n in (1, 7, 100, 1000)]
    valids = [request(), request(["a", "b c"]), request(["q%d" % i for i in range(5)])]
    for index in range(mutations):
        data = bytearray(rng.choice(valids))
        kind = rng.choice(_BYTE_MUTATIONS + ["duplicated field"])
        if kind in _BYTE_MUTATIONS:
            data = _mutate_bytes(rng, data, kind)
        else:  # a field repeated: protobuf merges or replaces, a fair test of the shape checks
            data += data[: rng.randrange(1, len(data) + 1)]
        cases.append((f"mutation {index}: {kind}", bytes(data), GRPC_ANSWERED))
    return [Case("grpc", name, payload, frozenset(expect), method=rest[0] if rest else "Predict") for name, payload, expect, *rest in cases]


def corpus(model_name="tiny", seed=0, **limits):
    """Both transports' cases; `limits`: max_batch_size, max_text_bytes (and max_request_bytes for REST) of the server."""
    grpc_limits = {k: v for k, v in limits.items() if k != "max_request_bytes"}
    return rest_cases(model_name, seed=seed, **limits) + grpc_cases(model_name, seed=seed, **grpc_limits)


def send_rest(host, port, case, timeout=30.0):
    """(HTTP status or None when the connection closed without one, the answer's bytes)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(case.payload)
            if not case.stall:
                sock.shutdown(socket.SHUT_WR)  # the client has said all it will: the server sees the end
        except OSError:
            pass  # the server may answer (and close) before reading everything; its answer is still readable
        answer = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
    # Interim 1xx answers (100 Continue) come before the final one.
    while answer.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in answer:
        answer = answer[answer.index(b"\r\n\r\n") + 4 :]
    parts = answer.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else None
    return status, answer


def send_grpc(channel, case, timeout=30.0):
    """(gRPC status name, details)."""
    import grpc

    call = channel.unary_unary(_SERVICE + case.method)  # bytes in, bytes out: the payload goes as it is
    try:
        call(case.payload, timeout=timeout)
        return "OK", ""
    except grpc.RpcError as error:
        return error.code().name, error.details() or ""


def replay(cases, grpc_address=None, rest_address=None, workers=16, timeout=30.0):
    """Sends every case (in parallel) to its transport; returns [(case, status, detail, acceptable)]."""
    import grpc

    channel = grpc.insecure_channel(grpc_address) if grpc_address else None
    rest = urllib.parse.urlsplit(rest_address) if rest_address else None

    def one(case):
        if case.transport == "grpc":
            status, detail = send_grpc(channel, case, timeout)
        else:
            status, answer = send_rest(rest.hostname, rest.port, case, timeout)
            detail = answer[-300:].decode("utf-8", "replace")
        return case, status, detail, status in case.expect

    selected = [c for c in cases if (c.transport == "grpc" and channel) or (c.transport == "rest" and rest)]
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, selected))
    finally:
        if channel is not None:
            channel.close()


def wait_for_listener(address, seconds):
    """Waits until host:port (or http://host:port) accepts connections: a server just started loads its models first."""
    url = urllib.parse.urlsplit(address if "//" in address else f"//{address}")
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((url.hostname, url.port), timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tf_dualenc.serving.malformed_requests", description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", help="gRPC host:port")
    parser.add_argument("--rest-address", help="REST http://host:port")
    parser.add_argument("--model-name", default="tiny", help="a served encoder export's name (default: %(default)s)")
    parser.add_argument("--max-batch-size", type=int, default=512, help="the server's limit (default: %(default)s)")
    parser.add_argument("--max-text-bytes", type=int, default=64 * 1024, help="the server's limit (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the server to listen (default: %(default)s)")
    args = parser.parse_args(argv)
    if not (args.address or args.rest_address):
        parser.error("give --address and/or --rest-address")
    for address in filter(None, (args.address, args.rest_address)):
        wait_for_listener(address, args.wait)
    start = time.perf_counter()
    cases = corpus(args.model_name, args.seed, max_batch_size=args.max_batch_size, max_text_bytes=args.max_text_bytes)
    results = replay(cases, args.address, args.rest_address)
    failed = [r for r in results if not r[3]]
    for case, status, detail, _ in failed:
        print(f"FAIL {case.transport} {case.name}: got {status}, expected {sorted(case.expect, key=str)[:6]}: {detail[:200]!r}")
    print(f"{len(results) - len(failed)}/{len(results)} cases answered as expected ({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
