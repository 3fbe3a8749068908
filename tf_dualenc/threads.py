"""TensorFlow's CPU thread pools, sized from what the process may really use (`tf-dualenc --threads`).

TensorFlow sizes its intra-op pool (threads inside one op: a matmul's blocks) and its inter-op pool (ops run side by
side) from the CPUs the process may be scheduled on (its affinity mask), but it does not read a container's CPU quota
(cgroup `cpu.max` / `cpu.cfs_quota_us`): in a container given 2 CPUs of a 64-core host it starts 64-thread pools,
whose threads then wait for one another's time slices. `available_cpus` is the smaller of the two, and
`configure_threads` gives both pools that many threads (or `--threads N`).

The sizes must be set before TensorFlow creates its pools, which it does when the first op runs: the CLI calls
`configure_threads` once its arguments are parsed, before any command runs. A user's `TF_NUM_INTRAOP_THREADS` /
`TF_NUM_INTEROP_THREADS` (TensorFlow's own variables) win over the default, `--threads` over both; the sizes chosen
are written back into those variables, so processes started from this one (the workers of a local Dask cluster,
distributed-training workers) size their pools alike.
"""

import math
import os

THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def _cgroup_cpu_limit(root="/sys/fs/cgroup"):
    """CPUs the cgroup quota allows (quota / period, rounded up), or None without a quota."""
    for path, parse in ((os.path.join(root, "cpu.max"), lambda text: text.split()),  # cgroup v2: "quota period" or "max period"
                        (os.path.join(root, "cpu", "cpu.cfs_quota_us"), None)):  # cgroup v1: quota (-1: none), then the period file
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
            if parse is not None:
                quota, period = parse(text)
            else:
                with open(os.path.join(root, "cpu", "cpu.cfs_period_us"), encoding="ascii") as f:
                    quota, period = text, f.read().strip()
        except (OSError, ValueError):
            continue
        if quota in ("max", "-1"):
            return None
        try:
            return max(1, math.ceil(int(quota) / int(period)))
        except (ValueError, ZeroDivisionError):
            return None
    return None


def available_cpus(cgroup_root="/sys/fs/cgroup"):
    """The CPUs this process may use: its affinity mask (`os.sched_getaffinity`), capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit(cgroup_root)
    return max(1, min(cpus, limit) if limit else cpus)


def check_threads(value):
    """argparse type of `--threads`: a positive integer."""
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r}: expected a positive number of threads")
    return threads


def _environment_threads(name):
    try:
        return max(0, int(os.environ.get(name, "")))
    except ValueError:
        return 0


def configure_threads(threads=None):
    """Sizes TensorFlow's intra-op and inter-op pools: `threads` each, or else what `TF_NUM_INTRAOP_THREADS` /
    `TF_NUM_INTEROP_THREADS` say, or else `available_cpus()`; returns (intra-op, inter-op).

    Must run before TensorFlow runs its first op. When its pools already exist (the CLI called from a Python process
    that ran TensorFlow before) they are left as they are, unless `threads` asks for another size: then a ValueError
    says that TensorFlow cannot resize them.
    """
    sizes = [threads or _environment_threads(name) or available_cpus() for name in THREAD_VARIABLES]
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(sizes[0])
        tf.config.threading.set_inter_op_parallelism_threads(sizes[1])
    except RuntimeError:  # TensorFlow is running already
        current = (tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())
        if threads:
            raise ValueError(f"--threads {threads}: TensorFlow already runs in this process with its thread pools sized "
                             f"{current} (intra-op, inter-op; 0 is its default); they cannot be resized once made.") from None
        return current
    for name, size in zip(THREAD_VARIABLES, sizes):
        os.environ[name] = str(size)  # the processes this one starts (local Dask workers, training workers) size theirs alike
    return tuple(sizes)


def tensorflow_threads():
    """{"intra_op": n, "inter_op": n} as TensorFlow was configured (0: its own default), for reports."""
    import tensorflow as tf

    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
