"""Streamed training-pair files: JSONL, TSV and TFRecord shards, errors, batching, resume, training with hard negatives."""

import collections
import json

import numpy as np
import pytest

from tf_dualenc.data import DataError, PairRecord, iter_pair_records, resolve_pair_files, write_pair_tfrecords
from tf_dualenc.data.pairs import PairStream, load_training_pairs
from tf_dualenc.training import train
from tf_dualenc.training.input_pipeline import stream_batches

RECORDS = [
    PairRecord(f"q{i}", f"question {i}", f"d{i % 5}", f"answer {i % 5}", (f"wrong {i}", f"also wrong {i}")) for i in range(12)
]


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({"query_id": r.query_id, "query": r.query, "document_id": r.document_id,
                                "document": r.document, "negatives": list(r.negatives)}) + "\n")
    return str(path)


def test_jsonl_tsv_and_tfrecord_shards_read_the_same_pairs(tmp_path):
    jsonl = write_jsonl(tmp_path / "p.jsonl", RECORDS)
    tsv = tmp_path / "p.tsv"
    tsv.write_text("query\tdocument\tnegative\n" + "".join(f"{r.query}\t{r.document}\t{chr(9).join(r.negatives)}\n" for r in RECORDS))
    shards = write_pair_tfrecords(RECORDS, str(tmp_path / "shards" / "train"), num_shards=3)
    assert [p.rsplit("/", 1)[1] for p in shards] == [f"train-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert not list((tmp_path / "shards").glob("*.tmp"))

    assert list(iter_pair_records([jsonl])) == RECORDS
    from_tsv = list(iter_pair_records([str(tsv)]))
    # TSV carries no ids: they default to the texts.
    assert [(r.query, r.document, r.negatives) for r in from_tsv] == [(r.query, r.document, r.negatives) for r in RECORDS]
    assert from_tsv[0].query_id == "question 0" and from_tsv[0].document_id == "answer 0"
    from_shards = list(iter_pair_records(resolve_pair_files(str(tmp_path / "shards" / "train-*.tfrecord"))))
    assert sorted(from_shards, key=lambda r: int(r.query_id[1:])) == RECORDS
    # num_negatives keeps the first N.
    assert list(iter_pair_records([jsonl], num_negatives=1))[0].negatives == ("wrong 0",)


def test_pair_files_resolve_from_globs_and_comma_lists(tmp_path):
    for name in ("b.jsonl", "a.jsonl", "c.tsv"):
        (tmp_path / name).write_text("")
    assert resolve_pair_files(f"{tmp_path}/*.jsonl,{tmp_path}/c.tsv") == [f"{tmp_path}/a.jsonl", f"{tmp_path}/b.jsonl", f"{tmp_path}/c.tsv"]
    with pytest.raises(FileNotFoundError, match=r"No training pair file matches '.*/nothing-\*\.tfrecord'"):
        resolve_pair_files(f"{tmp_path}/nothing-*.tfrecord")
    (tmp_path / "pairs.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"pairs\.csv.*known suffixes.*'jsonl', 'tsv', 'tfrecord'"):
        list(iter_pair_records([str(tmp_path / "pairs.csv")]))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("p.tsv", b"a\tb\nonly one field\n", r"p\.tsv:2: expected query<TAB>document"),
        ("p.tsv", b"a\tb\n\xff\tb\n", r"p\.tsv:2: invalid UTF-8"),
        ("p.tsv", b"a\tb\n \tb\n", r"p\.tsv:2: empty or non-string query"),
        ("p.jsonl", b'{"query": "a", "document": "b"}\n{"query": "a", "document": "b", "negatives": "c"}\n', r"p\.jsonl:2: negatives must be a list"),
        ("p.jsonl", b'{"query": "a", "document": "b"}\n[1]\n', r"p\.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_pair_records_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        list(iter_pair_records([str(path)]))
    skipped = collections.Counter()
    assert len(list(iter_pair_records([str(path)], lenient=True, skipped=skipped))) == 1
    assert sum(skipped.values()) == 1


def test_bad_tfrecords_name_the_record(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "bad.tfrecord")
    write_pair_tfrecords(RECORDS[:1], str(tmp_path / "good"))
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            "query": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"q"])),
            "document": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"d"]))})).SerializeToString())
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            "query": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"q"]))})).SerializeToString())
    with pytest.raises(DataError, match=r"bad\.tfrecord:record 2: missing bytes feature\(s\) \['document'\]"):
        list(iter_pair_records([path]))
    with pytest.raises(DataError, match=r"good-00000-of-00001\.tfrecord:record 1: too few hard negatives \(2; num_negatives=3\)"):
        list(iter_pair_records([str(tmp_path / "good-00000-of-00001.tfrecord")], num_negatives=3))
    (tmp_path / "corrupt.tfrecord").write_bytes(b"\x00" * 40)
    with pytest.raises(DataError, match=r"corrupt\.tfrecord: corrupt TFRecord file"):
        list(iter_pair_records([str(tmp_path / "corrupt.tfrecord")]))


