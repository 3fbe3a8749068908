"""One loader for every caller: a `.keras` saved after `model.compile(loss=SamToNeLoss(...))` loads in a fresh
process through `tf_dualenc.load_model` and in the commands that take `--model`."""

import subprocess
import sys

import pytest

from tf_dualenc import cli, demo


@pytest.mark.slow
def test_a_compiled_model_with_a_tf_dualenc_loss_loads_everywhere(tmp_path, t5_vocabulary, capsys):
    # The demo compiles with SamToNeLoss, fits and saves: the file names the loss class.
    demo.run(output_dir=tmp_path / "demo", steps=2, vocabulary=t5_vocabulary, print_fn=lambda *_: None)
    path = tmp_path / "demo" / "model.keras"
    program = ("import tf_dualenc; m = tf_dualenc.load_model(%r); "
               "print(type(m).__name__, m.encode_queries(['a question']).shape, type(m.loss).__name__)") % str(path)
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DualEncoder (1, " in result.stdout
    # Loaded compiled, as saved, and without Keras' "compile() was not called as part of model loading" warning.
    assert result.stdout.split()[-1] == "SamToNeLoss"
    assert "compile()" not in result.stderr, result.stderr[-3000:]
    assert cli.main(["export", "--model", str(path), "--export-base", str(tmp_path / "exports"), "--model-name", "m"]) == 0
    assert (tmp_path / "exports" / "m" / "1" / "saved_model.pb").is_file()


def test_load_model_names_the_file_it_cannot_load(tmp_path):
    import tf_dualenc

    with pytest.raises(FileNotFoundError, match=r"Model file not found: .*missing\.keras"):
        tf_dualenc.load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.keras: cannot be loaded as a tf_dualenc model"):
        tf_dualenc.load_model(bad)


@pytest.mark.slow
def test_python_users_do_not_get_keras_hub_t5_mask_warnings(t5_vocabulary):
    program = ("import tf_dualenc\nfrom tf_dualenc.models import build_t5_dual_encoder\n"
               f"m = build_t5_dual_encoder('tiny', vocabulary={t5_vocabulary!r}, query_sequence_length=8, document_sequence_length=8)\n"
               "print(m.encode_queries(['a question']).shape)\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "does not support masking" not in result.stderr
