"""The Python API as keras-hub and sentence-transformers users expect it (issue 14, finding 7): `dir(tf_dualenc)`
and lazy attributes, `from_preset` / `save_to_preset`, `fit` on (query, document) tuples, progress while encoding,
and docs/python_api.md, whose code blocks run as written."""

import json
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_dualenc
from tf_dualenc.losses import SamToNeLoss
from tf_dualenc.models import CrossEncoder, DualEncoder

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "python_api.md"
QUERIES = ["who wrote hamlet", "boiling point of water", "capital of france", "speed of light"]
DOCUMENTS = [
    "Hamlet is a tragedy by William Shakespeare.",
    "Water boils at 100 degrees Celsius.",
    "Paris is the capital of France.",
    "Light travels at 300,000 km per second.",
]


def _tiny(vocabulary, **kwargs):
    return DualEncoder.from_preset("tiny", vocabulary=vocabulary, query_sequence_length=16, document_sequence_length=24,
                                   dropout=0.0, **kwargs)


@pytest.fixture(scope="module")
def tiny_model(t5_vocabulary):
    return _tiny(t5_vocabulary)


def test_import_is_cheap_and_dir_lists_the_public_api():
    program = ("import sys, tf_dualenc; names = dir(tf_dualenc); "
               "print(sorted(names)); print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    names_line, loaded_line = result.stdout.strip().splitlines()[-2:]
    names = set(eval(names_line))  # noqa: S307  (a printed list of strings)
    assert loaded_line == "False False"  # listing the API imported neither TensorFlow nor Keras
    assert {"reranking", "models", "losses", "data", "training", "evaluation", "export", "indexing", "analysis"} <= names
    assert {"DualEncoder", "SamToNeLoss", "load_model", "export_encoder", "RetrievalIndex", "build_index"} <= names


def test_every_public_name_and_subpackage_is_an_attribute():
    assert set(tf_dualenc.__all__) <= set(dir(tf_dualenc))
    for name in tf_dualenc.__all__:
        value = getattr(tf_dualenc, name)
        assert getattr(value, "__module__", getattr(value, "__name__", "")).startswith("tf_dualenc"), name
    assert tf_dualenc.reranking.TwoStageRetriever is not None
    assert tf_dualenc.DualEncoder is DualEncoder and tf_dualenc.load_model is tf_dualenc.loading.load_model
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        tf_dualenc.nonexistent  # noqa: B018


def test_fit_and_evaluate_read_query_document_tuples(t5_vocabulary):
    model = _tiny(t5_vocabulary)
    model.compile(optimizer=keras.optimizers.Adafactor(learning_rate=1e-2), loss=SamToNeLoss(temperature=0.1))
    as_dicts = tf.data.Dataset.from_tensor_slices(({"query": QUERIES, "document": DOCUMENTS},)).batch(4)
    as_tuples = tf.data.Dataset.from_tensor_slices((QUERIES, DOCUMENTS)).batch(4)
    # Both read the same pairs: read as (inputs, targets), the tuples would give the model the queries alone.
    np.testing.assert_allclose(model.evaluate(as_tuples, verbose=0), model.evaluate(as_dicts, verbose=0), rtol=1e-5)
    history = model.fit((QUERIES, DOCUMENTS), batch_size=4, epochs=2, verbose=0)  # in memory: Python lists
    assert history.history["loss"][-1] < history.history["loss"][0]
    with pytest.raises(ValueError, match=r"\(\(query, document\), ids\)"):
        model.fit(tf.data.Dataset.from_tensor_slices((QUERIES, DOCUMENTS, np.zeros(4, np.int64))).batch(4), verbose=0)


def test_encode_shows_progress_only_when_asked(tiny_model, capsys):
    quiet = tiny_model.encode_documents(DOCUMENTS * 3, batch_size=4)
    assert capsys.readouterr() == ("", "")
    loud = tiny_model.encode_documents(DOCUMENTS * 3, batch_size=4, verbose=1)
    out, err = capsys.readouterr()
    # On stderr (stdout stays the caller's): the last line, written when the last batch is done.
    assert out == "" and "encoding documents: 12/12 (100.0%)" in err and "documents/s, took " in err
    np.testing.assert_allclose(loud, quiet, atol=1e-6)
    tiny_model.encode_queries(QUERIES, verbose=1)
    assert "queries/s" in capsys.readouterr().err


def test_save_to_preset_writes_a_folder_that_from_preset_loads(tiny_model, tmp_path):
    folder = tiny_model.save_to_preset(tmp_path / "preset")
    metadata = json.loads((tmp_path / "preset" / "metadata.json").read_text())
    assert metadata["class_name"] == "DualEncoder" and metadata["architecture"] == "ade_spl"
    assert (metadata["embedding_dim"], metadata["query_sequence_length"], metadata["document_sequence_length"]) == (64, 16, 24)
    restored = DualEncoder.from_preset(folder, query_sequence_length=32)
    assert restored.query_preprocessor.sequence_length == 32 and restored.document_preprocessor.sequence_length == 24
    np.testing.assert_allclose(restored.encode_documents(DOCUMENTS), tiny_model.encode_documents(DOCUMENTS), atol=1e-6)
    # The one loader reads a preset folder too (a broken one here, which shows the file it went for, without a load).
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"broken/model\.keras: cannot be loaded as a tf_dualenc model"):
        tf_dualenc.load_model(tmp_path / "broken")
    with pytest.raises(FileExistsError, match="not empty"):
        tiny_model.save_to_preset(tmp_path / "preset")
    with pytest.raises(ValueError, match=r"takes only \['document_sequence_length', 'query_sequence_length'\]"):
        DualEncoder.from_preset(folder, architecture="sde")
    with pytest.raises(ValueError, match="holds a DualEncoder, not a CrossEncoder"):
        CrossEncoder.from_preset(folder)


