"""Training throughput and peak memory: all-MiniLM-L6-v2, batch 32, 256 tokens, SciFact train pairs.

    .venv/bin/python benchmarks/train_throughput.py [--steps 6] [--warmup 2]
    .venv/bin/python benchmarks/train_throughput.py --configs samtone:trimmed:batch=128:mini=32 --steps 2 --warmup 1 --output cached.json

Runs each configuration in its own process (clean peak RSS): in-batch softmax and SamToNe with each batch
trimmed to its longest text (the default), SamToNe padded to the fixed length, and SamToNe with `jit_compile=True`
(fixed shapes); plus the machine's measured fp32 matmul peak. Writes benchmarks/results/train_throughput.json
(or --output, a file name in benchmarks/results/).

A configuration is `loss:mode` followed by optional `:key=value` settings: `batch=N` (pairs per step, default
--batch-size), `mini=M` (gradient caching with mini-batches of M pairs, TrainConfig.mini_batch_size) and
`precision=bfloat16` (TrainConfig.mixed_precision), so the cached step and bfloat16 are measured by the same loop
as the plain step.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "scifact"


def matmul_peak_gflops(size=2048, repeats=10):
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = matmul(a, b)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


SETTINGS = {"batch": int, "mini": int, "precision": str}


def parse_config(spec, batch_size):
    """`loss:mode[:key=value...]` -> (loss, mode, {"batch": .., "mini": .., "precision": ..})."""
    loss, mode, *rest = spec.split(":")
    settings = {"batch": batch_size, "mini": 0, "precision": "float32"}
    for item in rest:
        key, _, value = item.partition("=")
        if key not in SETTINGS or not value:
            raise SystemExit(f"train_throughput: bad setting {item!r} in {spec!r} (valid: {', '.join(f'{k}=VALUE' for k in SETTINGS)})")
        settings[key] = SETTINGS[key](value)
    return loss, mode, settings


def one_config(loss, mode, steps, warmup, batch_size, length, mini_batch_size=0, precision="float32"):
    import resource

    import tf_dualenc  # noqa: F401
    import tensorflow as tf

    from tf_dualenc.data.pairs import load_training_pairs
    from tf_dualenc.training import TrainConfig
    from tf_dualenc.training.input_pipeline import make_dataset
    from tf_dualenc.training.trainer import build_model, make_loss, make_optimizer, make_train_step

    config = TrainConfig(data=str(DATA), model="bert", preset="all-MiniLM-L6-v2", architecture="sde", loss=loss,
                         query_length=length, document_length=length, batch_size=batch_size, steps=1000,
                         optimizer="adam", learning_rate=2e-5, temperature=0.05, jit_compile=mode == "xla",
                         trim_padding=mode == "trimmed", mini_batch_size=mini_batch_size,
                         mixed_precision=precision).validate()
    from tf_dualenc.training.precision import training_precision

    pairs = load_training_pairs(config.data, split="train")
    with training_precision(config.mixed_precision):
        model = build_model(config)
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
    # Exactly the step `tf-dualenc train` runs.
    step = make_train_step(tf.distribute.get_strategy(), model, optimizer, make_loss(config), batch_size, config.jit_compile,
                           config.mini_batch_size)

    times = []
    for i, (features, qids, dids) in enumerate(make_dataset(pairs, model, batch_size, seed=0)):
        if i == warmup + steps:
            break
        start = time.perf_counter()
        float(step(features, qids, dids)[0])
        times.append(time.perf_counter() - start)
    timed = times[warmup:]
    return {
        "loss": loss, "padding": "xla (fixed)" if mode == "xla" else mode, "jit_compile": config.jit_compile, "batch_size": batch_size, "tokens": length,
        "mini_batch_size": mini_batch_size, "precision": precision,
        "first_step_seconds": round(times[0], 2), "step_seconds": [round(t, 3) for t in timed],
        "mean_step_seconds": round(sum(timed) / len(timed), 3), "pairs_per_second": round(batch_size * len(timed) / sum(timed), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--configs", default="in_batch:trimmed,samtone:trimmed,samtone:fixed,samtone:xla",
                        help="loss:mode pairs; mode is trimmed (pad to the batch's longest text), fixed (pad to --length) or xla (fixed + jit_compile)")
    parser.add_argument("--output", default="train_throughput.json", help="result file name in benchmarks/results/")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for one in args.configs.split(","):  # every configuration checked before the first (slow) run
        parse_config(one, args.batch_size)
    if args.one:
        loss, mode, settings = parse_config(args.one, args.batch_size)
        print("RESULT " + json.dumps(one_config(loss, mode, args.steps, args.warmup, settings["batch"], args.length,
                                                settings["mini"], settings["precision"])), flush=True)
        return
    import tf_dualenc  # noqa: F401

    results = {"matmul_fp32_peak_gflops": round(matmul_peak_gflops(), 1), "runs": []}
    print(f"fp32 matmul peak: {results['matmul_fp32_peak_gflops']} GFLOP/s", flush=True)
    for one in args.configs.split(","):
        out = subprocess.run([sys.executable, "-W", "ignore", __file__, "--one", one, "--steps", str(args.steps),
                              "--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--length", str(args.length)],
                             capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{one}: failed\n{out.stderr[-2000:]}", flush=True)
            results["runs"].append({"config": one, "error": out.stderr[-2000:]})
            continue
        run = json.loads(line[7:])
        results["runs"].append(run)
        print(f"{one:<16} {run['pairs_per_second']} pairs/s, {run['mean_step_seconds']} s/step, peak RSS {run['peak_rss_mb']} MB", flush=True)
    results["command"] = "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (HERE / "results" / args.output).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
