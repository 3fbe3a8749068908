"""Load test of a TF Serving-compatible server: N clients × M requests over gRPC, then over REST, mixed batch sizes.

    .venv/bin/python benchmarks/serving_load.py --grpc-clients 100 --rest-clients 50 --requests 20 --save

Without `--address`/`--rest-address` it starts `tf-dualenc serve` (as `python -m tf_dualenc.serving.local_server`, default
settings, free ports) in a child process over `--export` (a model folder with numeric versions, served as
`--model-name`); without `--export` it first builds a tiny export in a temporary folder: the tests' tiny T5 dual
encoder (2 layers, width 64, random weights, ../shared/models/t5/spiece.model). To make one yourself:

    .venv/bin/python benchmarks/serving_load.py --make-tiny-export exports

(writes exports/tiny/<version>; then `--export exports/tiny --model-name tiny`.)

Each client is a thread with its own connection (a gRPC channel; a new HTTP connection per REST request) that sends
`--requests` `encode_query` requests of 1..`--max-batch` texts (seeded), with no retries, so every request the server
sheds is counted. An answer counts as correct when it has one embedding per text and, when the export is local,
equals the export's own `encode_query` in this process (atol 1e-4). Reported per transport: answers by status
(gRPC status name / HTTP status), correct answers, p50/p99/max latency of all requests, requests/s; and the server's
RSS before and after each phase, its peak RSS and whether its log shows a traceback (only for a server this script
started, or `--server-pid`). Prints a table; `--save [PATH]` writes the JSON (default
benchmarks/results/serving_load.json).
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
VOCABULARY = REPO.parent / "shared" / "models" / "t5" / "spiece.model"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from serving_benchmark import percentile_ms  # noqa: E402


def make_tiny_export(export_base, vocabulary=VOCABULARY, name="tiny"):
    """The tests' tiny T5 dual encoder exported to <export_base>/<name>/<version>; returns the model folder."""
    from tf_dualenc.export import export_encoder
    from tf_dualenc.models import build_t5_dual_encoder

    model = build_t5_dual_encoder("tiny", vocabulary=str(vocabulary), architecture="ade_spl", query_sequence_length=12,
                                  document_sequence_length=20, dropout=0.0)
    export_encoder(model, str(export_base), name)
    return os.path.join(str(export_base), name)


