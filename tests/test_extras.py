"""An optional part used without its extra: one clear error naming the module and the `pip install` to run
(tf_dualenc.extras), on the command line (exit 2, no traceback) and in Python. A missing module is simulated with
sys.modules[name] = None, which makes `import name` fail as if it were not installed."""

import re
import sys

import pytest

from conftest import REPO
from tf_dualenc import cli
from tf_dualenc.extras import EXTRAS, MissingExtraError, require


def _hide(monkeypatch, package):
    """`package` looks uninstalled. Its submodules that an earlier test imported are hidden too: Python finds a
    cached submodule without importing its parent, so hiding the parent alone would not be enough."""
    for name in [name for name in sys.modules if name.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)


def _setup_extras():
    # Each extra is a key of the extras_require literal, or added below it (`extras_require["index"] = ...`).
    found = re.findall(r'^\s*"(\w+)": \[|^extras_require\["(\w+)"\] =', (REPO / "setup.py").read_text(encoding="utf-8"),
                       flags=re.M)
    return {literal or added for literal, added in found}


def test_every_extra_named_is_one_setup_py_declares():
    assert set(EXTRAS.values()) <= _setup_extras()


def test_require_names_the_module_and_the_pip_install(monkeypatch):
    _hide(monkeypatch, "bm25s")
    with pytest.raises(MissingExtraError) as raised:
        require("bm25s", feature="BM25")
    message = str(raised.value)
    assert "BM25 needs the 'bm25s' module" in message and 'pip install "tf_dualenc[bm25]"' in message
    assert isinstance(raised.value, ImportError) and raised.value.__cause__ is None
    # A submodule of a missing package names the package that is missing.
    _hide(monkeypatch, "dask")
    with pytest.raises(MissingExtraError, match=r"'dask' module.*tf_dualenc\[dask\]"):
        require("dask.distributed")


def test_require_returns_an_installed_module():
    import json

    assert require("json", "none") is json


def test_a_module_that_fails_on_a_missing_import_of_its_own_is_not_reported_as_a_missing_extra(tmp_path, monkeypatch):
    (tmp_path / "half_installed.py").write_text("import no_such_module_of_its_own\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as raised:
        require("half_installed", "none")
    assert not isinstance(raised.value, MissingExtraError) and raised.value.name == "no_such_module_of_its_own"


@pytest.mark.parametrize("argv,module,extra", [
    (["build-index", "--corpus", "c.jsonl", "--model", "m", "--output-dir", "i"], "apache_beam", "index"),
    (["pipeline", "run"], "tfx", "tfx"),
    (["serve", "--model", "m=exports/m"], "grpc", "serving"),
])
def test_a_command_without_its_extra_says_what_to_install(argv, module, extra, monkeypatch, capsys):
    _hide(monkeypatch, module)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"needs the '{module}' module, which is not installed" in err
    assert f'pip install "tf_dualenc[{extra}]"' in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bm25_without_its_extra_says_what_to_install(monkeypatch):
    from tf_dualenc.evaluation.bm25_baseline import BM25Index

    _hide(monkeypatch, "bm25s")
    with pytest.raises(MissingExtraError, match=r'tf_dualenc\[bm25\]'):
        BM25Index(["d1"], ["a document"])


def test_the_serving_client_without_its_extra_says_what_to_install(monkeypatch):
    from tf_dualenc.serving.client import ServingClient

    _hide(monkeypatch, "grpc")
    with pytest.raises(MissingExtraError, match=r'tf_dualenc\[serving\]'):
        ServingClient("localhost:1", "m")._grpc_stub()


def test_a_missing_module_the_command_line_meets_elsewhere_still_names_its_extra(monkeypatch, capsys):
    def analyze_without_sklearn(args):
        from sklearn.manifold import TSNE  # noqa: F401

    _hide(monkeypatch, "sklearn")
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["analyze"].set_defaults(func=analyze_without_sklearn)
    assert cli.main(["analyze", "--model", "m=x.keras", "--data", "d", "--output-dir", "o"]) == 2
    err = capsys.readouterr().err
    assert "tf-dualenc analyze needs the 'sklearn' module" in err and 'pip install "tf_dualenc[analysis]"' in err
