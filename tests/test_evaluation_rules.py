"""One set of evaluation rules per data set (`ignore_identical_ids`, `lenient`), given once and honoured by every
consumer of a split: `evaluate` (plain, hybrid, its validation split), training's validation, mining."""

import json

import pytest

from test_models import tiny
from tf_dualenc import cli
from tf_dualenc.data import load_beir
from tf_dualenc.data.evaluation_rules import RULES_FILE, resolve_rules

TOPICS = ["school uniforms", "nuclear power", "animal testing", "space exploration", "minimum wage", "social media",
          "online voting", "remote work", "plastic bans", "public transport", "organic farming", "video games"]


def write_argument_beir(folder, *, rules=None):
    """An ArguAna-like set: every query is an argument that is also a document of the corpus (same id); its relevant
    document is the counter-argument. One qrels row of the train split points at a document the corpus lacks."""
    (folder / "qrels").mkdir(parents=True)
    corpus, queries = [], []
    for i, topic in enumerate(TOPICS):
        argument = f"{topic} should be supported because {topic} helps people and the economy grow"
        counter = f"{topic} should not be supported: the claim that {topic} helps people ignores its costs"
        corpus += [{"_id": f"a{i}", "title": "", "text": argument}, {"_id": f"c{i}", "title": "", "text": counter}]
        queries.append({"_id": f"a{i}", "text": argument})
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    train, test = range(0, 8), range(8, len(TOPICS))
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"a{i}\tc{i}\t1\n" for i in train)
                                                + "a0\tmissing-document\t1\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"a{i}\tc{i}\t1\n" for i in test)
                                               + "a8\tmissing-document\t1\n")
    if rules is not None:
        (folder / RULES_FILE).write_text(json.dumps(rules))
    return folder


@pytest.fixture(scope="module")
def arguments(tmp_path_factory, t5_vocabulary):
    root = tmp_path_factory.mktemp("arguments")
    data = write_argument_beir(root / "flags")
    ruled = write_argument_beir(root / "ruled", rules={"ignore_identical_ids": True, "lenient": True})
    model = tiny(t5_vocabulary, "ade_spl")
    model.save(root / "model.keras")
    return data, ruled, str(root / "model.keras")


def test_rules_come_from_the_folder_and_a_given_rule_wins(tmp_path, arguments):
    data, ruled, _ = arguments
    assert resolve_rules(str(data)).ignore_identical_ids is False
    assert resolve_rules(str(ruled)).to_dict() == {"ignore_identical_ids": True, "lenient": True, "title_separator": " "}
    assert resolve_rules(str(ruled), ignore_identical_ids=False).ignore_identical_ids is False
    (tmp_path / RULES_FILE).write_text(json.dumps({"ignore_identical_id": True}))
    with pytest.raises(ValueError, match=r"beir.json: unknown key\(s\) \['ignore_identical_id'\]; valid keys: \['ignore_identical_ids'"):
        resolve_rules(str(tmp_path))
    (tmp_path / RULES_FILE).write_text(json.dumps({"lenient": "yes"}))
    with pytest.raises(ValueError, match="beir.json: lenient='yes' must be true or false"):
        resolve_rules(str(tmp_path))


def test_mining_never_returns_the_querys_own_document(arguments):
    from tf_dualenc.mining.hard_negatives import mine_hard_negatives

    data, _, _ = arguments
    dataset = load_beir(str(data), "test", lenient=True)
    unruled = mine_hard_negatives(dataset, retriever="bm25", depth=5)
    assert all(negatives[0][0] == query for query, negatives in unruled.items())  # the query's own text ranks first
    ruled = mine_hard_negatives(dataset, retriever="bm25", depth=5, ignore_identical_ids=True)
    assert ruled and all(query not in [d for d, _ in negatives] for query, negatives in ruled.items())