def _texts(count, seed):
    rng = random.Random(seed)
    words = "vitamin bone density protein cell gene cancer risk dose trial effect patients blood brain heart".split()
    return [f"query {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for i in range(count)]


class _Server:
    """`python -m tf_dualenc.serving.local_server` in a child process on free ports; its output goes to a log file."""

    def __init__(self, model_name, export, extra_args=()):
        self._log = tempfile.NamedTemporaryFile("w+", prefix="serving_load_", suffix=".log", encoding="utf-8")
        self.log_path = self._log.name
        command = [sys.executable, "-m", "tf_dualenc.serving.local_server", "--model", f"{model_name}={export}", "--grpc-port", "0",
                   "--rest-port", "0", *extra_args]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, text=True)
        self.pid = self.process.pid
        deadline = time.monotonic() + 300
        while True:
            match = re.search(r"gRPC (\S+)\s+REST (\S+)", pathlib.Path(self.log_path).read_text(encoding="utf-8"))
            if match:
                self.grpc_address, self.rest_address = match[1], match[2]
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()  # the log file goes with it
                raise RuntimeError(f"The server did not start:\n{log[-3000:]}")
            time.sleep(0.2)

    def log(self):
        return pathlib.Path(self.log_path).read_text(encoding="utf-8", errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


def process_memory_mb(pid):
    """{"rss_mb", "peak_rss_mb"} of a local process from /proc, or None where that cannot be read."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = {key: int(value.split()[0]) for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(.+)$", status, flags=re.M)}
    return {"rss_mb": round(kb["VmRSS"] / 1024, 1), "peak_rss_mb": round(kb["VmHWM"] / 1024, 1)}


def _grpc_sender(address, model_name):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(address))

    def send(texts, timeout):
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = model_name, "encode_query"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array(texts, dtype=object)))
        try:
            response = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            return error.code().name, None
        return "OK", tf.make_ndarray(response.outputs["embedding"])

    return send


def _rest_sender(address, model_name):
    import http.client
    import urllib.parse

    url = urllib.parse.urlsplit(address)

    def send(texts, timeout):
        body = json.dumps({"signature_name": "encode_query", "inputs": {"text": texts}}).encode("utf-8")
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        try:
            connection.request("POST", f"/v1/models/{model_name}:predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            if response.status != 200:
                return str(response.status), None
            return "200", np.asarray(json.loads(payload)["outputs"], np.float32)
        except (OSError, http.client.HTTPException) as error:
            # No HTTP answer at all (reset, refused, timed out): a failure of its own kind, not a status.
            return f"no answer ({type(error).__name__})", None
        finally:
            connection.close()

    return send


def run_phase(sender, clients, requests, max_batch, texts, reference, seed, timeout):
    """`clients` threads × `requests` requests; returns the phase's counts and latencies."""
    statuses, latencies, correct, wrong = {}, [], [0], []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(index):
        rng = random.Random(seed * 100_003 + index)
        send = sender()
        barrier.wait()  # every client starts at once: the burst is the point
        for _ in range(requests):
            picks = [rng.randrange(len(texts)) for _ in range(rng.randint(1, max_batch))]
            start = time.perf_counter()
            status, embeddings = send([texts[i] for i in picks], timeout)
            seconds = time.perf_counter() - start
            ok = embeddings is not None and embeddings.shape[0] == len(picks) and (
                reference is None or np.allclose(embeddings, reference[picks], atol=1e-4))
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(seconds)
                if ok:
                    correct[0] += 1
                elif embeddings is not None:
                    wrong.append(index)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client, i) for i in range(clients)]:
            future.result()
    wall = time.perf_counter() - start
    return {"clients": clients, "requests_per_client": requests, "requests": clients * requests, "status_counts": statuses,
            "answered_correctly": correct[0], "wrong_answers": len(wrong), "p50_ms": percentile_ms(latencies, 50),
            "p99_ms": percentile_ms(latencies, 99), "max_ms": round(max(latencies) * 1000, 1), "seconds": round(wall, 1),
            "requests_per_second": round(clients * requests / wall, 1)}


def _parser():
    parser = argparse.ArgumentParser(prog="benchmarks/serving_load.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", help="model folder with numeric versions (default: a tiny T5 export built in a temp folder)")
    parser.add_argument("--model-name", default="tiny", help="the served model's name (default: %(default)s)")
    parser.add_argument("--address", help="gRPC host:port of a running server (default: start one)")
    parser.add_argument("--rest-address", help="REST http://host:port of a running server (default: start one)")
    parser.add_argument("--server-pid", type=int, help="pid of the running server at --address, for its RSS")
    parser.add_argument("--server-arg", action="append", default=[], help="an option for the started server; repeatable")
    parser.add_argument("--grpc-clients", type=int, default=100)
    parser.add_argument("--rest-clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client (default: %(default)s)")
    parser.add_argument("--max-batch", type=int, default=4, help="texts per request: 1..this (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocabulary", default=str(VOCABULARY), help="SentencePiece model of the tiny export")
    parser.add_argument("--make-tiny-export", metavar="EXPORT_BASE", help="only build the tiny export under EXPORT_BASE and exit")
    parser.add_argument("--save", nargs="?", const=str(HERE / "results" / "serving_load.json"), metavar="PATH",
                        help="write the JSON result (default path: %(const)s)")
    return parser


