"""A tiny BEIR-layout data set for pipeline tests: the demo's 64 question/answer pairs, 48 train and 16 test."""

import json
import os

from tf_dualenc.demo import load_sample


def write_tiny_beir(folder, num_train=48):
    pairs = load_sample()
    os.makedirs(os.path.join(folder, "qrels"), exist_ok=True)
    with open(os.path.join(folder, "corpus.jsonl"), "w", encoding="utf-8") as corpus, \
            open(os.path.join(folder, "queries.jsonl"), "w", encoding="utf-8") as queries:
        for i, (query, document) in enumerate(pairs):
            corpus.write(json.dumps({"_id": f"d{i}", "title": "", "text": document}) + "\n")
            queries.write(json.dumps({"_id": f"q{i}", "text": query}) + "\n")
    for split, rows in (("train", range(num_train)), ("test", range(num_train, len(pairs)))):
        with open(os.path.join(folder, "qrels", f"{split}.tsv"), "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            f.writelines(f"q{i}\td{i}\t1\n" for i in rows)
    return str(folder)


def tiny_pipeline_config(root, data, vocabulary, **overrides):
    from tf_dualenc.tfx.pipeline_config import PipelineConfig

    values = dict(
        # A tiny random-init T5 trained for six steps cannot be asked to beat BM25: blessed against its start only.
        pipeline_name="tiny", pipeline_root=str(root), data=data, train_steps=6, threshold=0.0, direct_num_workers=1,
        bless_against=["starting_model"],
        train=dict(model="t5", size="tiny", vocabulary=vocabulary, architecture="ade_spl", query_length=16, document_length=32,
                   batch_size=16, learning_rate=0.01, checkpoint_every=100, dropout=0.0),
    )
    values.update(overrides)
    return PipelineConfig(**values)
