"""The report logic of benchmarks/peer_benchmark.py: schedule, ratios, table, embedding agreement, child commands.

Nothing here imports torch or sentence-transformers (the peer runs in its own venv, in a child process), and nothing
is timed: the runs below are made-up numbers.
"""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import peer_benchmark as pb  # noqa: E402


def _run(round_index, side, task, value, rss, **extra):
    metric = pb.METRICS[task]
    return {"round": round_index, "side": side, "task": task, metric: value, "peak_rss_mb": rss, **extra}


def test_schedule_alternates_which_side_goes_first():
    configs = [{"side": pb.PEER, "task": "train"}, {"side": pb.OURS, "task": "train", "loss": "in_batch", "precision": "float32"},
               {"side": pb.OURS, "task": "train", "loss": "samtone", "precision": "float32"}]
    configs += [{"side": pb.PEER, "task": "encode"}, {"side": pb.OURS, "task": "encode", "precision": "float32"}]
    order = pb.schedule(3, configs)
    sides = [(r, c["task"], c["side"], c.get("loss")) for r, c in order]
    assert sides == [
        (0, "train", pb.PEER, None), (0, "train", pb.OURS, "in_batch"), (0, "train", pb.OURS, "samtone"),
        (0, "encode", pb.PEER, None), (0, "encode", pb.OURS, None),
        (1, "train", pb.OURS, "in_batch"), (1, "train", pb.OURS, "samtone"), (1, "train", pb.PEER, None),
        (1, "encode", pb.OURS, None), (1, "encode", pb.PEER, None),
        (2, "train", pb.PEER, None), (2, "train", pb.OURS, "in_batch"), (2, "train", pb.OURS, "samtone"),
        (2, "encode", pb.PEER, None), (2, "encode", pb.OURS, None),
    ]


def test_ratios_pair_each_round_with_that_rounds_peer_and_skip_failures():
    runs = [
        _run(0, pb.PEER, "train", 4.0, 5000.0),
        _run(0, pb.OURS, "train", 6.0, 5500.0, loss="in_batch", precision="float32"),
        _run(1, pb.OURS, "train", 10.0, 6000.0, loss="in_batch", precision="float32"),
        _run(1, pb.PEER, "train", 5.0, 4800.0),
        _run(0, pb.OURS, "train", 12.0, 5000.0, loss="in_batch", precision="bfloat16"),
        {"round": 1, "side": pb.OURS, "task": "train", "loss": "in_batch", "precision": "bfloat16", "error": "boom"},
        _run(0, pb.PEER, "encode", 40.0, 3000.0),
        _run(0, pb.OURS, "encode", 30.0, 4500.0, precision="float32"),
    ]
    rows = {row["config"]: row for row in pb.summarize(runs)}
    f32 = rows["tf_dualenc in_batch float32"]
    assert f32["ratio_per_round"] == [1.5, 2.0] and f32["ratio_min"] == 1.5 and f32["ratio_max"] == 2.0
    assert f32["mean"] == 8.0 and f32["peer_mean"] == 4.5 and f32["ratio_of_means"] == pytest.approx(8 / 4.5, abs=1e-3)
    assert f32["peak_rss_mb"] == 6000.0 and f32["peer_peak_rss_mb"] == 5000.0 and f32["rss_ratio"] == 1.2
    bf16 = rows["tf_dualenc in_batch bfloat16"]
    assert bf16["rounds"] == 1 and bf16["ratio_per_round"] == [3.0]
    encode = rows["tf_dualenc encode float32"]
    assert encode["metric"] == "docs_per_second" and encode["ratio_of_means"] == 0.75 and encode["rss_ratio"] == 1.5
    table = pb.format_table(pb.summarize(runs))
    assert "**1.78×** (1.50, 2.00)" in table and "**0.75×** (0.75)" in table and table.count("\n") == 1 + len(rows)


def test_a_configuration_without_a_peer_run_has_no_ratio():
    runs = [_run(0, pb.OURS, "encode", 30.0, 4500.0, precision="float32"),
            {"round": 0, "side": pb.PEER, "task": "encode", "error": "no torch"}]
    (row,) = pb.summarize(runs)
    assert "ratio_of_means" not in row
    assert "| — |" in pb.format_table([row])


def test_embedding_agreement_is_rowwise_cosine():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 8)).astype(np.float32)
    low, mean = pb.embedding_agreement(a * 3.0, a)
    assert low == pytest.approx(1.0, abs=1e-6) and mean == pytest.approx(1.0, abs=1e-6)
    low, _ = pb.embedding_agreement(np.vstack([a[:4], -a[4:]]), a)
    assert low == pytest.approx(-1.0, abs=1e-6)


def test_the_peer_child_runs_with_the_peer_python():
    args = pb.build_parser().parse_args(["--peer-python", "/opt/bench/bin/python", "--steps", "3"])
    peer = pb._child_command(args, {"side": pb.PEER, "task": "train"}, "w.json", None)
    ours = pb._child_command(args, {"side": pb.OURS, "task": "encode", "precision": "bfloat16"}, "w.json", "e.npy")
    assert peer[0] == "/opt/bench/bin/python" and "--precision" not in peer
    assert ours[0] == sys.executable and ours[ours.index("--precision") + 1] == "bfloat16" and ours[-2:] == ["--embeddings", "e.npy"]
    configs = pb._configs(args)
    assert [c["side"] for c in configs].count(pb.PEER) == 2 and len(configs) == 8
    assert len(pb._configs(pb.build_parser().parse_args(["--tasks", "encode,profile"]))) == 6


def test_a_profile_line_names_where_the_time_went():
    run = {"encode_cold_seconds": 22.4, "encode_warm_seconds": 11.0, "tokenize_seconds": 0.02, "batch_lengths": [256, 180],
           "real_tokens": 30000, "forward_trimmed_first_pass_seconds": 10.1, "forward_trimmed_second_pass_seconds": 10.2,
           "forward_padded_first_pass_seconds": 10.2, "forward_padded_second_pass_seconds": 9.4,
           "op_profile": {"batch_seconds": 13.0, "ops": [["_MklMatMul", 4.6, 0.356], ["Erfc", 0.8, 0.062]]}}
    line = pb.format_profile(run)
    assert "cold 22.4 s, warm 11.0 s" in line and "2 batches of 180-256 tokens (mean 218)" in line and "XLA" not in line
    assert line.endswith("_MklMatMul 35.6%, Erfc 6.2%")
    run.update(forward_padded_xla_compile_seconds=8.7, forward_padded_xla_first_pass_seconds=4.2,
               forward_padded_xla_second_pass_seconds=4.3)
    assert "with XLA 4.2 s (again 4.3 s; compiling 8.7 s)" in pb.format_profile(run)
