"""TensorFlow's thread pools: sized from the CPUs the process may use (affinity, cgroup quota) or `--threads`, before
TensorFlow makes them."""

import os
import subprocess
import sys

import pytest

from conftest import REPO
from tf_dualenc.threads import available_cpus, configure_threads

# Runs a command of the CLI whose `run` only reports the thread counts TensorFlow was given.
PROBE = """
import json, sys
import tf_dualenc.cli.doctor as doctor

def probe(args):
    import os
    import tensorflow as tf

    print(json.dumps([tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads(),
                      os.environ.get("TF_NUM_INTRAOP_THREADS"), os.environ.get("TF_NUM_INTEROP_THREADS")]))
    return 0

doctor.run = probe
from tf_dualenc import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def _probe(argv, **environment):
    import json

    env = {k: v for k, v in os.environ.items() if k not in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=dict(env, **environment))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_threads_option_sizes_tensorflows_pools_before_they_exist():
    # After the command's name or before it; the sizes go on to the processes this one starts.
    assert _probe(["doctor", "--threads", "1"]) == [1, 1, "1", "1"]
    cpus = available_cpus()
    # The default: the CPUs the process may use, unless TensorFlow's own variable says otherwise.
    assert _probe(["--threads", "3", "doctor"]) == [3, 3, "3", "3"]
    assert _probe(["doctor"], TF_NUM_INTEROP_THREADS="1") == [cpus, 1, str(cpus), "1"]


def test_threads_must_be_a_positive_number(capsys):
    from tf_dualenc import cli

    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["evaluate", "--threads", bad])
        assert "argument --threads: " in capsys.readouterr().err


def test_available_cpus_is_the_affinity_capped_by_the_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(str(tmp_path / "none")) == affinity  # no cgroup files: the affinity alone
    (tmp_path / "cpu.max").write_text("max 100000\n")  # cgroup v2 without a quota
    assert available_cpus(str(tmp_path)) == affinity
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: one thread
    assert available_cpus(str(tmp_path)) == 1
    (tmp_path / "cpu.max").write_text(f"{affinity * 300000} 100000\n")  # a quota above the affinity does not add CPUs
    assert available_cpus(str(tmp_path)) == affinity
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")  # cgroup v1: 1.5 CPUs, rounded up
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(str(v1)) == min(2, affinity)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(str(v1)) == affinity


def test_pools_that_already_exist_are_kept_and_cannot_be_resized():
    import tensorflow as tf

    float(tf.reduce_sum(tf.ones([2])))  # TensorFlow runs in this process: its pools exist
    current = (tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())
    assert configure_threads() == current  # the CLI called from Python: nothing to do
    with pytest.raises(ValueError, match=r"--threads 97: TensorFlow already runs in this process .*cannot be resized"):
        configure_threads(97)
