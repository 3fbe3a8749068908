import os
import pathlib
import re
import subprocess
import sys

import pytest

from tf_dualenc import doctor

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_environment_shims_are_set_before_tensorflow():
    assert os.environ["KERAS_BACKEND"] == "tensorflow"
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    import keras
    import tensorflow as tf

    assert keras.__version__.startswith("3.")
    assert tf.keras.__name__.startswith("tf_keras")


def test_tfdv_stand_in_imports_and_fails_loudly_on_use():
    code = (
        "import tf_dualenc\n"
        "import tensorflow_data_validation as tfdv\n"
        "from tensorflow_data_validation.utils import schema_util\n"
        "annotation = tfdv.DatasetListView\n"
        "try:\n"
        "    tfdv.generate_statistics_from_tfrecord('x')\n"
        "except ImportError as e:\n"
        "    print('ERROR', e)\n"
        "try:\n"
        "    schema_util.get_feature(None, 'f')\n"
        "except ImportError as e:\n"
        "    print('ERROR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 2
    assert "tensorflow-data-validation" in lines[0] and "generate_statistics_from_tfrecord" in lines[0]
    assert "schema_util.get_feature" in lines[1]


def test_user_environment_settings_win():
    code = "import os, tf_dualenc; print(os.environ['TF_USE_LEGACY_KERAS'])"
    env = dict(os.environ, TF_USE_LEGACY_KERAS="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "0"


def test_doctor_pins_match_requirements_file():
    pins = {}
    for line in (REPO / "requirements" / "requirements.in").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(3)
    assert pins == doctor.PINNED


@pytest.mark.slow
def test_doctor_reports_every_check_ok():
    lines = []
    assert doctor.run(print_fn=lines.append, strict=True) == 0, "\n".join(lines)
    report = "\n".join(lines)
    for label in ("tensorflow-text ops", "scann TF ops", "tensorflow-recommenders", "tfx"):
        assert re.search(rf"{re.escape(label)}\s+ok", report), report


def test_doctor_flags_a_version_mismatch(monkeypatch):
    monkeypatch.setitem(doctor.PINNED, "numpy", "0.0.1")
    monkeypatch.setattr(doctor, "CHECKS", ())
    lines = []
    assert doctor.run(print_fn=lines.append, strict=True) == 1
    assert any("numpy" in line and "MISMATCH (want 0.0.1)" in line for line in lines)
    # In an environment of one's own the version is reported, not failed.
    lines.clear()
    assert doctor.run(print_fn=lines.append) == 0
    assert any("numpy" in line and "DIFFERS (verified with 0.0.1)" in line for line in lines)
    numpy_status = lambda strict: next(p["status"] for p in doctor.check(lines.append, strict)["packages"] if p["name"] == "numpy")
    assert (numpy_status(True), numpy_status(False)) == ("mismatch", "differs")


def test_doctor_reports_a_part_an_extra_left_out_and_fails_only_on_the_core_unless_strict(monkeypatch):
    real = doctor.installed_version
    absent = {"matplotlib", "tfx", "safetensors"}
    monkeypatch.setattr(doctor, "installed_version", lambda p: (p, None) if p in absent else real(p))
    ran = []
    monkeypatch.setattr(doctor, "CHECKS", (("tfx", lambda: ran.append("tfx") or "imports", "tfx"),
                                           ("core", lambda: ran.append("core") or "loads", None)))
    monkeypatch.setattr(doctor, "PINNED", {p: doctor.PINNED[p] for p in ("numpy", "matplotlib", "tfx", "safetensors")})
    lines = []
    report = doctor.check(print_fn=lines.append)
    text = "\n".join(lines)
    assert report["ok"] is False  # safetensors is core
    assert re.search(r"safetensors\s+-\s+MISSING", text), text
    assert 'NOT INSTALLED (pip install "tf_dualenc[analysis]")' in text and 'tf_dualenc[tfx]' in text
    assert ran == ["core"] and re.search(r"tfx\s+skipped", text), text
    statuses = {package["name"]: package["status"] for package in report["packages"]}
    assert statuses == {"numpy": "ok", "matplotlib": "not_installed", "tfx": "not_installed", "safetensors": "missing"}
    assert [check["status"] for check in report["checks"]] == ["skipped", "ok"]
    assert "Re-run `make setup`" not in text and 'pip install "tf_dualenc"' in text
    monkeypatch.setattr(doctor, "PINNED", {p: doctor.PINNED[p] for p in ("numpy", "matplotlib", "tfx")})
    ran.clear()
    assert doctor.check(print_fn=lines.append)["ok"] is True and ran == ["core"]
    # --strict (make test) holds the environment to the lock: a left-out part fails, and its check runs.
    ran.clear()
    lines.clear()
    assert doctor.check(print_fn=lines.append, strict=True)["ok"] is False and ran == ["tfx", "core"]
    assert re.search(r"matplotlib\s+-\s+MISSING", "\n".join(lines))
    assert "Re-run `make setup`" in "\n".join(lines)


def test_every_optional_pin_names_an_extra_of_setup_py():
    from test_extras import _setup_extras

    extras = _setup_extras()
    assert {"index", "beam", "scann", "tfx"} <= extras
    assert set(doctor.OPTIONAL) <= set(doctor.PINNED)
    assert set(doctor.OPTIONAL.values()) <= extras, set(doctor.OPTIONAL.values()) - extras


def test_doctor_says_what_tf_dualenc_sets_in_the_environment_and_why(monkeypatch):
    monkeypatch.setattr(doctor, "CHECKS", ())
    lines = []
    doctor.run(print_fn=lines.append)
    line = next((line for line in lines if "TF_USE_LEGACY_KERAS=1" in line), None)
    assert line is not None, "\n".join(lines)
    assert "tf-keras (Keras 2)" in line and "tensorflow-recommenders" in line


def test_readme_documents_every_command():
    import argparse
    import pathlib

    from tf_dualenc.cli import build_parser

    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [name for name in action.choices if f"`tf-dualenc {name}" not in readme]
    assert not missing, f"README.md's command table lacks: {missing}"


# A traced function whose graph Grappler's loop optimizer skips: TensorFlow logs "loop_optimizer.cc:934] Skipping loop
# optimization for Merge node with control input" through absl, which TF_CPP_MIN_LOG_LEVEL alone does not silence.
_GRAPPLER_WARNING = """
import tensorflow as tf

@tf.function
def f(x):
    r = tf.RaggedTensor.from_row_lengths(x, [1, tf.size(x) - 1])
    return tf.concat([r, r], axis=1).flat_values

print(f(tf.constant([1, 2, 3])).numpy().tolist())
"""
# TensorFlow's C++ log lines: its own format (`2026-... : W tensorflow/...`) and absl's (`W0000 00:00:... file.cc:N]`).
_TF_CPP_LINE = re.compile(r"^(\d{4}-\d\d-\d\d [\d:.]+: [IWE] |[IWE]\d{4} [\d:.]+ +\d+ \w+\.cc:\d+\]|WARNING: All log messages before absl)", re.M)


def _environment(**settings):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell: not set
    env.update(settings)
    return env


@pytest.mark.slow
def test_importing_tf_dualenc_turns_tensorflows_cpp_warnings_off_unless_the_user_set_the_level():
    code = "import tf_dualenc\n" + _GRAPPLER_WARNING
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_environment())
    assert quiet.stdout.strip() == "[1, 1, 2, 3, 2, 3]"
    assert not _TF_CPP_LINE.search(quiet.stderr), quiet.stderr
    # The user's own level wins, and at 0 the line this test looks for is there.
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=_environment(TF_CPP_MIN_LOG_LEVEL="0"))
    assert "loop_optimizer" in loud.stderr and _TF_CPP_LINE.search(loud.stderr)


@pytest.mark.slow
def test_a_tensorflow_command_prints_no_cpp_log_lines_unless_verbose(tmp_path, t5_vocabulary):
    """`tf-dualenc evaluate` encodes a corpus: TensorFlow logged "oneDNN supports DT_INT64 only on platforms with
    AVX-512" (at ERROR) in it, as in every command that encodes."""
    from pipeline_data import write_tiny_beir
    from test_models import tiny

    model_path = tmp_path / "tiny.keras"
    tiny(t5_vocabulary).save(model_path)
    data = write_tiny_beir(tmp_path / "beir")
    command = [sys.executable, "-m", "tf_dualenc.cli", "evaluate", "--model", str(model_path), "--data", data]
    quiet = subprocess.run([*command, "--output-dir", str(tmp_path / "quiet")], capture_output=True, text=True,
                           env=_environment(), cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "NDCG@10" in quiet.stdout
    assert not _TF_CPP_LINE.search(quiet.stderr) and "oneDNN" not in quiet.stderr, quiet.stderr
    verbose = subprocess.run([*command, "--output-dir", str(tmp_path / "verbose"), "--verbose"], capture_output=True,
                             text=True, env=_environment(), cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert _TF_CPP_LINE.search(verbose.stderr), verbose.stderr
