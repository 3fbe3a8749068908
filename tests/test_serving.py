"""The TF Serving client against the local PredictionService server: Predict, metadata, REST, bad requests, load."""

import concurrent.futures
import json
import urllib.request

import numpy as np
import pytest

from test_export import CORPUS, DOC_IDS
from test_models import QUERIES, tiny
from tf_dualenc.serving.client import ServingClient, ServingError
from tf_dualenc.serving.local_server import LocalModelServer, read_model_config


@pytest.fixture(scope="module")
def served(tmp_path_factory, t5_vocabulary):
    from tf_dualenc.export import export_encoder, export_retrieval_model

    model = tiny(t5_vocabulary, "ade_spl")
    base = tmp_path_factory.mktemp("models")
    export_encoder(model, str(base), "tiny")
    export_encoder(model, str(base), "tiny")  # version 2: the server serves the latest
    documents = model.encode_documents(CORPUS)
    export_retrieval_model(model, DOC_IDS, documents, str(base), "tiny_retrieval", k=3)
    server = LocalModelServer({"tiny": str(base / "tiny"), "tiny_retrieval": str(base / "tiny_retrieval")},
                              grpc_port=0, rest_port=0, max_batch_size=16, max_text_bytes=200).start()
    yield model, documents, server
    server.stop()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_client_predicts_like_the_in_process_model(served, transport):
    model, documents, server = served
    address = f"127.0.0.1:{server.grpc_port}" if transport == "grpc" else f"http://127.0.0.1:{server.rest_port}"
    client = ServingClient(address, "tiny")
    np.testing.assert_allclose(client.encode(QUERIES), model.encode_queries(QUERIES), atol=1e-5)
    np.testing.assert_allclose(client.encode(QUERIES, "encode_document"), model.encode_documents(QUERIES), atol=1e-5)
    np.testing.assert_allclose(client.predict({"text": QUERIES[:2]})["embedding"], model.encode_queries(QUERIES[:2]), atol=1e-5)
    metadata = client.get_model_metadata()
    assert metadata["model"] == {"name": "tiny", "version": 2}
    assert set(metadata["signatures"]) >= {"serving_default", "encode_query", "encode_document"}
    assert metadata["signatures"]["encode_query"]["inputs"]["text"] == {"dtype": "DT_STRING", "shape": [-1]}
    assert metadata["signatures"]["encode_query"]["outputs"]["embedding"]["shape"] == [-1, 64]

    retrieval = ServingClient(address, "tiny_retrieval")
    got = retrieval.predict({"text": QUERIES}, "search")
    want = np.argsort(-(model.encode_queries(QUERIES) @ documents.T), axis=1, kind="stable")[:, :3]
    ids = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in got["document_ids"]]
    assert ids == [[DOC_IDS[j] for j in row] for row in want]
    client.close()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_bad_requests_get_tf_serving_status_codes(served, transport):
    _, _, server = served
    address = f"127.0.0.1:{server.grpc_port}" if transport == "grpc" else f"http://127.0.0.1:{server.rest_port}"
    cases = [
        (ServingClient(address, "nope"), {"text": ["a"]}, "encode_query", "NOT_FOUND", "Latest(nope)"),
        (ServingClient(address, "tiny", version=1), {"text": ["a"]}, "encode_query", "NOT_FOUND", "Specific(tiny, 1)"),
        (ServingClient(address, "tiny"), {"text": ["a"]}, "classify", "INVALID_ARGUMENT", '"classify" not found'),
        (ServingClient(address, "tiny"), {"text": np.zeros(2, np.float32)}, "encode_query", "INVALID_ARGUMENT", "must be DT_STRING"),
        (ServingClient(address, "tiny"), {"query": ["a"]}, "encode_query", "INVALID_ARGUMENT", "takes inputs ['text']"),
        (ServingClient(address, "tiny"), {"text": np.array([], object)}, "encode_query", "INVALID_ARGUMENT", "empty batch"),
        (ServingClient(address, "tiny"), {"text": ["x" * 201]}, "encode_query", "INVALID_ARGUMENT", "longer than 200 bytes"),
        (ServingClient(address, "tiny"), {"text": ["a"] * 17}, "encode_query", "INVALID_ARGUMENT", "exceeds the limit of 16"),
        (ServingClient(address, "tiny"), {"text": [["a"]]}, "encode_query", "INVALID_ARGUMENT", "must have shape [None]"),
    ]
    for client, inputs, signature, code, message in cases:
        with pytest.raises(ServingError) as error:
            client.predict(inputs, signature)
        assert error.value.code == code and message in error.value.message, (signature, error.value)


