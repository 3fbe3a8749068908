"""The main job measured as a user runs it: `tf-dualenc pipeline run --config CONFIG` once per seed, each in its own
pipeline root, in a fresh process (so its peak RSS is the run's own), then what the run decided and reported:
the dense model, the starting model, BM25 and the pushed search on validation (decides) and test (reported), the
recipe's schedule and precision, each component's wall time (from ML Metadata) and the process's peak RSS.

    .venv/bin/python benchmarks/pipeline_runs.py --config scifact_minilm --seeds 0
    .venv/bin/python benchmarks/pipeline_runs.py --config scifact_strong --seeds 0,1,2
    .venv/bin/python benchmarks/pipeline_runs.py --config scifact_strong --summary

Each seed lands in benchmarks/results/pipeline/<config>_seed<S>.json as soon as it is measured (a seed whose file
exists is skipped); `--summary` prints the table of every seed measured (mean ± sample std).
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "pipeline"
ROWS = (("dense", "this model (dense)"), ("starting_model", "starting model"), ("bm25", "BM25"), ("search", "pushed search"))


def cpu_model():
    for line in open("/proc/cpuinfo", encoding="utf-8"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def component_seconds(config):
    """Wall seconds of each component's latest execution, from the run's ML Metadata store."""
    import ml_metadata as mlmd
    from ml_metadata.proto import metadata_store_pb2

    from tf_dualenc.tfx.run_pipeline import COMPONENT_ORDER

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = mlmd.MetadataStore(connection)
    seconds = {}
    for context in store.get_contexts_by_type("node"):
        name = context.name.rsplit(".", 1)[-1]
        executions = store.get_executions_by_context(context.id)
        if name in COMPONENT_ORDER and executions:
            latest = max(executions, key=lambda e: e.create_time_since_epoch)
            seconds[name] = round((latest.last_update_time_since_epoch - latest.create_time_since_epoch) / 1000.0, 1)
    return seconds


def run_one(config_name, seed, root):
    """Runs the pipeline in this process (called in a child: `--child`); returns the result record."""
    from tf_dualenc.tfx.pipeline_config import PipelineConfig, config_file
    from tf_dualenc.tfx.run_pipeline import pipeline_outputs, run_pipeline

    config = PipelineConfig.from_file(config_file(config_name), [f"train.seed={seed}", f"pipeline_root={root}"])
    start = time.perf_counter()
    run_pipeline(config, print_fn=lambda *a: print(*a, file=sys.stderr))
    wall = time.perf_counter() - start
    resolved = config.resolved(print_fn=lambda *a: None)
    outputs = pipeline_outputs(resolved)
    with open(os.path.join(outputs["RetrievalEvaluator"]["evaluation"]["uri"], "evaluation.json"), encoding="utf-8") as f:
        evaluation = json.load(f)
    with open(os.path.join(outputs["Trainer"]["model"]["uri"], "training.json"), encoding="utf-8") as f:
        training = json.load(f)
    metric = evaluation["metric"]
    table = {}
    for split in ("validation", "test"):
        searches = evaluation["searches"][split]
        starting = (evaluation["reference_metrics"].get("starting_model") or {}).get(split)
        table[split] = {"dense": searches["dense"], "bm25": searches["bm25"], "search": searches["search"],
                        **({"starting_model": starting} if starting else {})}
    return {
        "config": config_name, "seed": seed, "metric": metric, "blessed": evaluation["blessed"], "reason": evaluation["reason"],
        "search": {k: v for k, v in evaluation["search"].items() if k != "validation_curve"}, "metrics": table,
        "training": {k: training.get(k) for k in ("recipe", "precision", "schedule", "train_pairs", "seconds", "peak_rss_mb",
                                                   "model_chosen")},
        "wall_seconds": round(wall, 1), "component_seconds": component_seconds(resolved),
        "peak_rss_mb": round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                 resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "pipeline_root": str(root),
    }


def summary(config_name, metric="NDCG@10"):
    records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"{config_name}_seed*.json"))]
    if not records:
        return f"no results for {config_name} in {RESULTS}"

    def cell(values):
        return f"{values[0]:.4f}" if len(values) == 1 else f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"

    seeds = ",".join(str(r["seed"]) for r in records)
    lines = [f"| {config_name} ({metric}), seeds {seeds} | validation (decides) | test (reported) |", "|---|---|---|"]
    for key, label in ROWS:
        by_split = [[r["metrics"][s][key][metric] for r in records if key in r["metrics"][s]] for s in ("validation", "test")]
        if by_split[0]:
            lines.append(f"| {label} | {cell(by_split[0])} | {cell(by_split[1])} |")
    fusions = ", ".join(f"seed {r['seed']}: {r['search']['fusion']}" + (f" w={r['search']['weight']}" if r['search'].get('weight') is not None else "")
                        for r in records)
    walls = ", ".join(f"{r['wall_seconds'] / 60:.1f} min" for r in records)
    peaks = ", ".join(f"{r['peak_rss_mb'] / 1024:.1f} GB" for r in records)
    lines.append("")
    lines.append(f"Search chosen on validation: {fusions}. Wall time per run: {walls}; peak RSS: {peaks}. "
                 f"CPU: {records[0]['machine']['cpu']} ({records[0]['machine']['cores']} cores).")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="scifact_minilm", help="a pipeline config file or shipped config name")
    parser.add_argument("--seeds", default="0", help="comma list of train.seed values, one run each")
    parser.add_argument("--work-dir", default="/tmp/tf_dualenc_pipeline_runs", help="where each seed's pipeline root goes")
    parser.add_argument("--summary", action="store_true", help="print the table of the seeds measured so far, run nothing")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    name = pathlib.Path(args.config).stem
    if args.summary:
        print(summary(name))
        return 0
    if args.child:  # one seed in this process; the record on stdout
        print(json.dumps(run_one(args.config, int(args.seeds), pathlib.Path(args.work_dir) / f"{name}_seed{args.seeds}")))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        out = RESULTS / f"{name}_seed{seed}.json"
        if out.exists():
            print(f"{out.name}: exists, skipped", flush=True)
            continue
        command = [sys.executable, __file__, "--child", "--config", args.config, "--seeds", str(seed), "--work-dir", args.work_dir]
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
        if result.returncode:
            print(f"seed {seed}: the run failed (exit {result.returncode}); see its stderr above", flush=True)
            return result.returncode
        record = json.loads(result.stdout.strip().splitlines()[-1])
        record["command"] = f"python benchmarks/pipeline_runs.py --config {args.config} --seeds {seed}"
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"{out.name}: " + ", ".join(f"{split} search {record['metrics'][split]['search'][record['metric']]:.4f} dense "
                                          f"{record['metrics'][split]['dense'][record['metric']]:.4f}" for split in ("validation", "test"))
              + f"; {record['wall_seconds'] / 60:.1f} min, peak RSS {record['peak_rss_mb']:.0f} MB", flush=True)
    print(summary(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
