"""Global-batch negatives under tf.distribute: the loss (and the update) equal the single-process ones."""

import dataclasses
import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from test_training import _tensorboard_scalars, pair_file, tiny_config  # noqa: F401  (pair_file is a fixture)

WORKER = pathlib.Path(__file__).with_name("distributed_train_worker.py")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config_json(config):
    return json.dumps(dataclasses.asdict(config))


def _run(mode, config, env=None):
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, _config_json(config)],
        env=dict(os.environ, **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-6000:]
    return json.loads(next(line for line in out.splitlines() if line.startswith("SUMMARY "))[8:])


def _configs(pairs, tmp_path, vocabulary, name, **overrides):
    # Plain SGD: Adam and Adafactor normalise the gradient's scale away, so only SGD's steps show whether the
    # applied update is exactly the global-batch gradient (not R times it).
    return tiny_config(pairs, tmp_path / name, vocabulary, batch_size=8, steps=3, checkpoint_every=3, optimizer="sgd", learning_rate=0.1, **overrides)


@pytest.mark.slow
def test_mirrored_two_replicas_match_single_process(tmp_path, pair_file, t5_vocabulary):
    single = _finish(_run("single", _configs(pair_file, tmp_path, t5_vocabulary, "single")))
    mirrored = _finish(_run("mirrored", _configs(pair_file, tmp_path, t5_vocabulary, "mirrored", strategy="mirrored")))
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    want = _tensorboard_scalars(tmp_path / "single" / "logs", "loss")
    got = _tensorboard_scalars(tmp_path / "mirrored" / "logs", "loss")
    # Step 1 checks the global-batch loss; steps 2-3 check that the update was the global gradient.
    np.testing.assert_allclose(got, want, rtol=2e-4)


@pytest.mark.slow
def test_multi_worker_two_processes_match_single_process(tmp_path, pair_file, t5_vocabulary):
    single = _finish(_run("single", _configs(pair_file, tmp_path, t5_vocabulary, "single")))
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    config = _configs(pair_file, tmp_path, t5_vocabulary, "multi", strategy="multi_worker")
    workers = [
        _run("multi_worker", config, {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)
    ]
    summaries = [_finish(w) for w in workers]
    assert all(s["replicas"] == 2 for s in summaries)
    want = _tensorboard_scalars(tmp_path / "single" / "logs", "loss")
    got = _tensorboard_scalars(tmp_path / "multi" / "logs", "loss")
    np.testing.assert_allclose(got, want, rtol=2e-4)
    assert summaries[0]["last_loss"] == pytest.approx(single["last_loss"], rel=2e-4)
    # Only the chief keeps checkpoints and the model; the other worker's temporary copies are gone.
    assert (tmp_path / "multi" / "model.keras").exists()
    assert not list((tmp_path / "multi").glob(".worker_*"))


@pytest.mark.slow
def test_mirrored_cached_step_matches_single_process_plain_step(tmp_path, pair_file, t5_vocabulary):
    # Each replica embeds its 4 pairs 2 at a time; the gathered global batch and the update must be the plain ones.
    single = _run("single", _configs(pair_file, tmp_path, t5_vocabulary, "single"))
    mirrored = _run("mirrored", _configs(pair_file, tmp_path, t5_vocabulary, "cached", strategy="mirrored", mini_batch_size=2))
    assert (_finish(single)["replicas"], _finish(mirrored)["replicas"]) == (1, 2)
    want = _tensorboard_scalars(tmp_path / "single" / "logs", "loss")
    got = _tensorboard_scalars(tmp_path / "cached" / "logs", "loss")
    np.testing.assert_allclose(got, want, rtol=2e-4)