def test_rest_row_format_and_unimplemented_grpc_methods(served):
    import grpc
    from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc

    model, _, server = served
    body = json.dumps({"signature_name": "encode_query", "instances": QUERIES[:2]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}/v1/models/tiny:predict", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        predictions = json.loads(response.read())["predictions"]
    np.testing.assert_allclose(predictions, model.encode_queries(QUERIES[:2]), atol=1e-5)
    with urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/v1/models/tiny", timeout=30) as response:
        assert json.loads(response.read())["model_version_status"][0] == {"version": "2", "state": "AVAILABLE",
                                                                          "status": {"error_code": "OK", "error_message": ""}}
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
    with pytest.raises(grpc.RpcError) as error:
        stub.Classify(classification_pb2.ClassificationRequest(), timeout=10)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_parallel_clients_each_get_their_own_answers(served):
    model, _, server = served
    texts = [f"question number {i} about {QUERIES[i % len(QUERIES)]}" for i in range(48)]
    want = model.encode_queries(texts)

    def one(i):
        # Each request carries its own texts, so a mixed-up response would not match.
        client = ServingClient(f"127.0.0.1:{server.grpc_port}" if i % 2 else f"http://127.0.0.1:{server.rest_port}", "tiny", timeout=120)
        got = client.encode(texts[i : i + 3])
        client.close()
        return i, got

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(0, 45)))
    assert len(results) == 45
    for i, got in results:
        np.testing.assert_allclose(got, want[i : i + 3], atol=1e-5)


def test_model_config_file_is_read_like_tf_serving(tmp_path):
    from conftest import REPO

    models = read_model_config(str(REPO / "serving" / "models.config"))
    assert set(models) == {"dual_encoder", "dual_encoder_retrieval"}
    assert models["dual_encoder"] == "/models/dual_encoder"
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ValueError, match=r"bad\.config: not a TF Serving model config"):
        read_model_config(str(bad))
    with pytest.raises(FileNotFoundError, match=r"no numeric version folder"):
        LocalModelServer({"x": str(tmp_path)})


