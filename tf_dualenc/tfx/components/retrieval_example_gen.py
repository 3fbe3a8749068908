"""Ingest: training pairs (a BEIR split or pair files, minus the validation queries) → TFRecord `tf.Example` shards in
an `Examples` artifact (split "train"; split "eval" holds the validation split's pairs), the validation split and the
evaluation (test) split (BEIR) → two validated `RetrievalDataset` artifacts.

The examples are the pair format `tf_dualenc.data.write_pair_tfrecords` writes (`query`, `document`, `query_id`,
`document_id`, `negatives`), under `<uri>/Split-train/` and `<uri>/Split-eval/`. When the training data is a BEIR
folder, the artifact also holds it in BEIR layout under `<uri>/beir/` (`TRAINING_FOLDER`): the corpus, the training
queries minus the validation queries as split "train", and the validation queries as split "dev" when they search
the same corpus. That is what the Trainer mines hard negatives from (the training queries only: a validation query
is never mined for) and validates on. Everything is validated while it is read; a bad record stops the component
with the file and line (or is counted, with `lenient`).
"""

import json
import os

from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import Channel, artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from tf_dualenc.tfx.artifacts import RetrievalDataset
from tf_dualenc.tfx.components.shared import reported_as

COMPONENT = "RetrievalExampleGen"
# The training data in BEIR layout inside the Examples artifact (see the module docstring).
TRAINING_FOLDER = "beir"


