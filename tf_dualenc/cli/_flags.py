"""The command line's flag vocabulary: one name, one meaning across commands (tests/test_cli_flags.py checks it).

  --output FILE     a file the command writes          --output-dir DIR   a folder the command writes
  --top-k K         hits shown or returned per query   --depth N          the run depth: documents retrieved per query

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