def test_from_preset_names_what_a_preset_can_be(t5_vocabulary, tmp_path):
    with pytest.raises(ValueError, match=r"from_preset\('bert_huge'\): not a preset\. Expected a folder written by save_to_preset"):
        DualEncoder.from_preset("bert_huge")
    with pytest.raises(ValueError, match=r"from_preset\('t5_1\.1_base'\) builds randomly initialised T5 towers: pass vocabulary="):
        DualEncoder.from_preset("t5_1.1_base")
    sde = DualEncoder.from_preset("tiny", vocabulary=t5_vocabulary, architecture="sde", embedding_dim=32)
    assert sde.architecture == "sde" and sde.embedding_dim == 32
    assert CrossEncoder.from_preset("tiny", vocabulary=t5_vocabulary, sequence_length=32).pair_format == "joined"


def _python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow  # the page's whole workflow, two exports included: about a minute
def test_python_api_page_runs_as_written(t5_vocabulary, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the page's paths (../shared/...) are relative to the repository root
    blocks = _python_blocks(PAGE.read_text(encoding="utf-8"))
    setting = 'run_dir = pathlib.Path("runs/python_api")'
    assert len(blocks) >= 8 and setting in blocks[0]
    blocks[0] = blocks[0].replace(setting, f"run_dir = pathlib.Path({str(tmp_path)!r})")  # write in a temp dir
    namespace = {"__name__": "python_api_page"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{PAGE.name}, block {number}", "exec"), namespace)  # noqa: S102
        except Exception as error:
            pytest.fail(f"docs/python_api.md, code block {number} fails: {type(error).__name__}: {error}\n{block}")
    # What each step is said to give.
    assert isinstance(namespace["model"], DualEncoder) and namespace["model"].query_preprocessor.sequence_length == 48
    assert namespace["scores"].shape == (4, 4)
    np.testing.assert_allclose(namespace["served_vectors"], namespace["model"].encode_queries(namespace["queries"]), atol=1e-5)
    assert [len(hits) for hits in namespace["hits"]] == [2]
    assert namespace["top"]["document_ids"].shape == (1, 2)
    assert "documents/s" in capsys.readouterr().err


def test_python_api_page_explains_the_keras_environment_and_is_linked():
    text = PAGE.read_text(encoding="utf-8")
    assert "TF_USE_LEGACY_KERAS" in text and "tensorflow-recommenders" in text
    assert "docs/python_api.md" in (REPO / "README.md").read_text(encoding="utf-8")
