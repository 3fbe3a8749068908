"""Every `tf-dualenc` command in README.md and docs/*.md, as written: its flags parse, and for `train` and
`pipeline` the whole config (file + --set) validates. Every `benchmarks/*.py` command: its flags parse. (Running each to completion takes minutes to hours; what can go
stale in a doc without anyone noticing is a renamed flag or config key, which this catches.)"""

import pathlib
import re
import shlex

import pytest

from tf_dualenc import cli

REPO = pathlib.Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _commands(prefix=".venv/bin/tf-dualenc ", inline=False):
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            variables = {}
            for line in joined.splitlines():
                line = re.sub(r"\s&$", "", line.split(" #")[0].strip())  # a command run in the background is the same command
                assignment = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(\S+)", line)
                if assignment:  # a shell variable the block's later commands use
                    variables[assignment[1]] = assignment[2]
                    continue
                line = re.sub(r"\$([A-Z_][A-Z0-9_]*)", lambda m: variables.get(m[1], m[0]), line)
                if line.startswith(prefix) and "..." not in line and "$" not in line:
                    found.append((doc.name, line))
        if inline:  # commands quoted in prose as `...` too
            found += [(doc.name, span) for span in re.findall(rf"`({re.escape(prefix)}[^`]*)`", text) if "..." not in span]
    return found


COMMANDS = _commands()
BENCHMARK_COMMANDS = _commands(".venv/bin/python benchmarks/", inline=True)


def test_the_docs_have_commands_to_check():
    assert len(COMMANDS) > 20 and {doc for doc, _ in COMMANDS} >= {"README.md", "training.md", "pipeline.md"}


@pytest.mark.parametrize("doc,line", COMMANDS, ids=[f"{d}:{i}" for i, (d, _) in enumerate(COMMANDS)])
def test_doc_command_parses_and_its_config_validates(doc, line, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    argv = shlex.split(line)[1:]
    try:
        args, extra = cli.build_parser().parse_known_args(argv)
        if argv[0] == "build-index":  # the options it does not know go to Beam
            from tf_dualenc.indexing.build_index_pipeline import runner_args

            assert all(not flag.startswith("--") or flag.startswith("--runner") or "_" in flag for flag in extra), line
            runner_args(args, extra)
        elif extra:
            pytest.fail(f"{doc}: `{line}`: unrecognized arguments {extra}")
    except SystemExit:
        error = capsys.readouterr().err
        # Some flags open their file while parsing; the file is made by an earlier command of the same doc.
        if re.search(r"No such file or directory|no numeric version folder", error):
            pytest.skip(f"{doc}: needs a file an earlier command makes ({error.strip().splitlines()[-1]})")
        pytest.fail(f"{doc}: `{line}` does not parse: {error}")
    if argv[0] == "train":
        from tf_dualenc.cli.train import train_config

        config = train_config(args)
        for made_earlier in (config.data.split(",")[0] if config.data else None, config.distillation):
            if made_earlier and not pathlib.Path(made_earlier).exists():
                pytest.skip(f"{doc}: {made_earlier} is made by another command of the docs")
        config.validate()
    if argv[0] == "pipeline":
        from tf_dualenc.tfx.pipeline_config import DEFAULT_CONFIG, PipelineConfig

        config = PipelineConfig.from_file(args.config or DEFAULT_CONFIG, args.set)
        config.validate(check_paths=False)


SERVER_COMMANDS = _commands(".venv/bin/python -m tf_dualenc.serving.local_server ", inline=True)


def _exported_folders():
    """<export base>/<model name> of every `tf-dualenc export` the docs write, relative to the repository."""
    folders = set()
    for _, line in COMMANDS:
        argv = shlex.split(line)[1:]
        if argv[0] == "export":
            args, _ = cli.build_parser().parse_known_args(argv)
            folders.add(pathlib.Path(args.output_dir) / args.model_name)
    return folders


def test_the_docs_have_local_server_commands_to_check():
    assert {doc for doc, _ in SERVER_COMMANDS} >= {"serving.md"}


@pytest.mark.parametrize("doc,line", SERVER_COMMANDS, ids=[f"{d}:{i}" for i, (d, _) in enumerate(SERVER_COMMANDS)])
def test_doc_local_server_command_serves_what_the_docs_export(doc, line):
    """Run as written after the doc's exports, the server finds every model folder: a config's base_paths are folders
    of this machine (not the container's /models), the ones the docs' `tf-dualenc export` commands write."""
    from tf_dualenc.serving.local_server import build_parser, read_model_config

    args = build_parser().parse_args(shlex.split(line)[3:])
    models = read_model_config(str(REPO / args.model_config_file)) if args.model_config_file else {}
    models.update(item.split("=", 1) for item in args.model)
    exported = _exported_folders()
    for name, folder in models.items():
        folder = pathlib.Path(folder)
        relative = folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder
        assert relative in exported, f"{doc}: `{line}`: model {name!r} at {folder}, which no doc's `tf-dualenc export` writes"


class _Parsed(Exception):
    pass


def test_the_docs_have_benchmark_commands_to_check():
    assert len(BENCHMARK_COMMANDS) > 10 and {doc for doc, _ in BENCHMARK_COMMANDS} >= {"benchmarks.md"}


@pytest.mark.parametrize("doc,line", BENCHMARK_COMMANDS, ids=[f"{d}:{i}" for i, (d, _) in enumerate(BENCHMARK_COMMANDS)])
def test_doc_benchmark_command_parses(doc, line, monkeypatch, capsys):
    """Runs the script's main() up to its argument parsing (every script parses first, then works)."""
    import argparse
    import importlib.util

    argv = shlex.split(line)[1:]
    script = REPO / argv[0]
    assert script.is_file(), f"{doc}: `{line}` names a missing script"
    spec = importlib.util.spec_from_file_location(f"doc_benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(script.parent))
    spec.loader.exec_module(module)
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, args=None, namespace=None):
        parse(parser, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        module.main(argv[1:])
    except _Parsed:
        return
    except SystemExit:
        pytest.fail(f"{doc}: `{line}` does not parse: {capsys.readouterr().err}")
    pytest.fail(f"{doc}: `{line}`: {script.name} ran without parsing its arguments first")
