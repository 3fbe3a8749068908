"""Every flag of every `tf-dualenc` command (and of the parsers `build-index` and `serve` hand their options to) has
help text and shows its default."""

import argparse

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
