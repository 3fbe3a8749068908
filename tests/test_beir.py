import json

import pytest

from tf_dualenc.data import DataError, load_beir, read_qrels, read_query_texts

SHARED_SCIFACT = None


def write_beir(root, corpus=None, queries=None, qrels=None, split="test"):
    corpus = corpus if corpus is not None else [
        {"_id": "d1", "title": "Paris", "text": "Paris is the capital of France."},
        {"_id": "d2", "title": "", "text": "Water boils at 100 degrees."},
        {"_id": "d3", "title": "Jupiter", "text": "The largest planet."},
    ]
    queries = queries if queries is not None else [
        {"_id": "q1", "text": "capital of france"},
        {"_id": "q2", "text": "boiling point"},
        {"_id": "q3", "text": "a query without qrels"},
    ]
    qrels = qrels if qrels is not None else ["query-id\tcorpus-id\tscore", "q1\td1\t2", "q1\td3\t0", "q2\td2\t1"]
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w") as f:
        for c in corpus:
            f.write((c if isinstance(c, str) else json.dumps(c)) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for q in queries:
            f.write((q if isinstance(q, str) else json.dumps(q)) + "\n")
    (root / "qrels" / f"{split}.tsv").write_text("\n".join(qrels) + "\n")
    return root


def test_load_beir_reads_the_layout(tmp_path):
    ds = load_beir(write_beir(tmp_path), "test")
    assert set(ds.corpus) == {"d1", "d2", "d3"}
    assert ds.queries == {"q1": "capital of france", "q2": "boiling point"}
    assert ds.qrels == {"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1}}
    assert ds.document_text("d1") == "Paris Paris is the capital of France."
    assert ds.document_text("d2") == "Water boils at 100 degrees."
    pairs = list(ds.training_pairs())
    assert [(q, d) for q, _, d, _ in pairs] == [("q1", "d1"), ("q2", "d2")]  # score 0 rows are not pairs
    assert list(ds.training_pairs(title_separator=". "))[0][3] == "Paris. Paris is the capital of France."


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"corpus": ['{"_id": "d1", "text": "ok"}', '{"_id": "d2", "text": broken}']}, r"corpus\.jsonl:2: malformed JSON"),
        ({"corpus": ['{"_id": "d1", "title": "t"}']}, r"corpus\.jsonl:1: missing field\(s\) \['text'\]"),
        ({"corpus": ['{"_id": "d1", "title": "", "text": "  "}']}, r"corpus\.jsonl:1: document 'd1' has empty title and text"),
        ({"queries": ['{"_id": "q1", "text": ""}']}, r"queries\.jsonl:1: query 'q1' has empty text"),
        ({"queries": ['{"_id": "q1", "text": "a"}', '{"_id": "q1", "text": "b"}']}, r"queries\.jsonl:2: duplicate query id 'q1'"),
        ({"qrels": ["query-id\tcorpus-id\tscore", "q1\td1"]}, r"test\.tsv:2: expected 3 tab-separated columns, got 2"),
        ({"qrels": ["query-id\tcorpus-id\tscore", "q1\td1\thigh"]}, r"test\.tsv:2: bad qrels row"),
        ({"qrels": ["qid\tdid\tscore", "q1\td1\t1"]}, r"test\.tsv:1: expected the header"),
        ({"qrels": ["query-id\tcorpus-id\tscore", "q9\td1\t1"]}, r"query id 'q9' is not in .*queries\.jsonl"),
        ({"qrels": ["query-id\tcorpus-id\tscore", "q1\td9\t1"]}, r"query 'q1' points at document id\(s\) \['d9'\] not in .*corpus\.jsonl"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, kwargs, match):
    write_beir(tmp_path, **kwargs)
    with pytest.raises(DataError, match=match):
        load_beir(tmp_path, "test")


