"""tf_dualenc's imports run downward only (the layers of docs/design.md) and never reach into another package's
private names. The sources are parsed, not imported: imports inside functions count too."""

import ast
import pathlib
import sys

from conftest import REPO

PACKAGE = REPO / "tf_dualenc"

# Layer of each top-level module or subpackage of tf_dualenc (docs/design.md, "Package map"). A module may import its
# own layer and those below it.
LAYERS = {
    "": 0, "_env": 0, "extras": 0, "precision": 0, "threads": 0, "process_owner": 0, "config_files": 0, "atomic_write": 0, "index_config": 0, "vocabulary": 0, "progress": 0, "recipes": 0,
    "data": 1,
    "models": 2, "losses": 2,
    "training": 3, "evaluation": 3, "mining": 3, "export": 3, "loading": 3, "serving": 3,
    "indexing": 4, "reranking": 4, "analysis": 4,
    "doctor": 5, "demo": 5, "tfx": 5,
    "cli": 6,
}

# Upward imports that stay, each with its reason: (importing module, imported module). None today; an entry needs a
# reason a move to the right layer cannot answer.
ALLOWED_UPWARD = set()


def module_name(path):
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name):
    relative = pathlib.Path(*name.split("."))
    return (REPO / relative).with_suffix(".py").is_file() or (REPO / relative / "__init__.py").is_file()


def imports(path):
    """(imported module, imported name or None, line) for every tf_dualenc import in the file."""
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                # `from tf_dualenc import losses` imports a module, not a name.
                if is_module(f"{base}.{alias.name}"):
                    yield f"{base}.{alias.name}", None, node.lineno
                else:
                    yield base, alias.name, node.lineno


def unit(module):
    return module.split(".")[1] if "." in module else ""


def package_of(module):
    return module if is_module(module) and (REPO / pathlib.Path(*module.split(".")) / "__init__.py").is_file() else module.rpartition(".")[0]


def is_private(part):
    return part.startswith("_") and not part.startswith("__")


def violations():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        importer_package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        for module, name, line in imports(path):
            if module != "tf_dualenc" and not module.startswith("tf_dualenc."):
                continue
            where = f"{path.relative_to(REPO)}:{line}"
            if unit(importer) not in LAYERS or unit(module) not in LAYERS:
                found.append(f"{where}: give tf_dualenc.{unit(importer) or unit(module)} a layer in LAYERS (and docs/design.md)")
            elif LAYERS[unit(module)] > LAYERS[unit(importer)] and (importer, module) not in ALLOWED_UPWARD:
                found.append(f"{where}: {importer} (layer {LAYERS[unit(importer)]}) imports {module} (layer {LAYERS[unit(module)]})")
            private_module = any(is_private(part) for part in module.split(".")[1:])
            if (private_module or (name and is_private(name))) and package_of(module) != importer_package:
                found.append(f"{where}: {importer} imports the private {module}{'.' + name if name else ''} of another package")
    return found


def test_imports_run_downward_and_stay_out_of_other_packages_private_names():
    assert violations() == []


def test_the_check_sees_upward_imports_and_modules_imported_by_name(monkeypatch):
    # `from tf_dualenc import losses` imports the module tf_dualenc.losses (layer 2), not a name of the root package.
    assert ("tf_dualenc.losses", None) in {(m, n) for m, n, _ in imports(PACKAGE / "training" / "train_config.py")}
    # Imports inside functions count too.
    assert ("tf_dualenc.models.model_file", "load_model_file") in {(m, n) for m, n, _ in imports(PACKAGE / "loading.py")}
    # With losses put above training, that import runs upward: the check reports it, unless ALLOWED_UPWARD lists it.
    monkeypatch.setitem(LAYERS, "losses", 4)
    upward = "tf_dualenc.training.train_config (layer 3) imports tf_dualenc.losses (layer 4)"
    assert any(upward in v for v in violations())
    monkeypatch.setattr(sys.modules[__name__], "ALLOWED_UPWARD", {("tf_dualenc.training.train_config", "tf_dualenc.losses")})
    assert not any(upward in v for v in violations())


def test_every_module_has_a_row_in_the_package_map():
    """docs/design.md's package map names every module: by its path, or in a row that starts with its folder and
    names the file (or `<command>.py` for the command modules; a folder row covers tfx/components/)."""
    doc = (REPO / "docs" / "design.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1] for line in doc.splitlines() if line.startswith("| `tf_dualenc/")]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        folder = relative.rpartition("/")[0] + "/"
        if relative in doc or (path.name == "__init__.py" and path.parent != PACKAGE):
            continue
        if not any(row.strip().startswith(f"`{folder}") and (path.name in row or "<command>" in row or f"`{folder}`" in row)
                   for row in rows):
            missing.append(relative)
    assert missing == [], "modules docs/design.md's package map does not name"
