"""The `tf-dualenc` command line. Heavy modules load inside each command, so `--help` stays instant.

One module per command, each with `add_parser(subparsers)` and `run(args)`: it parses arguments, calls the library,
prints, and returns its result (a dict, which `--json` prints instead of the text: `_flags.add_json`), an exit code, or
both as (result, exit code). A command that runs on (`serve`) prints its result when it has it, with `args.print_json`.
Models load through `tf_dualenc.loading`, never from here.
"""

import argparse
import contextlib
import json
import sys

from tf_dualenc.cli import (analyze, build_index, demo, doctor, evaluate, export, mine_negatives, pipeline, search, serve,
                            train, train_joint, train_reranker, train_vocab)

# The order of `tf-dualenc --help`.
COMMANDS = (doctor, demo, train, evaluate, export, build_index, analyze, serve, search, pipeline, mine_negatives,
            train_reranker, train_joint, train_vocab)


THREADS_HELP = ("TensorFlow's intra-op and inter-op threads (default: the CPUs this process may use: its affinity, capped by "
                "a cgroup CPU quota; TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS win over that default)")
VERBOSE_HELP = ("show TensorFlow's C++ log lines, INFO and up (default: none, not even its ERROR-level notices, unless "
                "TF_CPP_MIN_LOG_LEVEL is set)")
QUIET_HELP = "no progress output (training's progress bar, the progress lines of corpus encodings on stderr)"


def build_parser():
    from tf_dualenc.threads import check_threads

    parser = argparse.ArgumentParser(prog="tf-dualenc", description=__doc__.split(".")[0])
    parser.add_argument("--threads", type=check_threads, default=None, metavar="N", help=THREADS_HELP)
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    # Every command takes them after its name too (`tf-dualenc evaluate --threads 2 ...`, `tf-dualenc pipeline run --threads
    # 2`); SUPPRESS keeps a value given before the name. A command's own --verbose (pipeline run's) says more there.
    for command_parser in _command_parsers(sub):
        command_parser.add_argument("--threads", type=check_threads, default=argparse.SUPPRESS, metavar="N", help=THREADS_HELP)
        for flag, help_text in (("--verbose", VERBOSE_HELP), ("--quiet", QUIET_HELP)):
            if flag not in command_parser._option_string_actions:
                command_parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
    return parser


def _command_parsers(subparsers):
    """Each command's parser and, for a command with subcommands (`pipeline run|compile`), theirs."""
    for command_parser in subparsers.choices.values():
        yield command_parser
        for action in command_parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from _command_parsers(action)


def main(argv=None):
    parser = build_parser()
    # build-index hands the options it does not know to Beam (its pipeline options).
    args, extra = parser.parse_known_args(argv)
    if args.command == "build-index":
        args.pipeline_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    import tf_dualenc  # (environment shims before any TensorFlow import, warning filters)

    # TensorFlow's C++ log lines off (even its ERROR-level notices), all of them with --verbose; before any command imports
    # TensorFlow, and never over the user's own TF_CPP_MIN_LOG_LEVEL.
    tf_dualenc.quiet_tensorflow_logs(verbose=args.verbose)

    from tf_dualenc.data.beir_download import DownloadError
    from tf_dualenc.extras import explain_missing_module
    from tf_dualenc.serving.client import ServingError
    from tf_dualenc.threads import configure_threads

    try:
        configure_threads(args.threads)  # before the command runs any TensorFlow op: pools are sized once
        if not getattr(args, "json", False):
            return _result_and_code(args.func(args))[1]
        # --json: stdout holds the result alone; what the command and the library print meanwhile goes to stderr.
        stdout = sys.stdout
        args.print_json = lambda result: _print_json(result, stdout)
        with contextlib.redirect_stdout(sys.stderr):
            result, code = _result_and_code(args.func(args))
        if result is not None:
            args.print_json(result)
        return code
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, FloatingPointError, ServingError, DownloadError) as error:
        # An optional module missing where no entry point asked for it first still names its extra.
        error = explain_missing_module(error, feature=f"tf-dualenc {args.command}")
        print(f"tf-dualenc {args.command}: error: {error}", file=sys.stderr)
        return 2


def _result_and_code(outcome):
    """(result or None, exit code) of what a command's `run` returned: a result (exit code 0), an exit code, or both."""
    if isinstance(outcome, tuple):
        return outcome
    return (outcome, 0) if isinstance(outcome, (dict, list)) else (None, outcome)


def _print_json(result, stream):
    """A dict as one JSON line; a list as one line per element (JSON lines)."""
    for item in result if isinstance(result, list) else [result]:
        print(json.dumps(item, ensure_ascii=False, default=_json_value), file=stream, flush=True)


def _json_value(value):
    """What `--json` prints for a value JSON has no type for: NumPy scalars and arrays as numbers, anything else
    (paths, ...) as its text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
