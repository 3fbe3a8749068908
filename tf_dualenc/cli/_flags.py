"""The command line's flag vocabulary: one name, one meaning across commands (tests/test_cli_flags.py checks it).

  --output FILE     a file the command writes          --output-dir DIR   a folder the command writes
  --top-k K         hits shown or returned per query   --depth N          the run depth: documents retrieved per query
  --json            the result as JSON on stdout (`add_json`): every command that prints a result takes it

A renamed flag keeps its old spelling as a hidden alias (`add_renamed`), so existing scripts still run.
"""

import argparse


def add_renamed(parser, new, old, **kwargs):
    """Adds flag `new`, and `old` as a hidden alias of it (same destination, help suppressed); giving both is an error.
    `required=True` requires one of the two. Returns `new`'s action."""
    group = parser.add_mutually_exclusive_group(required=kwargs.pop("required", False))
    action = group.add_argument(new, **kwargs)
    alias = {key: kwargs[key] for key in ("type", "choices") if key in kwargs}
    group.add_argument(old, dest=action.dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **alias)
    return action


JSON_HELP = ("print {what} on stdout as {form} instead of the text; what the command would print there meanwhile (its "
             "text, training logs) goes to stderr, as progress lines always do")


def add_json(parser, what, form="one JSON object"):
    """Adds `--json`. The command's `run` returns its result, a dict (a list: JSON lines, one element each), which the
    command line prints (`tf_dualenc.cli.main`); without --json the result is not printed."""
    return parser.add_argument("--json", action="store_true", help=JSON_HELP.format(what=what, form=form))
