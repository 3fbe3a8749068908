"""Resuming after a checkpoint save was cut short: a truncated latest checkpoint, a save killed with SIGKILL."""

import glob
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tf_dualenc.training.checkpoints import CheckpointError, restore_latest_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def saved_checkpoints(directory, values):
    """A checkpoint of one variable per value (ckpt-1 holds values[0], ...); returns (checkpoint, variable)."""
    import tensorflow as tf

    variable = tf.Variable(np.zeros(256, np.float32))
    checkpoint = tf.train.Checkpoint(value=variable)
    manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=len(values))
    for number, value in enumerate(values, 1):
        variable.assign(np.full(256, value, np.float32))
        manager.save(checkpoint_number=number)
    variable.assign(np.zeros(256, np.float32))
    return checkpoint, variable


def truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def test_a_truncated_latest_checkpoint_is_named_and_the_previous_one_restored(tmp_path):
    checkpoint, variable = saved_checkpoints(tmp_path, [1.0, 2.0])
    [data] = glob.glob(str(tmp_path / "ckpt-2.data-*"))
    truncate(data)
    messages = []
    assert restore_latest_checkpoint(checkpoint, str(tmp_path), messages.append) == str(tmp_path / "ckpt-1")
    np.testing.assert_array_equal(variable.numpy(), 1.0)
    [warning] = messages
    assert warning.startswith(f"warning: cannot read checkpoint {tmp_path / 'ckpt-2'} (ckpt-2.data-00000-of-00001, ckpt-2.index): "
                              "IndexError: Read less bytes than requested")
    assert "Trying the previous checkpoint" in warning

    # None readable: an error naming every checkpoint, not a silent start from step 0.
    truncate(str(tmp_path / "ckpt-1.index"))
    with pytest.raises(CheckpointError, match=r"No readable checkpoint in .*: .*ckpt-2 \(.*\): IndexError.*; .*ckpt-1 \(.*\): "):
        restore_latest_checkpoint(checkpoint, str(tmp_path), lambda *_: None)
    assert restore_latest_checkpoint(checkpoint, str(tmp_path / "none"), lambda *_: None) is None


@pytest.mark.slow
def test_a_save_killed_midway_leaves_a_temp_folder_the_next_run_removes(tmp_path):
    # TensorFlow writes a save's shards into <prefix>_temp/ and merges them into <prefix>.index/.data; the child dies
    # with SIGKILL just before the merge of its second save, as `kill -9` during a save would leave it.
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        import tensorflow as tf
        from tensorflow.python.ops import gen_io_ops

        variable = tf.Variable(np.zeros(256, np.float32))
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(value=variable), {str(tmp_path)!r}, max_to_keep=3)
        variable.assign(np.full(256, 1.0, np.float32))
        manager.save(checkpoint_number=1)
        gen_io_ops.merge_v2_checkpoints = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
        variable.assign(np.full(256, 2.0, np.float32))
        manager.save(checkpoint_number=2)
    """)
    child = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=120)
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    assert (tmp_path / "ckpt-2_temp").is_dir()

    import tensorflow as tf

    variable = tf.Variable(np.zeros(256, np.float32))
    messages = []
    assert restore_latest_checkpoint(tf.train.Checkpoint(value=variable), str(tmp_path), messages.append) == str(tmp_path / "ckpt-1")
    np.testing.assert_array_equal(variable.numpy(), 1.0)
    assert messages == [f"removed {tmp_path / 'ckpt-2_temp'}, left by a checkpoint save that did not finish"]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]


@pytest.mark.slow
def test_train_resumes_from_the_previous_checkpoint_when_the_latest_is_truncated(tmp_path, t5_vocabulary):
    from test_training import PAIRS, tiny_config
    from tf_dualenc.training import train

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(f'{{"query": "{q}", "document": "{d}"}}\n' for q, d in PAIRS))
    config = tiny_config(pairs, tmp_path / "run", t5_vocabulary, steps=3, checkpoint_every=1)
    train(config, stop_after_steps=2, progress=False, print_fn=lambda *_: None)
    checkpoints = tmp_path / "run" / "checkpoints"
    [data] = glob.glob(str(checkpoints / "ckpt-2.data-*"))
    truncate(data)
    (checkpoints / "ckpt-3_temp").mkdir()  # a save killed before its merge
    messages = []
    summary, _ = train(config, progress=False, print_fn=messages.append)
    assert summary["resumed_from_step"] == 1 and summary["finished"]
    assert any(m.startswith(f"warning: cannot read checkpoint {checkpoints / 'ckpt-2'} (") for m in messages), messages
    assert f"removed {checkpoints / 'ckpt-3_temp'}, left by a checkpoint save that did not finish" in messages
    assert not glob.glob(str(checkpoints / "*_temp"))
