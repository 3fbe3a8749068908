"""Writing a file so that a reader sees either its old content or the new, never half of it."""

import contextlib
import json
import os
import uuid


@contextlib.contextmanager
def atomic_writer(path, binary=False):
    """A file object for `path` that is written under a temporary name and renamed over `path` once complete.

    The temporary name is unique (several workers of one cluster may write the same file at once) and sits in
    `path`'s folder (a rename is atomic only within one file system). The data is fsynced before the rename, so a
    crash cannot leave `path` renamed but empty. On an error the temporary file is removed and `path` is untouched.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb" if binary else "x", encoding=None if binary else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_text_atomic(path, text):
    with atomic_writer(path) as f:
        f.write(text)
    return path


def write_json_atomic(path, value):
    """`value` as indented JSON with a final newline."""
    return write_text_atomic(path, json.dumps(value, indent=2) + "\n")