def test_stream_batches_are_deterministic_full_duplicate_free_and_resume(tmp_path):
    files = [write_jsonl(tmp_path / "a.jsonl", RECORDS[:6]), write_jsonl(tmp_path / "b.jsonl", RECORDS[6:])]

    def take(n, seed=7, **kwargs):
        stream = stream_batches(files, 4, seed=seed, shuffle_buffer=5, **kwargs)
        return [[r.query_id for r in next(stream)] for _ in range(n)]

    first = take(9)
    assert first == take(9)
    assert first != take(9, seed=8)
    by_id = {r.query_id: r for r in RECORDS}
    for batch in first:
        assert len(batch) == 4 and len({by_id[q].document_id for q in batch}) == 4
    for start in (1, 3, 5):
        assert take(9 - start, start_step=start) == first[start:]
    with pytest.raises(ValueError, match=r"Not one full batch of 6 pairs.*without repeating"):
        next(stream_batches(files, 6, seed=0))


def test_streaming_reads_only_a_shuffle_buffer_ahead(tmp_path):
    # 5,000 records; the first batch can only hold records from the first buffer + batch positions.
    records = [PairRecord(f"q{i}", f"q {i}", f"d{i}", f"d {i}") for i in range(5000)]
    path = write_jsonl(tmp_path / "big.jsonl", records)
    batch = next(stream_batches([path], 8, seed=0, shuffle_buffer=16))
    assert max(int(r.query_id[1:]) for r in batch) < 16 + 8


def test_train_streams_tfrecord_shards_with_hard_negatives(tmp_path, t5_vocabulary):
    from test_training import tiny_config

    write_pair_tfrecords(RECORDS, str(tmp_path / "train"), num_shards=2)
    glob = str(tmp_path / "train-*.tfrecord")
    assert isinstance(load_training_pairs(glob), PairStream)
    config = tiny_config(glob, tmp_path / "out", t5_vocabulary, num_negatives=2, steps=3, batch_size=4, checkpoint_every=3)
    summary, _ = train(config.validate(), progress=False, print_fn=lambda *_: None)
    assert summary["finished"] and np.isfinite(summary["last_loss"]) and summary["train_pairs"] is None

    # A bad record deep in a streamed file stops training with the file and line, not tf.data's wrapper.
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, RECORDS)
    with open(bad, "a") as f:
        f.write('{"query": "no document"}\n')
    config = tiny_config(bad, tmp_path / "bad_out", t5_vocabulary, steps=50, batch_size=4, checkpoint_every=50)
    with pytest.raises(DataError, match=r"bad\.jsonl:13: missing field\(s\) \['document'\]"):
        train(config.validate(), progress=False, print_fn=lambda *_: None)


def test_config_checks_pair_file_keys(tmp_path, t5_vocabulary):
    from test_training import tiny_config

    folder = tmp_path / "beir"
    folder.mkdir()
    with pytest.raises(ValueError) as error:
        tiny_config(folder, tmp_path / "out", t5_vocabulary, num_negatives=2, data_format="tsv", trim_padding="yes",
                    shuffle_buffer=0, loss="pair", mask_duplicates=False).validate()
    for expected in ("data_format must be 'auto' or 'beir' (got 'tsv')", "num_negatives=2 needs pair files",
                     "num_negatives > 0 is not defined for loss='pair'", "trim_padding='yes' (must be true or false)",
                     "shuffle_buffer=0 (must be an integer >= 1)"):
        assert expected in str(error.value)
    path = write_jsonl(tmp_path / "p.jsonl", RECORDS)
    with pytest.raises(ValueError, match=r"data_format='beir' needs a folder"):
        tiny_config(path, tmp_path / "out", t5_vocabulary, data_format="beir").validate()