def test_a_model_config_whose_folders_are_not_here_is_one_clear_error(capsys):
    """docs/serving.md's command with the container's config: exit 2 naming the config file and the missing base_path,
    no traceback (it used to end in one from deep inside the server)."""
    from conftest import REPO
    from tf_dualenc.serving.local_server import main

    with pytest.raises(SystemExit) as exited:
        main(["--model-config-file", str(REPO / "serving" / "models.config")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "models.config: model 'dual_encoder': base_path /models/dual_encoder does not exist" in err
    assert "serving/models.local.config" in err and "--model NAME=FOLDER" in err


def test_serve_prints_what_it_serves_as_json_once_it_is_up(served, capsys, monkeypatch):
    """`tf-dualenc serve --json`: the addresses and each model's version, signatures and folder, as one JSON line on
    stdout while the server runs (the server's text lines go to stderr)."""
    import os

    from tf_dualenc import cli

    _, _, server = served
    base = os.path.dirname(server.registry.models["tiny"].path)
    running = {}

    def wait(self):  # instead of serving until interrupted: ask the running server for its metadata, then stop
        out, running["err"] = capsys.readouterr()  # printed before the server waits: a client can read it and connect
        running["summary"] = json.loads(out)
        with urllib.request.urlopen(f"{running['summary']['rest']}/v1/models/tiny", timeout=30) as response:
            running["status"] = json.loads(response.read())
        self.stop()

    monkeypatch.setattr(LocalModelServer, "wait", wait)
    assert cli.main(["serve", "--model", f"tiny={base}", "--grpc-port", "0", "--rest-port", "0", "--json"]) == 0
    summary = running["summary"]
    assert summary["grpc"].startswith("127.0.0.1:") and summary["rest"].startswith("http://127.0.0.1:")
    assert summary["models"] == {"tiny": {"version": 2, "signatures": ["encode_document", "encode_query", "serving_default"],
                                          "path": os.path.join(base, "2")}}
    assert running["status"]["model_version_status"][0]["version"] == "2"
    assert "serving tiny version 2" in running["err"] and f"gRPC {summary['grpc']}  REST {summary['rest']}" in running["err"]
    assert capsys.readouterr().out == ""  # the one line, once


def test_the_local_model_config_points_at_the_docs_exports(tmp_path):
    from conftest import REPO
    from tf_dualenc.serving.local_server import check_model_folders

    # serving/models.local.config's relative paths are read from its folder: the repository's exports/ folder, where
    # docs/serving.md's `tf-dualenc export ... --export-base exports --model-name scifact` writes.
    assert read_model_config(str(REPO / "serving" / "models.local.config")) == {"scifact": str(REPO / "exports" / "scifact")}
    # A config like it beside an export folder passes the check the server makes before loading anything.
    config = tmp_path / "serving" / "models.local.config"
    config.parent.mkdir()
    config.write_text((REPO / "serving" / "models.local.config").read_text())
    (tmp_path / "exports" / "scifact" / "1").mkdir(parents=True)
    check_model_folders(read_model_config(str(config)), str(config))
    (tmp_path / "exports" / "scifact" / "1").rmdir()
    with pytest.raises(FileNotFoundError, match=r"models\.local\.config: model 'scifact': no numeric version folder"):
        check_model_folders(read_model_config(str(config)), str(config))


def test_deployment_files_agree_with_the_model_config():
    import yaml

    from conftest import REPO

    compose = yaml.safe_load((REPO / "serving" / "docker-compose.yml").read_text())
    assert "--model_config_file=/models/models.config" in compose["services"]["tf-serving"]["command"]
    documents = list(yaml.safe_load_all((REPO / "serving" / "kubernetes.yaml").read_text()))
    kinds = [d["kind"] for d in documents]
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    embedded = text_format.Parse(documents[0]["data"]["models.config"], model_server_config_pb2.ModelServerConfig())
    assert {c.name: c.base_path for c in embedded.model_config_list.config} == read_model_config(str(REPO / "serving" / "models.config"))
    assert "tensorflow/serving:2.19.1" in (REPO / "serving" / "Dockerfile").read_text()


def test_retrieval_in_one_call_through_the_server(served, tmp_path, capsys):
    from tf_dualenc import cli
    from tf_dualenc.indexing import RetrievalIndex, build_index
    from tf_dualenc.indexing.query_encoders import serving_query_encoder

    model, documents, server = served
    build_index(zip(DOC_IDS, CORPUS, documents), tmp_path / "index", dimension=64, count=len(DOC_IDS), model_info={"model_name": "tiny"},
                print_fn=lambda *_: None)
    index = RetrievalIndex.load(str(tmp_path / "index"))
    hits = index.search(QUERIES[:2], serving_query_encoder(f"127.0.0.1:{server.grpc_port}", "tiny"), k=3)
    want = np.argsort(-(model.encode_queries(QUERIES[:2]) @ documents.T), axis=1, kind="stable")[:, :3]
    assert [[h["id"] for h in row] for row in hits] == [[DOC_IDS[j] for j in row] for row in want]
    assert hits[0][0]["text"] == CORPUS[want[0][0]]
    capsys.readouterr()
    assert cli.main(["search", "--index", str(tmp_path / "index"), "--server", f"http://127.0.0.1:{server.rest_port}",
                     "--query", QUERIES[0], "--k", "3", "--json"]) == 0
    assert [h["id"] for h in json.loads(capsys.readouterr().out)["hits"]] == [DOC_IDS[j] for j in want[0]]
    assert cli.main(["search", "--index", str(tmp_path / "index"), "--server", f"127.0.0.1:{server.grpc_port}",
                     "--model-name", "nope", "--query", "x"]) == 2
    assert "NOT_FOUND" in capsys.readouterr().err


@pytest.mark.slow
def test_two_stage_search_reranks_through_the_server(served, tmp_path, t5_vocabulary, capsys):
    from tf_dualenc import cli
    from tf_dualenc.export import export_cross_encoder, export_encoder
    from tf_dualenc.indexing import RetrievalIndex, build_index
    from tf_dualenc.models import build_t5_cross_encoder
    from tf_dualenc.reranking import rerank_hits, serving_reranker

    model, documents, _ = served
    reranker = build_t5_cross_encoder("tiny", vocabulary=t5_vocabulary, sequence_length=40, dropout=0.0)
    export_encoder(model, str(tmp_path / "models"), "tiny")
    export_cross_encoder(reranker, str(tmp_path / "models"), "reranker")
    server = LocalModelServer({name: str(tmp_path / "models" / name) for name in ("tiny", "reranker")}, grpc_port=0, rest_port=0).start()
    try:
        for address in (f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}"):
            scorer = serving_reranker(address, "reranker", batch_size=2)
            np.testing.assert_allclose(scorer(QUERIES[:3], CORPUS[:3]), reranker.score_pairs(QUERIES[:3], CORPUS[:3]), atol=1e-5)
            with pytest.raises(ValueError, match="as many queries as documents"):
                scorer(QUERIES[:2], CORPUS[:1])

        build_index(zip(DOC_IDS, CORPUS, documents), tmp_path / "index", dimension=64, count=len(DOC_IDS),
                    model_info={"model_name": "tiny"}, print_fn=lambda *_: None)
        first = RetrievalIndex.load(str(tmp_path / "index")).search_embeddings(model.encode_queries(QUERIES[:1]), k=4, with_text=True)[0]
        expected = rerank_hits(QUERIES[0], first, reranker.score_pairs, top_n=2)
        capsys.readouterr()
        assert cli.main(["search", "--index", str(tmp_path / "index"), "--server", f"127.0.0.1:{server.grpc_port}", "--query", QUERIES[0],
                         "--k", "2", "--rerank-k", "4", "--rerank-model-name", "reranker", "--json"]) == 0
        hits = json.loads(capsys.readouterr().out)["hits"]
        assert [h["id"] for h in hits] == [h["id"] for h in expected]
        np.testing.assert_allclose([h["score"] for h in hits], [h["score"] for h in expected], atol=1e-5)
        assert cli.main(["search", "--index", str(tmp_path / "index"), "--query", "x", "--rerank-model-name", "reranker"]) == 2
        assert "--rerank-model-name re-ranks through --server" in capsys.readouterr().err
    finally:
        server.stop()


def _raw_rest(port, body, headers=None):
    """Sends one POST with raw bytes and headers; returns (status, parsed JSON body) or (None, None) when the server
    closed the connection without an answer."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/models/tiny:predict")
        for key, value in (headers or {"Content-Length": str(len(body))}).items():
            connection.putheader(key, value)
        connection.endheaders()
        connection.send(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None, None
    finally:
        connection.close()


@pytest.mark.parametrize("body,message", [
    (b"[1, 2]", "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (json.dumps({"signature_name": "encode_query", "inputs": ["a", None]}).encode(), "item 1 is NoneType, not a string"),
    (json.dumps({"signature_name": "encode_query", "inputs": ["a", 2.5]}).encode(), "item 1 is float, not a string"),
    (json.dumps({"signature_name": "encode_query", "inputs": [2.5, "a"]}).encode(), "item 0 is float, not a string"),
    (b'{"signature_name": "encode_query", "inputs": ["\\ud800"]}', "not valid Unicode"),
])
def test_rest_answers_every_malformed_body_with_400(served, body, message):
    _, _, server = served
    status, reply = _raw_rest(server.rest_port, body)
    assert status == 400 and message in reply["error"], reply


@pytest.mark.parametrize("length", ["abc", "-1"])
def test_rest_refuses_a_content_length_it_cannot_frame(served, length):
    _, _, server = served
    status, reply = _raw_rest(server.rest_port, b"{}", {"Content-Length": length})
    assert status == 400 and "is not a non-negative integer" in reply["error"]
    # The server still answers well-formed requests afterwards.
    status, reply = _raw_rest(server.rest_port, json.dumps({"signature_name": "encode_query", "inputs": ["a"]}).encode())
    assert status == 200 and len(reply["outputs"]) == 1


@pytest.mark.parametrize("dims,message", [([20_000_000], "declared batch of 20000000 exceeds the limit of 16"),
                                          ([16, 100_000], "holds 1600000 values; the limit is 1024"),
                                          ([-1], "negative dimension")])
def test_grpc_checks_the_declared_shape_before_allocating(served, dims, message):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    _, _, server = served
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "tiny", "encode_query"
    proto = request.inputs["text"]
    proto.dtype = 7  # DT_STRING
    for size in dims:
        proto.tensor_shape.dim.add().size = size
    proto.string_val.append(b"one value, a huge declared shape")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()


def test_load_beyond_the_workers_is_queued_not_refused_and_slow_clients_are_cut_off(served, tmp_path):
    import socket
    import threading
    import time

    model, _, _ = served
    export = tmp_path / "m"
    from tf_dualenc.export import export_encoder

    export_encoder(model, str(tmp_path), "m")
    with LocalModelServer({"m": str(export)}, grpc_port=0, rest_port=0, max_workers=2, rest_timeout=1.0) as server:
        # A client that promises a body and never sends it is answered 408 after rest_timeout.
        slow = socket.create_connection(("127.0.0.1", server.rest_port))
        slow.sendall(b"POST /v1/models/m:predict HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{")
        failures, answers = [], []

        def client(transport, index):
            address = f"127.0.0.1:{server.grpc_port}" if transport == "grpc" else f"http://127.0.0.1:{server.rest_port}"
            try:
                for _ in range(3):
                    # No retries: a request the server shed would count as a failure here.
                    answers.append(ServingClient(address, "m", retries=0).predict({"text": [f"query {index}"]}, "encode_query"))
            except Exception as error:  # noqa: BLE001  (any failure is what the test counts)
                failures.append(f"{transport} {index}: {error}")

        threads = [threading.Thread(target=client, args=(t, i)) for t in ("grpc", "rest") for i in range(40)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert failures == [] and len(answers) == 240, failures[:3]
        slow.settimeout(10)
        assert slow.recv(64).startswith(b"HTTP/1.1 408")  # cut off after rest_timeout, with an answer
        slow.close()
        assert time.perf_counter() - start < 300


def test_client_retries_requests_a_full_server_sheds(served, monkeypatch):
    import grpc

    _, _, server = served

    class Shed(grpc.RpcError):
        def __init__(self, details):
            self._details = details

        def code(self):
            return grpc.StatusCode.RESOURCE_EXHAUSTED

        def details(self):
            return self._details

    client = ServingClient(f"127.0.0.1:{server.grpc_port}", "tiny", retries=3)
    real = client._grpc_stub()
    calls = []

    class Flaky:
        """Sheds the first two calls as a full server does, then passes calls to the real server."""

        def Predict(self, request, timeout):
            calls.append(1)
            if len(calls) <= 2:
                raise Shed("Concurrent RPC limit exceeded!")
            return real.Predict(request, timeout=timeout)

    monkeypatch.setattr(client, "_grpc_stub", lambda: Flaky())
    assert client.encode(["a query"]).shape[0] == 1 and len(calls) == 3
    # A size error is RESOURCE_EXHAUSTED too, and no retry fixes it; nor does one past the last retry.
    calls.clear()

    def too_large(self, request, timeout):
        calls.append(1)
        raise Shed("Received message larger than max (5 vs. 4)")

    monkeypatch.setattr(Flaky, "Predict", too_large)
    with pytest.raises(ServingError, match="larger than max"):
        client.encode(["a query"])
    assert len(calls) == 1


@pytest.fixture(scope="module")
def strict_server(served, tmp_path_factory):
    """The tiny export behind a server with a 1 s request deadline and a 1 MiB request limit (fast 408s and 413s)."""
    from tf_dualenc.export import export_encoder

    model, _, _ = served
    base = tmp_path_factory.mktemp("strict")
    export_encoder(model, str(base), "tiny")
    server = LocalModelServer({"tiny": str(base / "tiny")}, grpc_port=0, rest_port=0, max_batch_size=16, max_text_bytes=200,
                              max_request_bytes=1 << 20, rest_timeout=1.0).start()
    ServingClient(f"127.0.0.1:{server.grpc_port}", "tiny").encode(["warm up"])
    server.export_folder = str(base / "tiny")
    yield server
    server.stop()


def test_malformed_request_corpus_gets_a_status_on_both_transports_and_no_traceback(served, strict_server, capfd, caplog):
    from tf_dualenc.serving import malformed_requests

    model, _, _ = served
    server = strict_server
    corpus = malformed_requests.corpus("tiny", seed=0, max_batch_size=16, max_text_bytes=200, max_request_bytes=1 << 20)
    assert len(corpus) > 300 and {c.transport for c in corpus} == {"rest", "grpc"}
    assert corpus == malformed_requests.corpus("tiny", seed=0, max_batch_size=16, max_text_bytes=200, max_request_bytes=1 << 20)
    capfd.readouterr()
    results = malformed_requests.replay(corpus, f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}")
    assert len(results) == len(corpus)
    wrong = [(c.transport, c.name, status, detail[-160:]) for c, status, detail, acceptable in results if not acceptable]
    assert wrong == [], wrong[:5]
    # The specific cases got their specific answers (not only "some status").
    seen = {(c.transport, c.name): status for c, status, _, _ in results}
    assert seen[("rest", "body: 100,000-deep list")] == 400 and seen[("rest", "Content-Length -1")] == 400
    assert seen[("rest", "Content-Length one over the limit")] == 413 and seen[("rest", "stalled: 10 of 1,000 promised bytes")] == 408
    assert seen[("grpc", "declared shape [20,000,000]")] == "INVALID_ARGUMENT" and seen[("grpc", "garbage: 0xff bytes")] == "INVALID_ARGUMENT"
    # Still serving, and correctly.
    for address in (f"127.0.0.1:{server.grpc_port}", f"http://127.0.0.1:{server.rest_port}"):
        np.testing.assert_allclose(ServingClient(address, "tiny", retries=0).encode(QUERIES), model.encode_queries(QUERIES), atol=1e-5)
    log = capfd.readouterr().err
    assert "Traceback" not in log and "serving error" not in log, log[-2000:]
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= 40] == []


def test_slow_clients_do_not_delay_a_normal_client(strict_server):
    import socket
    import time

    server = strict_server
    slow = []
    try:
        for _ in range(200):
            # Promises 1,000 bytes, sends 10, then stalls (slowloris).
            sock = socket.create_connection(("127.0.0.1", server.rest_port))
            sock.sendall(b"POST /v1/models/tiny:predict HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"inputs\":")
            slow.append(sock)
        for address in (f"http://127.0.0.1:{server.rest_port}", f"127.0.0.1:{server.grpc_port}"):
            client = ServingClient(address, "tiny", retries=0, timeout=5)
            start = time.perf_counter()
            assert client.encode(["a normal query"]).shape == (1, 64)
            assert time.perf_counter() - start < 1.0, address
        # The stalled ones are answered 408 once their deadline (rest_timeout) has passed, not left open.
        for sock in slow[:: 40]:
            sock.settimeout(10)
            assert sock.recv(64).startswith(b"HTTP/1.1 408"), sock
    finally:
        for sock in slow:
            sock.close()


def test_rest_bounds_the_bytes_it_holds_for_unfinished_requests(strict_server):
    import socket
    import time

    from tf_dualenc.serving.malformed_requests import Case, http_request, send_rest

    # A 1 MiB request limit: the server holds at most 4 MiB of requests read and not yet answered.
    with LocalModelServer({"tiny": strict_server.export_folder}, grpc_port=None, rest_port=0, max_request_bytes=1 << 20,
                          rest_timeout=30.0) as server:
        path = "/v1/models/tiny:predict"
        big = []
        try:
            for _ in range(4):
                sock = socket.create_connection(("127.0.0.1", server.rest_port))
                sock.sendall(http_request(path, b" " * 1_040_000, length=1 << 20))  # and the rest never comes
                big.append(sock)
            time.sleep(1.0)  # for the server to read them
            one_more = Case("rest", "40 KB more", http_request(path, json.dumps({"inputs": ["x" * 40_000]}).encode()), frozenset())
            assert send_rest("127.0.0.1", server.rest_port, one_more)[0] == 503
            small = Case("rest", "small", http_request(path, json.dumps({"signature_name": "encode_query", "inputs": ["a"]}).encode()), frozenset())
            assert send_rest("127.0.0.1", server.rest_port, small)[0] == 200
        finally:
            for sock in big:
                sock.close()
        # Closed unfinished requests give their bytes back.
        time.sleep(1.0)
        assert send_rest("127.0.0.1", server.rest_port, one_more)[0] == 200


def test_serving_load_benchmark_reports_every_request(served, tmp_path):
    import os
    import sys

    from conftest import REPO
    from tf_dualenc.export import export_encoder

    sys.path.insert(0, str(REPO / "benchmarks"))
    import serving_load

    model, _, server = served
    export_encoder(model, str(tmp_path), "tiny")  # the same weights as the served model: the reference answers
    out = tmp_path / "load.json"
    result = serving_load.run(["--address", f"127.0.0.1:{server.grpc_port}", "--rest-address", f"http://127.0.0.1:{server.rest_port}",
                               "--export", str(tmp_path / "tiny"), "--server-pid", str(os.getpid()), "--grpc-clients", "6",
                               "--rest-clients", "4", "--requests", "3", "--max-batch", "3", "--save", str(out)])
    assert result["grpc"]["answered_correctly"] == 18 and result["grpc"]["status_counts"] == {"OK": 18}
    assert result["rest"]["answered_correctly"] == 12 and result["rest"]["status_counts"] == {"200": 12}
    assert result["grpc"]["p50_ms"] <= result["grpc"]["p99_ms"] and result["memory"]["after_rest"]["rss_mb"] > 0
    assert json.loads(out.read_text()) == result


def test_rest_request_queued_past_its_deadline_gets_503_not_a_late_answer(strict_server, monkeypatch):
    import threading
    import time

    from tf_dualenc.serving.malformed_requests import Case, http_request, send_rest

    with LocalModelServer({"tiny": strict_server.export_folder}, grpc_port=None, rest_port=0, max_workers=1,
                          queue_timeout=0.5) as server:
        predict = server.registry.predict

        def slow_predict(*args):
            time.sleep(1.5)  # holds the only worker past the queue's deadline
            return predict(*args)

        monkeypatch.setattr(server.registry, "predict", slow_predict)
        request = Case("rest", "valid", http_request("/v1/models/tiny:predict", json.dumps({"inputs": ["a"]}).encode()), frozenset())
        statuses = []
        first = threading.Thread(target=lambda: statuses.append(send_rest("127.0.0.1", server.rest_port, request)[0]))
        first.start()
        time.sleep(0.3)
        status, answer = send_rest("127.0.0.1", server.rest_port, request)
        first.join()
        assert statuses == [200] and status == 503 and b"Retry-After: 1" in answer and b"waited" in answer
        monkeypatch.setattr(server.registry, "predict", predict)
        assert send_rest("127.0.0.1", server.rest_port, request)[0] == 200


def test_batching_combines_concurrent_requests_and_keeps_each_answer_and_error_its_own(served, strict_server):
    import tensorflow as tf

    model, _, _ = served
    texts = [f"question {i} about {QUERIES[i % len(QUERIES)]}" for i in range(40)]
    want = model.encode_queries(texts)
    with LocalModelServer({"tiny": strict_server.export_folder}, grpc_port=0, rest_port=0, enable_batching=True) as server:
        batcher = server.registry.batchers["tiny", "encode_query"]
        function, calls = batcher.function, []

        def counted(text):
            calls.append(len(text))
            if any(b"boom" in t for t in text.numpy()):
                raise tf.errors.InvalidArgumentError(None, None, "boom is not a text this model takes")
            return function(text=text)

        batcher.function = counted

        def one(i):
            address = f"127.0.0.1:{server.grpc_port}" if i % 2 else f"http://127.0.0.1:{server.rest_port}"
            client = ServingClient(address, "tiny", retries=0)
            if i == 7:
                with pytest.raises(ServingError, match="boom is not a text"):
                    client.encode(["boom"])
                return i, None
            return i, client.encode(texts[i : i + 1 + i % 3])

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(one, range(36)))
    for i, got in results:
        if got is not None:
            np.testing.assert_allclose(got, want[i : i + 1 + i % 3], atol=1e-5)
    # A request carries at most 3 texts: a call with more rows ran several requests at once.
    assert max(calls) > 3, calls