def _evaluate(capsys, *argv):
    capsys.readouterr()
    assert cli.main(["evaluate", *argv, "--json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def test_hybrid_rows_equal_plain_evaluate_under_the_same_rules(arguments, tmp_path, capsys):
    data, ruled, model = arguments
    flags = ["--ignore-identical-ids", "--lenient"]
    for folder, given in ((data, flags), (ruled, [])):  # the rules given as flags, or carried by the folder's beir.json
        common = ["--data", str(folder), "--depth", "10", "--measures", "NDCG@10,P@1", *given]
        hybrid = _evaluate(capsys, "--model", model, "--hybrid", "rrf", "--output-dir", str(tmp_path / "h"), *common)
        dense = _evaluate(capsys, "--model", model, "--output-dir", str(tmp_path / "d"), *common)
        bm25 = _evaluate(capsys, "--model", "bm25", "--output-dir", str(tmp_path / "b"), *common)
        assert hybrid["components"]["dense"] == pytest.approx(dense["metrics"], abs=1e-9)
        assert hybrid["components"]["bm25"] == pytest.approx(bm25["metrics"], abs=1e-9)
        assert hybrid["rules"] == {"ignore_identical_ids": True, "lenient": True, "title_separator": " "}
        assert dense["rules"]["ignore_identical_ids"] is True
        # The query's own document no longer takes the first place: BM25 ranks the counter-argument first.
        assert bm25["metrics"]["P@1"] > 0.5
        run = (tmp_path / "h" / "run.trec").read_text().split("\n")
        assert not any(line.split()[0] == line.split()[2] for line in run if line)


def test_the_hybrid_weight_is_chosen_on_a_lenient_validation_split(arguments, tmp_path, capsys):
    data, ruled, model = arguments
    # The validation queries come from the train split, whose dangling qrels row `--lenient` skips there too.
    report = _evaluate(capsys, "--model", model, "--data", str(data), "--hybrid", "interpolate", "--ignore-identical-ids",
                       "--lenient", "--validation-fraction", "0.5", "--output-dir", str(tmp_path / "i"))
    assert report["hybrid"]["chosen_on"]["queries"] > 0 and 0.0 <= report["hybrid"]["weight"] <= 1.0
    by_file = _evaluate(capsys, "--model", model, "--data", str(ruled), "--hybrid", "interpolate", "--validation-fraction", "0.5",
                        "--output-dir", str(tmp_path / "j"))
    assert by_file["metrics"] == pytest.approx(report["metrics"], abs=1e-9)
    # Without the rule, the dangling row is an error naming the file (the folder carries no beir.json).
    assert cli.main(["evaluate", "--model", model, "--data", str(data), "--hybrid", "interpolate", "--validation-fraction", "0.5",
                     "--output-dir", str(tmp_path / "k"), "--quiet"]) == 2
    assert "qrels/test.tsv: query 'a8' points at document id(s) ['missing-document'] not in" in capsys.readouterr().err


def test_training_validation_agrees_with_evaluate_under_the_folders_rules(arguments, tmp_path, t5_vocabulary):
    from tf_dualenc.data.validation_split import load_validation
    from tf_dualenc.evaluation import evaluate_retrieval
    from tf_dualenc.loading import load_model
    from tf_dualenc.training import TrainConfig, train

    _, ruled, _ = arguments
    config = TrainConfig(data=str(ruled), output_dir=str(tmp_path / "run"), model="t5", size="tiny", vocabulary=t5_vocabulary,
                         architecture="ade_spl", query_length=16, document_length=24, batch_size=4, steps=2, warmup_steps=0,
                         learning_rate=1e-3, validation_fraction=0.5, checkpoint_every=100, hard_negatives="bm25",
                         hard_negatives_depth=3, hard_negatives_skip_top=0, num_negatives=1, dropout=0.0)
    summary, _ = train(config, print_fn=lambda *a: None, progress=False)
    assert summary["rules"] == {"ignore_identical_ids": True, "lenient": True, "title_separator": " "}
    validation = load_validation(str(ruled), fraction=0.5, lenient=True)
    report = evaluate_retrieval(validation, model=load_model(summary["best_model"]), measures=("NDCG@10", "P@1"),
                                ignore_identical_ids=True)
    assert summary["validation"]["best_value"] == pytest.approx(report["metrics"]["NDCG@10"], abs=1e-4)
    # Mining honoured the rule too: no training list has the query's own document as a negative.
    mined = [json.loads(line) for path in (tmp_path / "run").glob("hard_negatives-*.jsonl") for line in path.open()]
    assert mined and all(record["query_id"] not in record["negative_ids"] for record in mined)


@pytest.mark.slow
def test_the_pipeline_carries_the_folders_rules_to_every_split_and_run(arguments, tmp_path, t5_vocabulary):
    import os

    from pipeline_data import tiny_pipeline_config
    from tf_dualenc.tfx.run_pipeline import PipelineError, pipeline_outputs, run_pipeline

    _, ruled, _ = arguments
    config = tiny_pipeline_config(tmp_path / "root", str(ruled), t5_vocabulary, validation_fraction=0.5, train_steps=2)
    config = config.with_overrides(["train.batch_size=2"])  # four training pairs
    try:
        run_pipeline(config, print_fn=lambda *a: None)
    except PipelineError:
        pass  # whether two steps of a tiny T5 get blessed does not matter here
    outputs = pipeline_outputs(config.resolved(print_fn=lambda *a: None))
    examples = outputs["RetrievalExampleGen"]
    for folder in (examples["validation_dataset"]["uri"], examples["eval_dataset"]["uri"],
                   os.path.join(examples["examples"]["uri"], "beir")):
        assert resolve_rules(folder).to_dict() == {"ignore_identical_ids": True, "lenient": True, "title_separator": " "}
    evaluation = outputs["RetrievalEvaluator"]["evaluation"]["uri"]
    assert json.loads(open(os.path.join(evaluation, "evaluation.json")).read())["rules"]["ignore_identical_ids"] is True
    runs = [os.path.join(root, name) for root, _, names in os.walk(evaluation) for name in names if name.endswith(".trec")]
    assert runs and not any(line.split()[0] == line.split()[2] for path in runs for line in open(path) if line.strip())
