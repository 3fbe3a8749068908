import json

import numpy as np
import pytest

from tf_dualenc import cli
from tf_dualenc.data import DataError
from tf_dualenc.data.pairs import load_training_pairs, read_pair_file
from tf_dualenc.training import TrainConfig, train
from tf_dualenc.training.input_pipeline import batches, epoch_batches
from test_models import PAIRS


@pytest.fixture
def pair_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    with open(path, "w") as f:
        for i, (q, d) in enumerate(PAIRS * 2):
            # The second copy repeats every document id: no-duplicates batching must keep them apart.
            f.write(json.dumps({"query_id": f"q{i}", "query": q, "document_id": f"d{i % len(PAIRS)}", "document": d}) + "\n")
    return path


def tiny_config(data, output_dir, vocabulary, **overrides):
    values = dict(
        data=str(data), model="t5", size="tiny", vocabulary=vocabulary, query_length=12, document_length=20,
        batch_size=4, steps=6, checkpoint_every=3, learning_rate=1e-2, dropout=0.0, output_dir=str(output_dir), log_every=1,
    )
    values.update(overrides)
    return TrainConfig(**values)


def test_epoch_batches_are_deterministic_full_and_duplicate_free():
    qids = [f"q{i}" for i in range(20)]
    dids = [f"d{i % 7}" for i in range(20)]
    a = epoch_batches(20, 4, seed=3, epoch=0, query_ids=qids, document_ids=dids)
    b = epoch_batches(20, 4, seed=3, epoch=0, query_ids=qids, document_ids=dids)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert a and all(len(batch) == 4 for batch in a)
    for batch in a:
        assert len({dids[i] for i in batch}) == 4 and len({qids[i] for i in batch}) == 4
    used = np.concatenate(a)
    assert len(set(used.tolist())) == len(used)  # each pair at most once per epoch
    other_epoch = epoch_batches(20, 4, seed=3, epoch=1, query_ids=qids, document_ids=dids)
    assert [x.tolist() for x in other_epoch] != [x.tolist() for x in a]
    plain = epoch_batches(10, 4, seed=0, epoch=0)
    assert len(plain) == 2  # drop_remainder


def test_batch_stream_resumes_at_any_step():
    stream = batches(10, 3, seed=1)
    first = [next(stream).tolist() for _ in range(8)]
    for start in (0, 2, 3, 5, 7):
        resumed = batches(10, 3, seed=1, start_step=start)
        assert [next(resumed).tolist() for _ in range(8 - start)] == first[start:]


def test_batch_stream_explains_impossible_batches():
    with pytest.raises(ValueError, match=r"Not one full batch of 3 pairs.*without repeating"):
        next(batches(4, 3, seed=0, query_ids=["a", "a", "a", "a"], document_ids=None))