def write_beir_split(dataset, folder):
    """Writes a `BeirDataset` split in BEIR layout under `folder` (which must exist and be empty)."""
    with open(os.path.join(folder, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for doc_id, doc in dataset.corpus.items():
            f.write(json.dumps({"_id": doc_id, "title": doc["title"], "text": doc["text"]}, ensure_ascii=False) + "\n")
    with open(os.path.join(folder, "queries.jsonl"), "w", encoding="utf-8") as f:
        for qid, text in dataset.queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    os.makedirs(os.path.join(folder, "qrels"), exist_ok=True)
    with open(os.path.join(folder, "qrels", f"{dataset.split}.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in dataset.qrels.items():
            for doc_id, score in docs.items():
                f.write(f"{qid}\t{doc_id}\t{score}\n")


def write_training_folder(data, split, validation, folder, *, lenient=False):
    """Writes BEIR folder `data`'s `split` without the validation queries as split "train" under `folder`, and the
    validation split as "dev" when it searches the same corpus; returns whether "dev" was written."""
    import dataclasses

    from tf_dualenc.data import load_beir

    dataset = load_beir(data, split, lenient=lenient)
    kept = {q: docs for q, docs in dataset.qrels.items() if q not in validation.qrels}
    os.makedirs(folder)
    write_beir_split(dataclasses.replace(dataset, split="train", qrels=kept, queries={q: dataset.queries[q] for q in kept}), folder)
    if validation.corpus != dataset.corpus:
        return False
    with open(os.path.join(folder, "queries.jsonl"), "a", encoding="utf-8") as f:
        for qid in validation.qrels:
            f.write(json.dumps({"_id": qid, "text": validation.queries[qid]}, ensure_ascii=False) + "\n")
    with open(os.path.join(folder, "qrels", "dev.tsv"), "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in validation.qrels.items():
            for doc_id, score in docs.items():
                f.write(f"{qid}\t{doc_id}\t{score}\n")
    return True


def _training_records(exec_properties, held_out):
    """The training pairs without any pair of a validation query (`held_out` ids), whatever the data's form: a BEIR
    split (the same folder or another path to it) or pair files whose records name their query ids."""
    from tf_dualenc.data import PairRecord, iter_pair_records, load_training_pairs

    pairs = load_training_pairs(
        exec_properties["data"], data_format=exec_properties["data_format"], split=exec_properties["split"],
        title_separator=exec_properties["title_separator"], lenient=bool(exec_properties["lenient"]),
    )
    if hasattr(pairs, "files"):  # pair files: read them all here (not through a shuffle buffer)
        records = iter_pair_records(pairs.files, pairs.data_format, lenient=pairs.lenient, skipped=pairs.skipped)
    else:
        records = (PairRecord(q_id, q, d_id, d) for q_id, q, d_id, d in
                   zip(pairs.query_ids, pairs.queries, pairs.document_ids, pairs.documents))
    return pairs, (record for record in records if record.query_id not in held_out)


def _rules(exec_properties):
    """The data's evaluation rules: the config's, and what the data folder's beir.json turns on
    (`tf_dualenc.data.evaluation_rules`)."""
    from tf_dualenc.data.evaluation_rules import resolve_rules

    folder = exec_properties["validation_data"] or exec_properties["data"]
    return resolve_rules(folder, ignore_identical_ids=bool(exec_properties.get("ignore_identical_ids")) or None,
                         lenient=bool(exec_properties["lenient"]) or None, title_separator=exec_properties["title_separator"])


class Executor(base_executor.BaseExecutor):
    """Writes the train split of pairs and the evaluation split; see the module docstring."""

    def Do(self, input_dict, output_dict, exec_properties):
        import dataclasses

        from tf_dualenc.data import PairRecord, load_beir, write_pair_tfrecords
        from tf_dualenc.data.validation_split import load_validation

        examples = artifact_utils.get_single_instance(output_dict["examples"])
        eval_dataset = artifact_utils.get_single_instance(output_dict["eval_dataset"])
        validation_artifact = artifact_utils.get_single_instance(output_dict["validation_dataset"])
        with reported_as(COMPONENT):
            rules = _rules(exec_properties)
            exec_properties = dict(exec_properties, lenient=int(rules.lenient))
            validation = load_validation(exec_properties["validation_data"], fraction=float(exec_properties["validation_fraction"]),
                                         split=exec_properties["split"], lenient=bool(exec_properties["lenient"]))
            pairs, records = _training_records(exec_properties, set(validation.qrels))
            counted = []

            def counting(items):
                for record in items:
                    counted.append(None)
                    yield record

            split_dir = os.path.join(examples.uri, "Split-train")
            write_pair_tfrecords(counting(records), os.path.join(split_dir, "pairs"), num_shards=int(exec_properties["num_shards"]))
            if not counted:
                raise ValueError(f"{pairs.source}: no training pairs")
            dataset = load_beir(exec_properties["eval_data"], exec_properties["eval_split"], lenient=bool(exec_properties["lenient"]))
            eval_pairs = [PairRecord(*row) for row in validation.training_pairs(exec_properties["title_separator"])]
            if not eval_pairs:
                raise ValueError(f"{exec_properties['validation_data']}: validation split {validation.split!r} has no "
                                 "qrels rows with score > 0")
            # The validation split's pairs, as the Trainer's "eval" split (TFX's Trainer expects one); never the test split.
            write_pair_tfrecords(eval_pairs, os.path.join(examples.uri, "Split-eval", "pairs"), num_shards=1)
            beir_data = os.path.isdir(exec_properties["data"]) and exec_properties["data_format"] in ("auto", "beir")
            with_dev = beir_data and write_training_folder(
                exec_properties["data"], exec_properties["split"], validation, os.path.join(examples.uri, TRAINING_FOLDER),
                lenient=bool(exec_properties["lenient"]))
        examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
        examples.set_int_custom_property("num_pairs", len(counted))
        examples.set_string_custom_property("source", pairs.source)
        examples.set_string_custom_property("skipped_records", json.dumps(dict(pairs.skipped)))
        examples.set_string_custom_property("training_folder", TRAINING_FOLDER if beir_data else "")
        examples.set_int_custom_property("training_folder_has_validation", int(bool(with_dev)))
        from tf_dualenc.data.evaluation_rules import write_rules

        if beir_data:
            write_rules(os.path.join(examples.uri, TRAINING_FOLDER), rules)
        for artifact, split, role in ((eval_dataset, dataset, "test"), (validation_artifact, validation, "validation")):
            # The carved split's name ("train[validation 0.2]") describes it; its qrels file is plainly "validation".
            written = split if role == "test" else dataclasses.replace(split, split="validation")
            write_beir_split(written, artifact.uri)
            # Every later reader of the split (the Trainer's validation and mining, the evaluator, the re-ranker's
            # check) takes the data's evaluation rules from the folder itself.
            write_rules(artifact.uri, rules)
            artifact.set_int_custom_property("ignore_identical_ids", int(rules.ignore_identical_ids))
            artifact.set_string_custom_property("split", written.split)
            artifact.set_string_custom_property("role", role)
            artifact.set_string_custom_property("description", split.split)
            artifact.set_string_custom_property("source", os.path.abspath(split.path))
            artifact.set_int_custom_property("documents", len(split.corpus))
            artifact.set_int_custom_property("queries", len(split.queries))


class RetrievalExampleGenSpec(ComponentSpec):
    PARAMETERS = {
        "data": ExecutionParameter(type=str),
        "data_format": ExecutionParameter(type=str),
        "split": ExecutionParameter(type=str),
        "eval_data": ExecutionParameter(type=str),
        "eval_split": ExecutionParameter(type=str),
        "validation_data": ExecutionParameter(type=str),
        "validation_fraction": ExecutionParameter(type=float),
        "title_separator": ExecutionParameter(type=str),
        "lenient": ExecutionParameter(type=int),
        "ignore_identical_ids": ExecutionParameter(type=int, optional=True),
        "num_shards": ExecutionParameter(type=int),
        # File names, sizes and modification times of the inputs: a changed file re-runs ingest (and what follows)
        # although its path is the same.
        "input_fingerprint": ExecutionParameter(type=str),
    }
    INPUTS = {}
    OUTPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "eval_dataset": ChannelParameter(type=RetrievalDataset),
        "validation_dataset": ChannelParameter(type=RetrievalDataset),
    }


class RetrievalExampleGen(base_component.BaseComponent):
    """Ingest component: training pairs → `examples` (TFRecord, split "train"; split "eval" = the validation pairs);
    the validation split → `validation_dataset` (what blessing is decided on); the evaluation (test)
    split → `eval_dataset` (reported and indexed, never used to decide anything).

    Args:
        data: a BEIR folder (pairs = qrels rows with score > 0 of `split`) or pair files (JSONL / TSV / TFRecord; comma
            list or globs).
        eval_data: a BEIR folder holding the evaluation split `eval_split`.
        validation_data: the BEIR folder the validation split comes from: its `dev` split when it has one, else
            `validation_fraction` of its `split` queries (`tf_dualenc.data.validation_split`). Every training pair of
            a validation query (matched by query id) is left out of training.
        input_fingerprint: see `tf_dualenc.tfx.pipeline_config.fingerprint_inputs`.
        lenient, ignore_identical_ids, title_separator: the data's evaluation rules (`tf_dualenc.data.evaluation_rules`;
            the data folder's beir.json can turn the first two on). They are written as beir.json into every split
            folder this writes, where the Trainer, the evaluator and the re-ranker's check read them.
    """

    SPEC_CLASS = RetrievalExampleGenSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, data, eval_data, *, validation_data=None, validation_fraction=0.2, data_format="auto", split="train",
                 eval_split="test", title_separator=" ", lenient=False, num_shards=1, input_fingerprint="", ignore_identical_ids=False):
        super().__init__(spec=RetrievalExampleGenSpec(
            data=data, data_format=data_format, split=split, eval_data=eval_data, eval_split=eval_split,
            validation_data=validation_data or data, validation_fraction=float(validation_fraction),
            title_separator=title_separator, lenient=int(lenient), num_shards=num_shards, input_fingerprint=input_fingerprint,
            ignore_identical_ids=int(ignore_identical_ids),
            examples=Channel(type=standard_artifacts.Examples),
            eval_dataset=Channel(type=RetrievalDataset),
            validation_dataset=Channel(type=RetrievalDataset),
        ))