def run(argv=None):
    """Runs the load test; returns the result dict (also printed as a table, and saved with --save)."""
    parser = _parser()
    args = parser.parse_args(argv)
    from tf_dualenc.export.layout import model_versions, resolve_export  # tf_dualenc first: its environment shims precede TensorFlow

    if args.export and not model_versions(args.export):
        parser.error(f"--export {args.export}: not a model folder with numeric version folders")

    if args.make_tiny_export:
        folder = make_tiny_export(args.make_tiny_export, args.vocabulary, args.model_name)
        print(f"tiny export in {folder}: serve it with --model {args.model_name}={folder}")
        return {"export": folder}
    external = bool(args.address or args.rest_address)
    export = args.export
    if export is None and not external:
        export = make_tiny_export(tempfile.mkdtemp(prefix="serving_load_export_"), args.vocabulary, args.model_name)
    texts = _texts(256, args.seed)
    reference = None
    if export is not None:
        from tf_dualenc.indexing.query_encoders import local_query_encoder

        reference = np.asarray(local_query_encoder(resolve_export(export))(texts), np.float32)
    server = None if external else _Server(args.model_name, export, args.server_arg)
    pid = args.server_pid if external else server.pid
    result = {"command": "python benchmarks/serving_load.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine_cpus": os.cpu_count(), "model_name": args.model_name, "export": export,
              "server": "external" if external else "python -m tf_dualenc.serving.local_server " + " ".join(args.server_arg or ["(default settings)"]),
              "max_batch": args.max_batch, "seed": args.seed, "date": time.strftime("%Y-%m-%d %H:%M"),
              # Latency on a shared machine depends on what else runs: the 1-minute load average says how busy it was.
              "load_average_1min_start": round(os.getloadavg()[0], 2), "memory": {}}
    try:
        grpc_address = args.address or (None if external else server.grpc_address)
        rest_address = args.rest_address or (None if external else server.rest_address)
        result["memory"]["start"] = process_memory_mb(pid) if pid else None
        phases = [("grpc", grpc_address, args.grpc_clients, _grpc_sender), ("rest", rest_address, args.rest_clients, _rest_sender)]
        for transport, address, clients, make_sender in phases:
            if not address or not clients:
                continue
            make_sender(address, args.model_name)([texts[0]], args.timeout)  # warm-up: load, trace, first connection
            result["memory"][f"before_{transport}"] = process_memory_mb(pid) if pid else None
            result[transport] = run_phase(lambda: make_sender(address, args.model_name), clients, args.requests, args.max_batch,
                                          texts, reference, args.seed, args.timeout)
            result["memory"][f"after_{transport}"] = process_memory_mb(pid) if pid else None
        result["load_average_1min_end"] = round(os.getloadavg()[0], 2)
        if server is not None:
            log = server.log()
            result["server_log_tracebacks"] = log.count("Traceback (most recent call last)")
    finally:
        if server is not None:
            server.stop()
    print(table(result))
    if args.save:
        pathlib.Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.save).write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {args.save}")
    return result


def table(result):
    lines = ["| transport | clients × requests | answered correctly | status counts | p50 ms | p99 ms | max ms | req/s | RSS before → after (peak) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for transport in ("grpc", "rest"):
        phase = result.get(transport)
        if not phase:
            continue
        before, after = result["memory"].get(f"before_{transport}"), result["memory"].get(f"after_{transport}")
        memory = f"{before['rss_mb']} → {after['rss_mb']} MB ({after['peak_rss_mb']} MB)" if before and after else "n/a"
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(phase["status_counts"].items()))
        lines.append(f"| {transport} | {phase['clients']} × {phase['requests_per_client']} | {phase['answered_correctly']}/{phase['requests']} "
                     f"| {counts} | {phase['p50_ms']} | {phase['p99_ms']} | {phase['max_ms']} | {phase['requests_per_second']} | {memory} |")
    if "server_log_tracebacks" in result:
        lines.append(f"server log: {result['server_log_tracebacks']} traceback(s)")
    return "\n".join(lines)


def main(argv=None):
    result = run(argv)
    phases = [result[t] for t in ("grpc", "rest") if t in result]
    return 0 if all(p["answered_correctly"] == p["requests"] for p in phases) else 1


if __name__ == "__main__":
    sys.exit(main())