def test_invalid_utf8_names_the_line(tmp_path):
    write_beir(tmp_path)
    with open(tmp_path / "corpus.jsonl", "ab") as f:
        f.write(b'{"_id": "d4", "text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"corpus\.jsonl:4: invalid UTF-8 at byte"):
        load_beir(tmp_path, "test")


@pytest.mark.parametrize("line,reason", [
    ('{"_id": "d4", "text": "never closed', "Unterminated string starting at column 23"),
    ('{"_id": "d4", "text": "tab\tinside"}', "Invalid control character at column 27"),
    ('{"_id": "d4", "text": x}', "Expecting value at column 23"),
])
def test_malformed_json_errors_read_as_a_sentence(tmp_path, line, reason):
    write_beir(tmp_path)
    with open(tmp_path / "corpus.jsonl", "a") as f:
        f.write(line)  # the last line, without a newline: a string left open runs to the end of the file
    with pytest.raises(DataError) as error:
        load_beir(tmp_path, "test")
    assert str(error.value).endswith(f"corpus.jsonl:4: malformed JSON ({reason})")
    assert "at at" not in str(error.value)


def test_query_texts_from_jsonl_or_one_per_line(tmp_path):
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "first"}\n\n{"text": "no id needed"}\n{"_id": "q1", "text": "first"}\n')
    assert read_query_texts(tmp_path / "queries.jsonl") == ["first", "no id needed", "first"]  # file order, repeats kept
    (tmp_path / "queries.txt").write_text("  first query \n\nsecond\n")
    assert read_query_texts(str(tmp_path / "queries.txt")) == ["first query", "second"]


@pytest.mark.parametrize("line", ['{"_id": "q2"}', "not json", '["text"]', '"text"'])
def test_bad_query_line_names_file_and_line(tmp_path, line):
    (tmp_path / "queries.jsonl").write_text('{"text": "fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=r"queries\.jsonl:2: expected a JSON object with 'text'$"):
        read_query_texts(tmp_path / "queries.jsonl")
    (tmp_path / "queries.txt").write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"queries\.txt:2: invalid UTF-8 at byte 3"):
        read_query_texts(tmp_path / "queries.txt")


def test_a_query_text_that_is_not_a_string_names_file_and_line(tmp_path):
    (tmp_path / "queries.jsonl").write_text('{"text": "fine"}\n{"_id": "q2", "text": 5}\n')
    with pytest.raises(DataError, match=r"queries\.jsonl:2: 'text' must be a string, got int$"):
        read_query_texts(tmp_path / "queries.jsonl")


def test_lenient_mode_counts_and_reports_skips(tmp_path):
    write_beir(
        tmp_path,
        corpus=[
            '{"_id": "d1", "text": "Paris is the capital."}',
            "{broken",
            '{"_id": "d2", "title": "", "text": ""}',
            '{"_id": "d3", "text": "Water boils."}',
        ],
        qrels=["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2\t1", "q2\td3\t1", "q7\td3\t1", "bad row"],
    )
    ds = load_beir(tmp_path, "test", lenient=True)
    assert set(ds.corpus) == {"d1", "d3"}
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d3": 1}}
    assert dict(ds.skipped) == {
        "corpus.jsonl: malformed JSON": 1,
        "corpus.jsonl: empty text": 1,
        "test.tsv: wrong column count": 1,
        "qrels: unknown query id": 1,
        "qrels: unknown document id": 1,
    }


def test_missing_split_lists_available_splits(tmp_path):
    write_beir(tmp_path, split="train")
    with pytest.raises(FileNotFoundError, match=r"split 'test'.*\['train'\]"):
        load_beir(tmp_path, "test")


def test_qrels_scores_may_be_written_as_floats(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1.0\nq1\td2\t1.5\n")
    with pytest.raises(DataError, match=r"q\.tsv:3"):
        read_qrels(path)


@pytest.mark.slow
def test_shared_sets_load_with_documented_counts(request):
    from conftest import SHARED

    if not (SHARED / "data" / "scifact").exists():
        pytest.skip("../shared/data not present")
    counts = {
        ("scifact", "train"): (5183, 809, 919),
        ("scifact", "test"): (5183, 300, 339),
        ("squad_reqa_train", "train"): (10235, 11877, 11877),
        ("squad_reqa_test", "test"): (10283, 10570, 11419),
    }
    for (name, split), want in counts.items():
        ds = load_beir(SHARED / "data" / name, split)
        assert (len(ds.corpus), len(ds.queries), sum(len(v) for v in ds.qrels.values())) == want
        assert not ds.skipped
