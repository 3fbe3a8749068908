"""ScaNN vs exact search (vs faiss-cpu HNSW and IVF at equal recall): build time, queries/s, recall@10.

    .venv/bin/python benchmarks/search_benchmark.py --sets synthetic_1m [--sets scifact,squad_reqa_test]
    (faiss: .venv/bin/python -m pip install -r requirements/bench.txt)

Sets:
- synthetic_1m: 1,000,000 × 128 unit vectors drawn around 2,000 random centres (angular noise), 1,000 queries drawn
  the same way — clustered like real embeddings; isotropic noise would be a worst case no index is built for.
- scifact / squad_reqa_test: the corpus and test queries embedded by all-MiniLM-L6-v2 (zero-shot, 256 tokens);
  the embeddings are cached in --cache-dir.

Exact search is `tf_dualenc.evaluation.exact_top_k` (chunked NumPy matmul over both cores). ScaNN uses the index
folder's build config (`scann_build_config`). faiss indexes are tuned (efSearch / nprobe) upwards until their
recall@10 reaches ScaNN's (ScaNN itself first searches more leaves until --target-recall). Every method searches the whole query set in one batch; QPS = queries / seconds.
Writes benchmarks/results/search_<set>.json.
"""

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def synthetic(n, d, queries, centres=2000, noise=0.6, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)

    def draw(count):
        out = np.empty((count, d), np.float32)
        for start in range(0, count, 100_000):
            m = min(100_000, count - start)
            x = c[rng.integers(centres, size=m)] + noise / np.sqrt(d) * rng.normal(size=(m, d)).astype(np.float32)
            out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(n), draw(queries)


def minilm_embeddings(name, cache_dir):
    path = pathlib.Path(cache_dir) / f"{name}_minilm.npz"
    if path.exists():
        data = np.load(path)
        return data["documents"], data["queries"]
    import tf_dualenc  # noqa: F401

    from tf_dualenc.data import load_beir
    from tf_dualenc.models import build_bert_dual_encoder

    dataset = load_beir(DATA / name, "test")
    model = build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="sde", query_sequence_length=256, document_sequence_length=256)
    documents = model.encode_documents([dataset.document_text(d) for d in dataset.corpus])
    queries = model.encode_queries(list(dataset.queries.values()))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, documents=documents, queries=queries)
    return documents, queries


def recall_at_10(found, exact):
    return float(np.mean([len(set(a[:10].tolist()) & set(b[:10].tolist())) / 10 for a, b in zip(found, exact)]))


def timed(function, repeats=3):
    best, result = None, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds = time.perf_counter() - start
        best = seconds if best is None else min(best, seconds)
    return result, best


