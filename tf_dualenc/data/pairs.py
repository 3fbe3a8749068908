"""Training pairs: a BEIR split in memory (`TrainingPairs`), or pair files streamed (`PairStream`)."""

import collections
import dataclasses
import os

from tf_dualenc.data.beir import DataError, load_beir
from tf_dualenc.data.pair_records import PAIR_FORMATS, infer_pair_format, iter_pair_records, resolve_pair_files


@dataclasses.dataclass
class TrainingPairs:
    query_ids: list
    queries: list
    document_ids: list
    documents: list
    source: str
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def __len__(self):
        return len(self.queries)


@dataclasses.dataclass
class PairStream:
    """Pair files read as training consumes them (see `tf_dualenc.training.input_pipeline.stream_batches`).

    `skipped` fills up while the first epoch is read in lenient mode.
    """

    files: list
    data_format: str = "auto"
    shuffle_buffer: int = 10_000
    num_negatives: int = 0
    lenient: bool = False
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    teacher_scores: bool = False  # every record must carry them (distillation)

    @property
    def source(self):
        return ", ".join(os.path.abspath(f) for f in self.files)


def read_pair_file(path, *, lenient=False, data_format="auto"):
    """All pairs of one small pair file in memory, as `TrainingPairs` (training streams instead)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Pair file not found: {path}")
    pairs = TrainingPairs([], [], [], [], source=os.path.abspath(path))
    for record in iter_pair_records([path], data_format, lenient=lenient, skipped=pairs.skipped):
        pairs.query_ids.append(record.query_id)
        pairs.queries.append(record.query)
        pairs.document_ids.append(record.document_id)
        pairs.documents.append(record.document)
    if not pairs.queries:
        raise DataError(f"{path}: no training pairs")
    return pairs


def open_pair_stream(data, *, data_format="auto", shuffle_buffer=10_000, num_negatives=0, lenient=False, teacher_scores=False):
    """Resolves pair files (path, comma list or glob) and checks each one's format and first record now,
    before any model is built; the rest is read while training."""
    files = resolve_pair_files(data)
    for path in files:
        if data_format == "auto":
            infer_pair_format(path)
        # The first good record proves the format; strict mode raises on a bad one with file and line.
        next(iter(iter_pair_records([path], data_format, lenient=lenient, num_negatives=num_negatives,
                                    teacher_scores=teacher_scores)), None)
    return PairStream(files, data_format, shuffle_buffer, num_negatives, lenient, teacher_scores=teacher_scores)


def load_training_pairs(path, *, data_format="auto", split="train", title_separator=" ", lenient=False,
                        shuffle_buffer=10_000, num_negatives=0, validation_fraction=0.0):
    """Pairs from a BEIR folder (qrels rows with score > 0, in memory) or pair files (streamed).

    data_format: "auto" (a folder is BEIR, anything else pair files), "beir", or one of PAIR_FORMATS.
    validation_fraction: for a BEIR folder, leave out the queries of the validation split
        (`tf_dualenc.data.validation_split`).
    """
    if data_format == "auto":
        data_format = "beir" if os.path.isdir(path) else "auto"
    if data_format in PAIR_FORMATS or data_format == "auto":
        return open_pair_stream(path, data_format=data_format, shuffle_buffer=shuffle_buffer, num_negatives=num_negatives, lenient=lenient)
    if num_negatives:
        raise ValueError(f"num_negatives={num_negatives} needs pair files with hard negatives; the BEIR folder {path} has none.")
    if validation_fraction:
        from tf_dualenc.data.validation_split import load_training_split

        dataset = load_training_split(path, fraction=validation_fraction, split=split, lenient=lenient)
    else:
        dataset = load_beir(path, split, lenient=lenient)
    pairs = TrainingPairs([], [], [], [], source=f"{os.path.abspath(path)} ({split})", skipped=dataset.skipped)
    for qid, query, doc_id, document in dataset.training_pairs(title_separator):
        pairs.query_ids.append(qid)
        pairs.queries.append(query)
        pairs.document_ids.append(doc_id)
        pairs.documents.append(document)
    if not pairs.queries:
        raise DataError(f"{path}: split {split!r} has no qrels rows with score > 0")
    return pairs
