"""Every flag of every `tf-dualenc` command has help text and shows its default, `build-index --help` and `serve --help`
list their own flags beside the Beam job's and the local server's, and one flag name has one meaning across commands: `--output` a file, `--output-dir`
a folder, `--top-k` the hits shown or returned, `--depth` the run depth. Old spellings stay as hidden aliases."""

import argparse
import json
import re

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
    # build-index's and serve's parsers hold the Beam job's and the local server's options themselves
    # (test_build_index_and_serve_help_list_their_own_flags_and_the_jobs).
    return [(cli.build_parser(), ["tf-dualenc"])]


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


@pytest.mark.parametrize("command,job_parser,shown_helps", [
    ("build-index", "tf_dualenc.indexing.build_index_pipeline", ("most documents RunInference batches (default: 64)",
                                                                 "documents (default: 20000)", "Beam pipeline option",
                                                                 "how to read --corpus; auto: by file name (default: auto)")),
    ("serve", "tf_dualenc.serving.local_server", ("REST API port; 0 picks a free one (default: 8501)",
                                                  "more is INVALID_ARGUMENT (default: 512)")),
])
def test_build_index_and_serve_help_list_their_own_flags_and_the_jobs(command, job_parser, shown_helps, capsys):
    """`tf-dualenc build-index --help` and `serve --help` used to print the Beam job's and the local server's help alone:
    without the command line's flags (--json, --quiet, --threads, --verbose), once the job's heavy modules had loaded."""
    import importlib

    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: tf-dualenc {command} ")
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    job = {flag for action in importlib.import_module(job_parser).build_parser()._actions if action.help is not argparse.SUPPRESS
           for flag in action.option_strings}
    assert job - {"-h"} <= shown and {"--json", "--quiet", "--threads", "--verbose", "--help"} <= shown, sorted(shown)
    words = " ".join(text.split())
    for shown_help in (*shown_helps, "on stdout as one JSON object"):
        assert shown_help in words


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


class _Config:
    """A stand-in for TrainConfig: the command line's `train` without a model."""

    @classmethod
    def from_dict(cls, values, source="config"):
        return cls()

    def with_overrides(self, overrides):
        return self

    def validate(self):
        return self


@pytest.mark.parametrize("argv,progress", [(["train"], True), (["train", "--quiet"], False), (["--quiet", "train"], False)])
def test_quiet_turns_the_training_progress_bar_off(argv, progress, monkeypatch):
    import tf_dualenc.training

    calls = []
    monkeypatch.setattr(tf_dualenc.training, "TrainConfig", _Config)
    monkeypatch.setattr(tf_dualenc.training, "train", lambda config, **kwargs: (calls.append(kwargs) or {}, None))
    assert cli.main(argv) == 0
    assert calls == [{"stop_after_steps": None, "progress": progress}]


def test_verbose_and_quiet_are_taken_before_and_after_the_command():
    parser = cli.build_parser()
    for argv in (["--verbose", "pipeline", "run"], ["pipeline", "run", "--verbose"], ["evaluate", "--model", "m", "--data", "d",
                                                                                       "--output-dir", "o", "--verbose"]):
        assert parser.parse_args(argv).verbose is True
    assert parser.parse_args(["pipeline", "run"]).verbose is False
    assert parser.parse_args(["search", "--index", "i", "--query", "q", "--quiet"]).quiet is True


# --json (tf_dualenc/cli/_flags.add_json): every command that prints a result takes it, with the one help text.
JSON_COMMANDS = {"evaluate", "search", "build-index", "export", "train", "mine-negatives", "analyze", "train-reranker", "train-joint",
                 "train-vocab", "pipeline run", "pipeline compile", "demo", "doctor", "serve"}


def test_every_command_that_prints_a_result_takes_json():
    helps = {command.removeprefix("tf-dualenc "): action.help for command, action in _walk(cli.build_parser(), ["tf-dualenc"])
             if "--json" in action.option_strings}
    assert set(helps) == JSON_COMMANDS
    for command, text in helps.items():
        assert text.startswith("print ") and " on stdout as " in text and "JSON" in text and "instead of the text" in text, command


def _json_output(argv, capsys):
    """Runs a command with --json: stdout must hold JSON alone, one object a line; returns (the objects, stderr)."""
    assert cli.main([*argv, "--json"]) == 0
    out, err = capsys.readouterr()
    return [json.loads(line) for line in out.splitlines()], err


