"""Document-encoding throughput (plain model call vs the Beam job) and query latency (in process vs local gRPC server).

    .venv/bin/python benchmarks/serving_benchmark.py [--models minilm,t5_1.1_small] [--parts encode,beam,latency]

- encode: `encode_documents` on the SciFact corpus (5,183 abstracts), batch 64, 256 tokens — the setting of the
  issue's sentence-transformers figure (19.6 abstracts/s on this machine kind).
- beam: the same corpus through `tf-dualenc build-index` (DirectRunner `--beam-mode`, default multi_processing, `--beam-workers` 2; batches of
  up to 64), timed from start to the embeddings written (the index build after it is excluded).
- latency: one query per request, 200 requests after 10 warm-up ones: the export's `encode_query` signature in
  process, and through `tf_dualenc.serving.local_server` over gRPC with `ServingClient`; p50 / p99 in milliseconds.

The T5.1.1-small tower is randomly initialised (no pretrained T5 weights offline): speed does not depend on the
weights. Writes benchmarks/results/serving_<model>.json as each model finishes.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
SCIFACT = SHARED / "data" / "scifact"


def build(name):
    from tf_dualenc.models import build_bert_dual_encoder, build_t5_dual_encoder

    if name == "minilm":
        return build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="sde", query_sequence_length=64, document_sequence_length=256)
    return build_t5_dual_encoder(name, vocabulary=str(SHARED / "models" / "t5" / "spiece.model"), architecture="ade_spl",
                                 query_sequence_length=64, document_sequence_length=256, dropout=0.0)


def percentile_ms(seconds, q):
    return round(float(np.percentile(np.asarray(seconds) * 1000, q)), 2)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="minilm,t5_1.1_small")
    parser.add_argument("--parts", default="encode,beam,latency")
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N documents (smoke runs)")
    parser.add_argument("--beam-mode", choices=["multi_processing", "in_memory"], default="multi_processing",
                        help="DirectRunner running mode of the Beam job (default: %(default)s)")
    parser.add_argument("--beam-workers", type=int, default=2, help="DirectRunner workers (default: %(default)s)")
    args = parser.parse_args(argv)
    import tf_dualenc  # noqa: F401

    from tf_dualenc.data import load_beir
    from tf_dualenc.export import export_encoder
    from tf_dualenc.indexing.query_encoders import local_query_encoder

    dataset = load_beir(SCIFACT, "test")
    doc_ids = list(dataset.corpus)[: args.limit]
    texts = [dataset.document_text(d) for d in doc_ids]
    parts = args.parts.split(",")
    for name in args.models.split(","):
        work = tempfile.mkdtemp(prefix=f"serving_bench_{name}_")
        model = build(name)
        export = export_encoder(model, work, name).path
        result = {"model": name, "documents": len(texts), "machine_cpus": os.cpu_count(),
                  "command": "python benchmarks/serving_benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)}
        if "encode" in parts:
            model.encode_documents(texts[:64])  # trace once
            start = time.perf_counter()
            model.encode_documents(texts, batch_size=64)
            seconds = time.perf_counter() - start
            result["plain_docs_per_second"] = round(len(texts) / seconds, 2)
            print(f"{name}: plain model call {result['plain_docs_per_second']} docs/s ({seconds:.0f} s)", flush=True)
        if "beam" in parts:
            corpus = os.path.join(work, "corpus.jsonl")
            with open(corpus, "w", encoding="utf-8") as f:
                for doc_id, text in zip(doc_ids, texts):
                    f.write(json.dumps({"_id": doc_id, "text": text}) + "\n")
            start = time.perf_counter()
            # The CLI in a child process, as a user runs it; its own timing line gives the encoding part.
            out = subprocess.run([sys.executable, "-W", "ignore", "-m", "tf_dualenc.cli", "build-index", "--corpus", corpus, "--model", export,
                                  "--output", os.path.join(work, "index"), "--min-batch-size", "64", "--max-batch-size", "64",
                                  "--method", "brute_force", "--runner", "DirectRunner", "--direct_running_mode", args.beam_mode,
                                  "--direct_num_workers", str(args.beam_workers)], capture_output=True, text=True)
            total = time.perf_counter() - start
            if out.returncode:
                raise RuntimeError(out.stderr[-3000:])
            with open(os.path.join(work, "index", "manifest.json")) as f:
                manifest = json.load(f)
            # Index writing/build after the Beam job is not encoding: subtract it.
            encode_seconds = total - manifest["seconds"]["write"] - manifest["seconds"]["build"]
            result["beam_docs_per_second"] = round(len(texts) / encode_seconds, 2)
            result["beam_seconds_total"] = round(total, 1)
            result["beam_runner"] = {"direct_running_mode": args.beam_mode, "direct_num_workers": args.beam_workers}
            if "plain_docs_per_second" in result:
                result["beam_overhead"] = round(result["plain_docs_per_second"] / result["beam_docs_per_second"] - 1, 4)
            print(f"{name}: Beam {args.beam_mode} x{args.beam_workers} {result['beam_docs_per_second']} docs/s (job {total:.0f} s)", flush=True)
        if "latency" in parts:
            from tf_dualenc.serving.client import ServingClient
            from tf_dualenc.serving.local_server import LocalModelServer

            queries = list(dataset.queries.values())
            encode = local_query_encoder(export)
            timings = []
            for i in range(210):
                start = time.perf_counter()
                encode([queries[i % len(queries)]])
                timings.append(time.perf_counter() - start)
            result["latency_in_process_ms"] = {"p50": percentile_ms(timings[10:], 50), "p99": percentile_ms(timings[10:], 99)}
            with LocalModelServer({name: os.path.dirname(export)}, grpc_port=0, rest_port=None) as server:
                client = ServingClient(f"127.0.0.1:{server.grpc_port}", name)
                timings = []
                for i in range(210):
                    start = time.perf_counter()
                    client.encode([queries[i % len(queries)]])
                    timings.append(time.perf_counter() - start)
                client.close()
            result["latency_grpc_ms"] = {"p50": percentile_ms(timings[10:], 50), "p99": percentile_ms(timings[10:], 99)}
            print(f"{name}: latency in process {result['latency_in_process_ms']} ms, gRPC {result['latency_grpc_ms']} ms", flush=True)
        if args.limit is None:
            # A partial or non-default run gets its own file, so it never overwrites the full default one.
            variant = "" if (parts, args.beam_mode, args.beam_workers) == (["encode", "beam", "latency"], "multi_processing", 2) else (
                "_" + "-".join(parts) + (f"_{args.beam_mode}_x{args.beam_workers}" if "beam" in parts else ""))
            (HERE / "results" / f"serving_{name}{variant}.json").write_text(json.dumps(result, indent=2) + "\n")
        del model


if __name__ == "__main__":
    main()
