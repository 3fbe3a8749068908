"""Every flag of every `tf-dualenc` command (and of the parsers `build-index` and `serve` hand their options to) has
help text and shows its default, and one flag name has one meaning across commands: `--output` a file, `--output-dir`
a folder, `--top-k` the hits shown or returned, `--depth` the run depth. Old spellings stay as hidden aliases."""

import argparse

import pytest

from tf_dualenc import cli

# Defaults that say nothing worth showing.
TRIVIAL_DEFAULTS = (None, False, [], argparse.SUPPRESS)


def _walk(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, [*path, name])
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield " ".join(path), action


def _parsers():
    from tf_dualenc.indexing.build_index_pipeline import build_parser as build_index_parser
    from tf_dualenc.serving.local_server import build_parser as server_parser

    return [(cli.build_parser(), ["tf-dualenc"]), (build_index_parser(), ["tf-dualenc", "build-index"]),
            (server_parser(), ["tf-dualenc", "serve"])]


def _options():
    return [(command, action) for parser, path in _parsers() for command, action in _walk(parser, path)]


def _visible(action):
    return action.help is not argparse.SUPPRESS


def test_the_walk_sees_every_command_and_subcommand():
    commands = {command for command, _ in _options()}
    assert {"tf-dualenc evaluate", "tf-dualenc pipeline run", "tf-dualenc pipeline compile", "tf-dualenc build-index",
            "tf-dualenc serve", "tf-dualenc train-vocab"} <= commands


def test_every_option_has_help_and_shows_a_non_trivial_default():
    missing, no_default = [], []
    for command, action in _options():
        if not _visible(action):
            continue
        flag = "/".join(action.option_strings)
        if not (action.help or "").strip():
            missing.append(f"{command} {flag}")
        elif (action.default not in TRIVIAL_DEFAULTS and not isinstance(action, argparse._StoreTrueAction)
              and "default" not in action.help):
            no_default.append(f"{command} {flag} (default {action.default!r})")
    assert missing == [], "options without help"
    assert no_default == [], "options whose help does not show their default: add (default: %(default)s)"


# One name, one meaning (tf_dualenc/cli/_flags.py): the metavar each visible flag of that name shows, and a word its
# help must hold.
VOCABULARY = {"--output": ("FILE", "file"), "--output-dir": ("DIR", ""), "--top-k": ("K", "hits"), "--depth": ("N", "run depth")}
# Old spellings: hidden wherever they remain, each an alias of a new name (the same destination).
OLD_SPELLINGS = {"--k": {"--top-k", "--depth"}, "--export-base": {"--output-dir"}, "--output": {"--output-dir"}}


def test_one_flag_name_has_one_meaning_across_commands():
    wrong = []
    for command, action in _options():
        if not _visible(action):
            continue
        for flag in action.option_strings:
            if flag in VOCABULARY:
                metavar, word = VOCABULARY[flag]
                if action.metavar != metavar or word not in action.help:
                    wrong.append(f"{command} {flag}: metavar {action.metavar!r} (want {metavar!r}), help {action.help!r}")
            if flag in ("--k", "--export-base"):
                wrong.append(f"{command} {flag}: an old spelling, shown")
    assert wrong == []


def test_old_spellings_are_hidden_aliases_of_the_new_names():
    by_command = {}
    for command, action in _options():
        by_command.setdefault(command, []).append(action)
    aliases = []
    for command, actions in by_command.items():
        visible = {flag: action.dest for action in actions if _visible(action) for flag in action.option_strings}
        for action in actions:
            if _visible(action) or action.dest == "threads":
                continue
            for flag in action.option_strings:
                assert flag in OLD_SPELLINGS, f"{command} {flag}: hidden, but not a known old spelling"
                assert any(visible.get(new) == action.dest for new in OLD_SPELLINGS[flag]), f"{command} {flag}"
                aliases.append(f"{command} {flag}")
    assert sorted(aliases) == ["tf-dualenc build-index --output", "tf-dualenc evaluate --k", "tf-dualenc export --export-base",
                               "tf-dualenc pipeline run --k", "tf-dualenc search --k"]


@pytest.mark.parametrize("old,new,dest,value", [
    (["evaluate", "--model", "m", "--data", "d", "--output-dir", "o", "--k", "50"], ["--depth", "50"], "depth", 50),
    (["pipeline", "run", "--k", "3"], ["--top-k", "3"], "top_k", 3),
    (["search", "--index", "i", "--query", "q", "--k", "3"], ["--top-k", "3"], "top_k", 3),
    (["export", "--model", "m", "--export-base", "exports"], ["--output-dir", "exports"], "output_dir", "exports"),
])
def test_existing_scripts_keep_working_and_both_spellings_at_once_are_refused(old, new, dest, value, capsys):
    parser = cli.build_parser()
    assert getattr(parser.parse_args(old), dest) == value
    with pytest.raises(SystemExit):
        parser.parse_args([*old, *new])
    assert "not allowed with" in capsys.readouterr().err


def test_build_index_takes_output_dir_and_its_old_spelling(capsys):
    from tf_dualenc.indexing.build_index_pipeline import parse_args

    for flag in ("--output-dir", "--output"):
        args, _ = parse_args(["--corpus", "c.jsonl", "--model", "m", flag, "indexes/x"])
        assert args.output_dir == "indexes/x"
    with pytest.raises(SystemExit):
        parse_args(["--corpus", "c.jsonl", "--model", "m"])
    assert "--output-dir is required" in capsys.readouterr().err


def test_the_docs_use_the_new_spellings():
    from test_docs_commands import COMMANDS

    old = [f"{doc}: {line}" for doc, line in COMMANDS for flag in line.split()
           if flag in ("--k", "--export-base") or (flag == "--output" and " build-index " in f" {line} ")]
    assert old == []


@pytest.mark.parametrize("argv,progress", [(["train"], True), (["train", "--quiet"], False), (["--quiet", "train"], False)])
def test_quiet_turns_the_training_progress_bar_off(argv, progress, monkeypatch):
    import tf_dualenc.training

    class Config:
        def with_overrides(self, overrides):
            return self

        def validate(self):
            return self

    calls = []
    monkeypatch.setattr(tf_dualenc.training, "TrainConfig", Config)
    monkeypatch.setattr(tf_dualenc.training, "train", lambda config, **kwargs: calls.append(kwargs))
    assert cli.main(argv) == 0
    assert calls == [{"stop_after_steps": None, "progress": progress}]


def test_verbose_and_quiet_are_taken_before_and_after_the_command():
    parser = cli.build_parser()
    for argv in (["--verbose", "pipeline", "run"], ["pipeline", "run", "--verbose"], ["evaluate", "--model", "m", "--data", "d",
                                                                                       "--output-dir", "o", "--verbose"]):
        assert parser.parse_args(argv).verbose is True
    assert parser.parse_args(["pipeline", "run"]).verbose is False
    assert parser.parse_args(["search", "--index", "i", "--query", "q", "--quiet"]).quiet is True
