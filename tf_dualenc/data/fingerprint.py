"""Whether input files changed: a digest of their names, sizes and modification times."""

import hashlib
import os


def fingerprint_inputs(*paths):
    """A digest of the input files' names, sizes and modification times (how TFX's file-based ExampleGen tells
    whether its input changed). Globs and comma lists are expanded; folders are walked."""
    import glob

    digest = hashlib.sha256()
    for path in paths:
        for part in (p for p in str(path).split(",") if p):
            matches = sorted(glob.glob(part)) if glob.has_magic(part) else [part]
            for match in matches:
                files = [match] if os.path.isfile(match) else sorted(
                    os.path.join(root, name) for root, _, names in os.walk(match) for name in names)
                for file in files:
                    stat = os.stat(file)
                    digest.update(f"{os.path.abspath(file)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