def run_set(name, documents, queries, args):
    from tf_dualenc.evaluation import exact_top_k
    from tf_dualenc.indexing.retrieval_index import build_scann_searcher, scann_build_config

    n = len(documents)
    rows = []
    (exact, _), seconds = timed(lambda: exact_top_k(queries, documents, 10), repeats=args.repeats)
    rows.append({"method": "exact (chunked matmul)", "build_seconds": 0.0, "qps": len(queries) / seconds, "recall_at_10": 1.0})
    print(f"{name}: exact {rows[-1]['qps']:.0f} QPS", flush=True)

    config = scann_build_config(n, 10)
    from scann.scann_ops.py import scann_ops_pybind  # noqa: F401  (import outside the timed build)

    start = time.perf_counter()
    searcher = build_scann_searcher(documents, config, 10)
    build = time.perf_counter() - start
    (found, _), seconds = timed(lambda: searcher.search_batched_parallel(queries, final_num_neighbors=10), repeats=args.repeats)
    scann_recall = recall_at_10(found, exact)
    rows.append({"method": "ScaNN (tree + AH + reorder)", "config": config, "build_seconds": build, "qps": len(queries) / seconds,
                 "recall_at_10": scann_recall})
    print(f"{name}: scann build {build:.1f}s {rows[-1]['qps']:.0f} QPS recall@10 {scann_recall:.4f}", flush=True)
    if scann_recall < args.target_recall:
        # Same index, more leaves searched per query, until the target recall.
        leaves = config["num_leaves"]
        steps = sorted({min(leaves, int(round(config["num_leaves_to_search"] * f))) for f in (1.5, 2, 3, 4, 6, 8)})
        row = _tune(name, "ScaNN, more leaves searched", build, "leaves_to_search", steps,
                    lambda v: None, None, exact, args.target_recall, args.repeats,
                    search_with=lambda v: searcher.search_batched_parallel(queries, final_num_neighbors=10, leaves_to_search=v)[0])
        rows.append(row)
        scann_recall = max(scann_recall, row["recall_at_10"])

    try:
        import faiss
    except ImportError:
        print("faiss-cpu not installed (requirements/bench.txt): skipping faiss rows", flush=True)
        return rows
    d = documents.shape[1]
    if "hnsw" not in args.skip:
        start = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        hnsw.add(documents)
        build = time.perf_counter() - start
        rows.append(_tune(name, "faiss HNSWFlat (M=32, efConstruction=40)", build, "efSearch",
                          [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
                          lambda ef: setattr(hnsw.hnsw, "efSearch", ef), lambda: hnsw.search(queries, 10)[1], exact, scann_recall, args.repeats))
    nlist = int(4 * np.sqrt(n))
    start = time.perf_counter()
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = documents[np.random.default_rng(0).choice(n, min(n, 100 * nlist), replace=False)]
    ivf.train(sample)
    ivf.add(documents)
    build = time.perf_counter() - start
    rows.append(_tune(name, f"faiss IVFFlat (nlist={nlist})", build, "nprobe", [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256],
                      lambda p: setattr(ivf, "nprobe", p), lambda: ivf.search(queries, 10)[1], exact, scann_recall, args.repeats))
    return rows


def _tune(name, method, build, knob, values, set_knob, search, exact, target, repeats, search_with=None):
    for value in values:
        set_knob(value)
        found, seconds = timed((lambda: search_with(value)) if search_with else search, repeats=repeats)
        recall = recall_at_10(found, exact)
        if recall >= target or value == values[-1]:
            break
    row = {"method": method, knob: value, "build_seconds": build, "qps": len(exact) / seconds, "recall_at_10": recall}
    print(f"{name}: {method} {knob}={value} build {build:.1f}s {row['qps']:.0f} QPS recall@10 {recall:.4f}", flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default="synthetic_1m")
    parser.add_argument("--size", type=int, default=1_000_000, help="synthetic corpus size")
    parser.add_argument("--queries", type=int, default=1000, help="synthetic queries")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per search (best kept)")
    parser.add_argument("--target-recall", type=float, default=0.95, help="ScaNN searches more leaves until this recall@10")
    parser.add_argument("--skip", default="", help="comma list of methods to leave out: hnsw")
    parser.add_argument("--cache-dir", default="/tmp/tf_dualenc_bench_embeddings")
    args = parser.parse_args(argv)
    import tf_dualenc  # noqa: F401

    for name in args.sets.split(","):
        if name == "synthetic_1m":
            documents, queries = synthetic(args.size, 128, args.queries)
        else:
            documents, queries = minilm_embeddings(name, args.cache_dir)
        rows = run_set(name, documents, queries, args)
        exact_qps = rows[0]["qps"]
        for row in rows:
            row["speedup_vs_exact"] = row["qps"] / exact_qps
        report = {"set": name, "documents": int(len(documents)), "dimension": int(documents.shape[1]), "queries": int(len(queries)),
                  "rows": rows, "cpus": os.cpu_count(),
                  "command": "python benchmarks/search_benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)}
        suffix = ("" if args.size == 1_000_000 or name != "synthetic_1m" else f"_{args.size}") + (f"_skip_{args.skip}" if args.skip else "")
        (HERE / "results" / f"search_{name}{suffix}.json").write_text(
            json.dumps(report, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
