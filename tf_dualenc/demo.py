"""The main job for now: train a tiny ADE-SPL T5 dual encoder with SamToNe on a built-in sample, and
measure retrieval before and after.

The sample (`tf_dualenc/data/sample_pairs.jsonl`) is 64 hand-written question → answer-sentence pairs;
48 train, 16 are held out. A 2-layer, 64-wide T5 trained for a minute on 48 pairs can memorise them but
cannot learn language, so the held-out numbers stay near chance: the demo shows the machinery working
end to end (tokenisation in the graph, the towers, the loss, Adafactor with linear decay, save/load,
evaluation), not retrieval quality. The real-data training and evaluation path is `tf-dualenc train` /
`evaluate` (see the docs).
"""

import json
import os
import pathlib
import time

SAMPLE = pathlib.Path(__file__).parent / "data" / "sample_pairs.jsonl"
# Next to the repository (../shared from its root), wherever the command runs from.
SHARED_T5_VOCABULARY = pathlib.Path(__file__).resolve().parents[2] / "shared" / "models" / "t5" / "spiece.model"
NUM_TRAIN = 48
BATCH_SIZE = 16


def load_sample(path=SAMPLE):
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
                pairs.append((record["query"], record["document"]))
            except (json.JSONDecodeError, KeyError) as error:
                raise ValueError(f"{path}:{line_number}: bad sample line ({error})") from error
    return pairs


def _resolve_vocabulary(vocabulary, output_dir, texts):
    from tf_dualenc.vocabulary import train_sentencepiece_vocabulary

    if vocabulary:
        return os.path.abspath(vocabulary), "given"
    env = os.environ.get("TF_DUALENC_T5_VOCABULARY")
    if env:
        return os.path.abspath(env), "TF_DUALENC_T5_VOCABULARY"
    if SHARED_T5_VOCABULARY.exists():
        return str(SHARED_T5_VOCABULARY.resolve()), "T5 SentencePiece vocabulary"
    corpus = output_dir / "vocabulary_corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    path = train_sentencepiece_vocabulary(corpus, output_dir / "spiece.model", vocabulary_size=600)
    return str(path), "trained on the sample (no T5 vocabulary found)"


def _evaluate(model, pairs):
    from tf_dualenc.evaluation import evaluate_run, exact_top_k

    queries = model.encode_queries([q for q, _ in pairs])
    documents = model.encode_documents([d for _, d in pairs])
    indices, scores = exact_top_k(queries, documents, k=10)
    run = {str(i): {str(int(j)): float(s) for j, s in zip(row, row_scores)} for i, (row, row_scores) in enumerate(zip(indices, scores))}
    qrels = {str(i): {str(i): 1} for i in range(len(pairs))}
    return evaluate_run(qrels, run, measures=("P@1", "MRR@10", "Recall@10"))["aggregate"]


def run(output_dir="runs/demo", steps=60, seed=0, vocabulary=None, print_fn=print):
    if steps < 1:
        raise ValueError(f"--steps must be >= 1; got {steps}.")
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_dualenc.loading import load_model
    from tf_dualenc.losses import SamToNeLoss
    from tf_dualenc.models import build_t5_dual_encoder

    start = time.perf_counter()
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    pairs = load_sample()
    train, held_out = pairs[:NUM_TRAIN], pairs[NUM_TRAIN:]
    vocab_path, vocab_source = _resolve_vocabulary(vocabulary, output_dir, [t for pair in pairs for t in pair])
    print_fn(f"vocabulary: {vocab_path} ({vocab_source})")

    model = build_t5_dual_encoder(
        "tiny",
        vocabulary=vocab_path,
        architecture="ade_spl",
        query_sequence_length=24,
        document_sequence_length=48,
        dropout=0.0,
    )
    print_fn(f"model: tiny T5 ADE-SPL dual encoder, {model.count_params():,} parameters")
    before = {"train": _evaluate(model, train), "held_out": _evaluate(model, held_out)}

    # The paper's recipe: Adafactor, learning rate decaying linearly to 0, SamToNe on the query side, τ=0.01.
    schedule = keras.optimizers.schedules.PolynomialDecay(1e-2, decay_steps=steps, end_learning_rate=0.0, power=1.0)
    model.compile(optimizer=keras.optimizers.Adafactor(learning_rate=schedule), loss=SamToNeLoss())
    queries, documents = zip(*train)
    dataset = (
        tf.data.Dataset.from_tensor_slices(({"query": list(queries), "document": list(documents)}, np.zeros((len(train), 2))))
        .shuffle(len(train), seed=seed)
        .batch(BATCH_SIZE, drop_remainder=True)
        .repeat()
    )
    train_start = time.perf_counter()
    history = model.fit(dataset, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    train_seconds = time.perf_counter() - train_start
    after = {"train": _evaluate(model, train), "held_out": _evaluate(model, held_out)}

    model_path = output_dir / "model.keras"
    tmp = output_dir / "model.keras.tmp.keras"
    model.save(tmp)
    os.replace(tmp, model_path)
    reloaded = load_model(model_path)
    drift = float(np.abs(reloaded.encode_queries(list(queries)) - model.encode_queries(list(queries))).max())

    report = {
        "model": {"size": "tiny", "architecture": "ade_spl", "parameters": int(model.count_params()), "path": str(model_path)},
        "vocabulary": {"path": vocab_path, "source": vocab_source},
        "training": {
            "loss": "SamToNe (same_tower=query, bidirectional, temperature=0.01)",
            "optimizer": "Adafactor, lr 1e-2 linear decay to 0",
            "steps": steps,
            "batch_size": BATCH_SIZE,
            "train_pairs": len(train),
            "final_epoch_mean_loss": float(history.history["loss"][-1]),
            "seconds": round(train_seconds, 1),
        },
        "metrics_before": before,
        "metrics_after": after,
        "reload_max_abs_diff": drift,
        "seconds_total": round(time.perf_counter() - start, 1),
    }
    (output_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print_fn(f"trained {steps} steps (batch {BATCH_SIZE}) in {train_seconds:.1f}s; mean loss {report['training']['final_epoch_mean_loss']:.3f}")
    print_fn(f"{'split':<10} {'metric':<10} {'before':>8} {'after':>8}")
    for split in ("train", "held_out"):
        for metric in before[split]:
            print_fn(f"{split:<10} {metric:<10} {before[split][metric]:>8.3f} {after[split][metric]:>8.3f}")
    print_fn(f"saved {model_path} (reload max |Δ| = {drift:.1e}); report {output_dir / 'report.json'}")
    return report
