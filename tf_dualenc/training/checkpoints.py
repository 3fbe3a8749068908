"""Resuming from the checkpoints a killed or crashed run left: its last save may be cut short (kill -9, a full disk)."""

import glob
import os
import re
import shutil


class CheckpointError(ValueError):
    """No checkpoint in the folder can be read; the message names each one's files and what went wrong."""


def _numbered_checkpoints(directory):
    """Checkpoint prefixes in `directory`, the highest step first (`ckpt-12` before `ckpt-3`)."""
    prefixes = [path[: -len(".index")] for path in glob.glob(os.path.join(glob.escape(directory), "*.index"))]

    def number(prefix):
        match = re.search(r"-(\d+)$", prefix)
        return int(match.group(1)) if match else -1

    return sorted(prefixes, key=lambda prefix: (number(prefix), prefix), reverse=True)


def remove_unfinished_saves(directory, print_fn=print):
    """Removes the `<prefix>_temp/` folders of saves that never finished: TensorFlow writes a checkpoint's shards there
    and removes the folder once they are merged, so a killed save leaves it behind for good."""
    for temp in sorted(glob.glob(os.path.join(glob.escape(directory), "*_temp"))):
        if os.path.isdir(temp):
            shutil.rmtree(temp, ignore_errors=True)
            print_fn(f"removed {temp}, left by a checkpoint save that did not finish")


def restore_latest_checkpoint(checkpoint, directory, print_fn=print):
    """Restores `checkpoint` from the newest readable checkpoint in `directory`; returns its prefix, or None when the
    folder holds no checkpoint.

    A checkpoint that cannot be read (truncated or corrupt files) is named in a warning and the previous one is used:
    the run then repeats the steps since that one, and its next save replaces the broken files.

    Raises:
        CheckpointError: there are checkpoints, and none can be read.
    """
    import tensorflow as tf

    if not os.path.isdir(directory):
        return None
    remove_unfinished_saves(directory, print_fn)
    broken = []
    for prefix in _numbered_checkpoints(directory):
        try:
            checkpoint.restore(prefix).assert_existing_objects_matched()
        except (tf.errors.OpError, IndexError, ValueError) as error:
            files = ", ".join(sorted(os.path.basename(path) for path in glob.glob(glob.escape(prefix) + ".*")))
            detail = getattr(error, "message", None) or str(error)
            broken.append(f"{prefix} ({files}): {type(error).__name__}: {detail}")
            print_fn(f"warning: cannot read checkpoint {prefix} ({files}): {type(error).__name__}: {detail}; "
                     "it was probably cut short by a killed run or a full disk. Trying the previous checkpoint.")
            continue
        return prefix
    if broken:
        raise CheckpointError(f"No readable checkpoint in {directory}: " + "; ".join(broken)
                              + ". Delete the checkpoints folder to train from the start.")
    return None