def test_pair_file_reader_errors_name_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"query": "a", "document": "b"}\n{"query": "a"}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:2: missing field\(s\) \['document'\]"):
        read_pair_file(path)
    path.write_bytes(b'{"query": "a", "document": "b"}\n{"query": "\xff", "document": "b"}\n{"query": "", "document": "b"}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:2: invalid UTF-8"):
        read_pair_file(path)
    pairs = read_pair_file(path, lenient=True)
    assert len(pairs) == 1 and sum(pairs.skipped.values()) == 2
    assert pairs.query_ids == ["a"]  # ids default to the text


def test_beir_training_pairs_use_positive_qrels(tmp_path):
    from test_beir import write_beir

    pairs = load_training_pairs(write_beir(tmp_path, split="train"), split="train")
    assert list(zip(pairs.query_ids, pairs.document_ids)) == [("q1", "d1"), ("q2", "d2")]
    assert pairs.documents[0] == "Paris Paris is the capital of France."


def test_config_validation_lists_every_problem(tmp_path):
    config = TrainConfig(data=str(tmp_path / "nowhere"), model="t6", loss="triplet", batch_size=1, temperature=0.0, architecture="twin")
    with pytest.raises(ValueError) as info:
        config.validate()
    message = str(info.value)
    for expected in (
        "model='t6' (valid: ['t5', 'bert'])",
        "loss='triplet' (valid: ['samtone', 'in_batch', 'pair'])",
        "architecture='twin' (valid: ['sde', 'ade', 'ade_spl'])",
        "batch_size=1",
        "temperature=0.0",
        "does not exist",
    ):
        assert expected in message, message


def test_config_refuses_a_dropout_a_preset_would_ignore(tmp_path):
    config = TrainConfig(data=str(tmp_path), model="bert", preset="all-MiniLM-L6-v2", dropout=0.0)
    with pytest.raises(ValueError, match=r"dropout=0\.0 sets the dropout of T5 towers built from `size`; towers from "
                                         r"preset='all-MiniLM-L6-v2' keep the preset's own rate"):
        config.validate()
    TrainConfig(data=str(tmp_path), model="bert", preset="all-MiniLM-L6-v2").validate()


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: 32\nloss: in_batch\n")
    config = TrainConfig.from_file(str(path), ["steps=10", "embedding_dim=none", "bidirectional=false", "learning_rate=0.5"])
    assert (config.batch_size, config.loss, config.steps, config.embedding_dim, config.bidirectional, config.learning_rate) == (32, "in_batch", 10, None, False, 0.5)
    assert TrainConfig().temperature == 0.01 and TrainConfig().optimizer == "adafactor" and TrainConfig().batch_size == 512
    path.write_text("batch_sise: 32\n")
    with pytest.raises(ValueError, match=r"c\.yaml: unknown key\(s\) \['batch_sise'\]"):
        TrainConfig.from_file(str(path))
    with pytest.raises(ValueError, match=r"--set steps='ten': expected a int"):
        TrainConfig().with_overrides(["steps=ten"])
    path.write_text("a: [unclosed\n")
    with pytest.raises(ValueError, match=r"c\.yaml is not valid YAML"):
        TrainConfig.from_file(str(path))


@pytest.mark.slow
def test_killed_run_resumes_exactly_like_an_uninterrupted_run(tmp_path, pair_file, t5_vocabulary):
    full_summary, full = train(tiny_config(pair_file, tmp_path / "full", t5_vocabulary), progress=False, print_fn=lambda *_: None)
    config = tiny_config(pair_file, tmp_path / "split", t5_vocabulary)
    first, _ = train(config, stop_after_steps=3, progress=False, print_fn=lambda *_: None)
    assert first["steps_done"] == 3 and not first["finished"]
    assert not (tmp_path / "split" / "model.keras").exists()
    second, resumed = train(config, progress=False, print_fn=lambda *_: None)
    assert second["resumed_from_step"] == 3 and second["finished"]
    for a, b in zip(full.trainable_variables, resumed.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
    assert second["last_loss"] == pytest.approx(full_summary["last_loss"], rel=1e-5)
    assert (tmp_path / "split" / "model.keras").exists()
    assert list((tmp_path / "split" / "logs").iterdir())


@pytest.mark.slow
def test_resume_with_a_different_config_is_refused(tmp_path, pair_file, t5_vocabulary):
    config = tiny_config(pair_file, tmp_path / "run", t5_vocabulary, steps=2, checkpoint_every=1)
    train(config, stop_after_steps=1, progress=False, print_fn=lambda *_: None)
    changed = tiny_config(pair_file, tmp_path / "run", t5_vocabulary, steps=2, checkpoint_every=1, learning_rate=0.5)
    with pytest.raises(ValueError, match=r"different config \(learning_rate: 0\.01 → 0\.5\)"):
        train(changed, progress=False, print_fn=lambda *_: None)
    # A run written before a key existed resumes: the missing key had its default.
    saved_path = tmp_path / "run" / "train_config.json"
    saved = json.loads(saved_path.read_text())
    for key in ("trim_padding", "num_negatives", "shuffle_buffer"):
        saved.pop(key)
    saved_path.write_text(json.dumps(saved))
    summary, _ = train(config, progress=False, print_fn=lambda *_: None)
    assert summary["resumed_from_step"] == 1 and summary["finished"]


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["samtone", "in_batch", "pair"])
def test_train_cli_lowers_the_loss(tmp_path, pair_file, t5_vocabulary, loss):
    args = ["train", "--output-dir", str(tmp_path / "out")]
    overrides = dict(data=pair_file, model="t5", size="tiny", vocabulary=t5_vocabulary, query_length=12, document_length=20,
                     batch_size=8, steps=25, checkpoint_every=25, learning_rate=1e-2, dropout=0.0, loss=loss,
                     mask_duplicates=loss != "pair", log_every=1)
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    assert cli.main(args) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["finished"] and summary["model"].endswith("model.keras")
    first_losses = _tensorboard_scalars(tmp_path / "out" / "logs", "loss")
    assert len(first_losses) == 25
    assert np.mean(first_losses[-5:]) < 0.5 * np.mean(first_losses[:5])
    assert _tensorboard_scalars(tmp_path / "out" / "logs", "learning_rate")[-1] == pytest.approx(0.0, abs=1e-9)


def _tensorboard_scalars(logdir, tag):
    import tensorflow as tf

    values = []
    for path in sorted(logdir.iterdir()):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values.append(float(tf.make_ndarray(value.tensor)))
    return values


@pytest.mark.parametrize("name", ["scifact_minilm.yaml", "squad_t5_tiny.yaml"])
def test_example_configs_validate(name, monkeypatch):
    from conftest import REPO, SHARED

    if not SHARED.exists():
        pytest.skip("../shared not present")
    monkeypatch.chdir(REPO)
    config = TrainConfig.from_file(str(REPO / "examples" / name)).validate()
    assert config.steps > 0


# Each configured loss with settings other than the defaults, and the settings its loss object must carry.
CONFIGURED_LOSSES = [
    ({"loss": "in_batch", "temperature": 0.05, "bidirectional": False}, {"temperature": 0.05, "bidirectional": False, "mask_duplicates": True}),
    ({"loss": "samtone", "same_tower": "query"}, {"temperature": 0.01, "bidirectional": True, "same_tower": "query", "mask_duplicates": True}),
    ({"loss": "samtone", "same_tower": "both", "temperature": 0.02}, {"temperature": 0.02, "bidirectional": True, "same_tower": "both", "mask_duplicates": True}),
    ({"loss": "pair", "alpha": 0.3, "mask_duplicates": False}, {"temperature": 0.01, "alpha": 0.3}),
]


@pytest.mark.parametrize("values,settings", CONFIGURED_LOSSES, ids=["in_batch", "samtone_query", "samtone_both", "pair"])
def test_training_step_loss_equals_the_registry_loss_object(t5_vocabulary, values, settings):
    import keras
    import tensorflow as tf

    from test_cached_step import BATCH, _batch, _config
    from tf_dualenc import losses
    from tf_dualenc.training.trainer import build_model, make_loss, make_train_step

    num_negatives = 0 if values["loss"] == "pair" else 2
    config = _config(t5_vocabulary, num_negatives=num_negatives, **values)
    assert make_loss(config).get_config() == losses.get(values["loss"], **settings).get_config()
    model = build_model(config)
    features, query_ids, document_ids = _batch(model, num_negatives)
    # What `compile`/`fit` computes: the registry's object on the stacked embeddings and the (query id, document id) pairs.
    want = losses.get(values["loss"], **settings)(tf.stack([query_ids, document_ids], axis=1), model(features))
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    optimizer.build(model.trainable_variables)
    step = make_train_step(tf.distribute.get_strategy(), model, optimizer, make_loss(config), BATCH)
    got, _ = step(features, query_ids, document_ids)
    assert float(got) == pytest.approx(float(want), rel=1e-6)


def test_recipes_are_the_bottom_layer_and_later_layers_win(tmp_path):
    from tf_dualenc.recipes import read_recipe, recipe_names

    assert {"quick", "strong"} <= set(recipe_names())
    strong = TrainConfig.from_recipe("strong", {"data": str(tmp_path)})
    assert (strong.recipe, strong.architecture, strong.epochs, strong.warmup_fraction, strong.hard_negatives) == (
        "strong", "ade_spl", read_recipe("strong")["epochs"], 0.1, "dense")
    strong.validate()
    # A key beside the recipe wins; one of a pair (steps / epochs, warmup_steps / warmup_fraction) clears the other.
    over = TrainConfig.from_recipe("strong", {"data": str(tmp_path), "learning_rate": 5e-5, "steps": 7, "warmup_steps": 2})
    assert (over.learning_rate, over.steps, over.epochs, over.warmup_steps, over.warmup_fraction) == (5e-5, 7, None, 2, None)
    over.validate()
    short = strong.with_overrides(["steps=1"])
    assert (short.steps, short.epochs) == (1, None)
    short.validate()
    back = short.with_overrides(["epochs=2"])
    assert (back.steps, back.epochs) == (TrainConfig().steps, 2.0)
    with pytest.raises(ValueError, match=r"recipe='fastest' \(valid: \['quick', 'strong'"):
        TrainConfig.from_recipe("fastest")
    with pytest.raises(ValueError, match=r"--set recipe: a recipe is the bottom layer"):
        strong.with_overrides(["recipe=quick"])
    with pytest.raises(ValueError, match=r"epochs=2 and steps=5 say the same thing twice"):
        TrainConfig(data=str(tmp_path), model="bert", preset="x", epochs=2, steps=5).validate()
    with pytest.raises(ValueError, match=r"warmup_fraction=1\.5 \(must be in \[0\.0, 1\.0\)"):
        TrainConfig(data=str(tmp_path), model="bert", preset="x", warmup_fraction=1.5).validate()


def test_schedule_derives_steps_from_epochs_and_caps_a_long_warmup():
    config = TrainConfig(epochs=5, warmup_fraction=0.1, batch_size=32)
    # An epoch is the full batches of the pairs trained on (718 // 32 = 22).
    assert {k: config.schedule(718)[k] for k in ("steps", "warmup_steps", "note")} == {"steps": 110, "warmup_steps": 11, "note": ""}
    assert TrainConfig(epochs=0.5, batch_size=32).schedule(10)["steps"] == 1
    capped = TrainConfig(steps=1, warmup_steps=3).schedule(None)
    assert (capped["steps"], capped["warmup_steps"]) == (1, 0) and "cut to 0" in capped["note"]
    assert TrainConfig(steps=30, warmup_steps=3).schedule(None)["warmup_steps"] == 3


@pytest.mark.slow
def test_epochs_train_the_derived_steps_and_summary_records_them(tmp_path, pair_file, t5_vocabulary):
    lines = []
    config = tiny_config(pair_file, tmp_path / "run", t5_vocabulary, steps=TrainConfig().steps, epochs=2, warmup_fraction=0.5,
                         checkpoint_every=100)
    summary, _ = train(config, progress=False, print_fn=lines.append)
    pairs = 2 * len(PAIRS)  # the pair file holds PAIRS twice, streamed: counted by reading it once
    steps = 2 * (pairs // 4)
    assert summary["steps_done"] == summary["steps_total"] == steps and summary["finished"]
    assert summary["schedule"] == {"steps": steps, "warmup_steps": steps // 2, "epochs": 2, "warmup_fraction": 0.5, "pairs": pairs,
                                   "batch_size": 4, "note": "", "mixed_precision": "float32", "mixed_precision_reason": "as configured"}
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["epochs"] == 2


def test_train_cli_takes_a_recipe_and_data(tmp_path):
    from tf_dualenc.cli.train import train_config

    parser = cli.build_parser()
    args = parser.parse_args(["train", "--recipe", "strong", "--data", str(tmp_path), "--output-dir", str(tmp_path / "o"),
                              "--set", "epochs=1"])
    config = train_config(args)
    assert (config.recipe, config.data, config.output_dir, config.epochs, config.architecture) == (
        "strong", str(tmp_path), str(tmp_path / "o"), 1.0, "ade_spl")
    config_file = tmp_path / "c.yaml"
    config_file.write_text("recipe: quick\nlearning_rate: 1.0e-4\n")
    args = parser.parse_args(["train", "--config", str(config_file), "--data", str(tmp_path)])
    assert (train_config(args).recipe, train_config(args).learning_rate) == ("quick", 1e-4)
    args = parser.parse_args(["train", "--recipe", "strong", "--config", str(config_file)])
    with pytest.raises(ValueError, match=r"--recipe strong and .*c\.yaml's recipe: quick disagree"):
        train_config(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--recipe", "fastest"])