def test_evaluate_mine_negatives_and_search_print_json(tmp_path, capsys, monkeypatch):
    import numpy as np

    from test_beir import write_beir
    from tf_dualenc.cli import search
    from tf_dualenc.indexing import build_index

    data = write_beir(tmp_path / "data")
    [report], err = _json_output(["evaluate", "--model", "bm25", "--data", str(data), "--output-dir", str(tmp_path / "out"),
                                  "--depth", "3", "--measures", "P@1,MRR@3"], capsys)
    assert report["metrics"] == {"P@1": 1.0, "MRR@3": 1.0} and report == json.loads((tmp_path / "out" / "report.json").read_text())
    assert "P@1" in err and "wrote" in err  # the text, on stderr
    corpus = [{"_id": "d1", "text": "Paris is the capital of France."}, {"_id": "d2", "text": "Water boils at 100 degrees."},
              {"_id": "d3", "text": "Lyon is a city of France, not its capital."},
              {"_id": "d4", "text": "The boiling point of water falls with altitude."}]
    mining = write_beir(tmp_path / "mining", corpus=corpus, queries=[{"_id": "q1", "text": "capital of france"},
                                                                    {"_id": "q2", "text": "boiling point of water"}],
                        qrels=["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td2\t1"])
    [mined], _ = _json_output(["mine-negatives", "--data", str(mining), "--split", "test", "--output", str(tmp_path / "lists.jsonl"),
                               "--depth", "3"], capsys)
    assert mined["output"] == str(tmp_path / "lists.jsonl") and mined["lists"] >= 1 and mined["retriever"] == "bm25"
    vectors = np.eye(3, 4, dtype=np.float32)
    build_index(((f"d{i}", f"text {i}", v) for i, v in enumerate(vectors)), tmp_path / "index", dimension=4, count=3,
                print_fn=lambda *_: None)
    monkeypatch.setattr(search, "_query_encoder", lambda args, index, client: lambda texts: vectors[: len(texts)])
    lines, _ = _json_output(["search", "--index", str(tmp_path / "index"), "--query", "a", "--query", "b", "--top-k", "2"], capsys)
    assert [(line["query"], [hit["id"] for hit in line["hits"]][0]) for line in lines] == [("a", "d0"), ("b", "d1")]


class _Saved:
    def save(self, path):
        with open(path, "w") as f:
            f.write("model")


def test_training_commands_print_json_and_send_their_logs_to_stderr(tmp_path, capsys, monkeypatch):
    import tf_dualenc.models
    import tf_dualenc.training
    import tf_dualenc.vocabulary
    from tf_dualenc.cli import train_joint, train_reranker
    from tf_dualenc.reranking import listwise_training

    def fake_train(config, **kwargs):
        print("step 1/1 loss 0.5")  # the trainer's log: stdout without --json
        return {"finished": True, "last_loss": 0.5}, None

    monkeypatch.setattr(tf_dualenc.training, "TrainConfig", _Config)
    monkeypatch.setattr(tf_dualenc.training, "train", fake_train)
    [summary], err = _json_output(["train", "--quiet"], capsys)
    assert summary == {"finished": True, "last_loss": 0.5} and "step 1/1 loss 0.5" in err
    monkeypatch.setattr(tf_dualenc.vocabulary, "train_sentencepiece_vocabulary", lambda inputs, output, **kwargs: output)
    [vocabulary], _ = _json_output(["train-vocab", "--input", "c.jsonl", "--output", str(tmp_path / "v.model")], capsys)
    assert vocabulary == {"vocabulary": str(tmp_path / "v.model")}
    for module in (train_reranker, train_joint):
        monkeypatch.setattr(module, "training_lists", lambda args: ([["list"]] * 3, None))
    monkeypatch.setattr(tf_dualenc.models, "build_bert_cross_encoder", lambda *args, **kwargs: _Saved())
    monkeypatch.setattr(listwise_training, "train_cross_encoder", lambda model, lists, **kwargs: {"loss": [0.7, 0.6]})
    [reranker], _ = _json_output(["train-reranker", "--data", "lists.jsonl", "--output-dir", str(tmp_path / "reranker")], capsys)
    assert reranker["model"] == str(tmp_path / "reranker" / "reranker.keras") and reranker["lists"] == 3 and reranker["loss"] == [0.7, 0.6]
    monkeypatch.setattr(train_joint, "load_retrieval_model", lambda *args: _Saved())
    monkeypatch.setattr(train_joint, "load_cross_encoder", lambda path: _Saved())
    monkeypatch.setattr(listwise_training, "train_jointly", lambda dual_encoder, reranker, lists, **kwargs: {"kl": [0.1]})
    [joint], _ = _json_output(["train-joint", "--data", "lists.jsonl", "--output-dir", str(tmp_path / "joint"), "--dual-encoder",
                               "d.keras", "--reranker", "r.keras"], capsys)
    assert joint["models"] == {"dual_encoder": str(tmp_path / "joint" / "dual_encoder.keras"),
                               "reranker": str(tmp_path / "joint" / "reranker.keras")} and joint["kl"] == [0.1]


def test_analyze_export_and_build_index_print_json(tmp_path, capsys, monkeypatch):
    import tf_dualenc.analysis
    import tf_dualenc.export
    from test_beir import write_beir
    from tf_dualenc.cli import analyze, export
    from tf_dualenc.export import ExportResult
    from tf_dualenc.indexing import build_index_pipeline

    monkeypatch.setattr(analyze, "load_retrieval_model", lambda *args: None)
    monkeypatch.setattr(tf_dualenc.analysis, "analyze_model",
                        lambda name, model, dataset, **kwargs: argparse.Namespace(name=name, summary={"top1_cosine_mean": 0.25}))
    monkeypatch.setattr(tf_dualenc.analysis, "write_report", lambda analyses, output_dir, **kwargs: {"report": "r.html", "images": []})
    [analysis], _ = _json_output(["analyze", "--model", "m=m.keras", "--data", str(write_beir(tmp_path / "data")), "--output-dir",
                                  str(tmp_path / "analysis")], capsys)
    assert analysis["models"] == {"m": {"top1_cosine_mean": 0.25}} and analysis["report"] == "r.html"
    manifest = {"kind": "encoder", "signatures": ["encode_document", "encode_query", "serving_default"], "query_sequence_length": 64,
                "document_sequence_length": 256, "op_audit": {"non_core_ops": {}, "stock_tf_serving_compatible": True}}
    monkeypatch.setattr(export, "load_retrieval_model", lambda *args: None)
    monkeypatch.setattr(tf_dualenc.export, "export_encoder", lambda model, base, name, version, **kwargs: ExportResult(
        f"{base}/{name}/1", 1, manifest))
    [exported], err = _json_output(["export", "--model", "m", "--output-dir", str(tmp_path / "exports")], capsys)
    assert exported == {"path": f"{tmp_path}/exports/dual_encoder/1", "version": 1, "manifest": manifest}
    assert "token budgets baked in: queries 64 tokens, documents 256 tokens" in err
    calls = []

    def fake_build(args, pipeline_args, progress):
        calls.append(((args.corpus, args.model, args.output_dir, args.method), pipeline_args, progress))
        print("index: built")  # the job's own line: stdout without --json
        return {"count": 3, "dimension": 4}

    monkeypatch.setattr(build_index_pipeline, "run_parsed", fake_build)
    [manifest], err = _json_output(["build-index", "--corpus", "c.jsonl", "--model", "e", "--output-dir", "i", "--quiet",
                                    "--runner", "DirectRunner"], capsys)
    assert manifest == {"count": 3, "dimension": 4} and "index: built" in err
    # The job's options parsed by the command; Beam's handed over as given; --json and --quiet are the command line's.
    assert calls == [((["c.jsonl"], "e", "i", "auto"), ["--runner", "DirectRunner"], False)]


def test_demo_and_doctor_print_json(tmp_path, capsys, monkeypatch):
    import tf_dualenc.demo
    from tf_dualenc import doctor

    def fake_demo(output_dir, steps, seed, vocabulary):
        print("trained 2 steps")  # the demo's text: stdout without --json
        return {"model": {"path": f"{output_dir}/model.keras"}, "training": {"steps": steps}, "reload_max_abs_diff": 0.0}

    monkeypatch.setattr(tf_dualenc.demo, "run", fake_demo)
    [report], err = _json_output(["demo", "--output-dir", str(tmp_path / "demo"), "--steps", "2"], capsys)
    assert report == {"model": {"path": f"{tmp_path}/demo/model.keras"}, "training": {"steps": 2}, "reload_max_abs_diff": 0.0}
    assert "trained 2 steps" in err
    # doctor: every pin, the environment, every check; a failing check is in the JSON and still exits 1.
    monkeypatch.setattr(doctor, "PINNED", {"numpy": doctor.installed_version("numpy")[1]})
    monkeypatch.setattr(doctor, "CHECKS", (("fine", lambda: "loads", None), ("broken", lambda: 1 / 0, None)))
    assert cli.main(["doctor", "--json"]) == 1
    out, err = capsys.readouterr()
    [report] = [json.loads(line) for line in out.splitlines()]
    assert report["ok"] is False and report["packages"] == [{"name": "numpy", "installed": doctor.PINNED["numpy"],
                                                            "pinned": doctor.PINNED["numpy"], "status": "ok"}]
    assert set(report["environment"]) == set(doctor.ENVIRONMENT_NOTES)
    assert [(c["name"], c["status"], c["detail"]) for c in report["checks"]] == [
        ("fine", "ok", "loads"), ("broken", "failed", "ZeroDivisionError: division by zero")]
    assert "Some checks FAILED" in err
    monkeypatch.setattr(doctor, "CHECKS", (("fine", lambda: "loads", None),))
    [report], _ = _json_output(["doctor"], capsys)
    assert report["ok"] is True
