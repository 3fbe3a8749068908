"""Teacher scores for distillation (`TrainConfig.distillation`): a trained cross-encoder scores every training pair's
positive and hard negatives once, before training, and the scores are cached as a pair file (the training pairs,
mined or given, with `teacher_scores` added to each record).

Scoring once is what makes distillation affordable on a CPU: the cross-encoder reads every (query, candidate) pair
at its full length, so scoring the lists inside the training step would cost more than the step itself. The cache
key is the pair files and the cross-encoder as they are on disk (path, size, modification time), so the seeds of one
experiment share one scored file and a retrained cross-encoder is scored again.
"""

import hashlib
import json
import os
import time

from tf_dualenc.atomic_write import atomic_writer
from tf_dualenc.data.fingerprint import fingerprint_inputs
from tf_dualenc.progress import Progress


def cache_path(config, files):
    """Where the scored copy of the pair `files` for `config.distillation` is cached: `teacher_scores-<key>.jsonl` in
    `hard_negatives_cache` (default: the output folder), beside the mined negatives."""
    key = {"pairs": fingerprint_inputs(*files), "teacher": fingerprint_inputs(config.distillation),
           "num_negatives": config.num_negatives, "lenient": config.lenient}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return os.path.join(config.hard_negatives_cache or config.output_dir, f"teacher_scores-{digest}.jsonl")


def prepare_teacher_scores(config, data, data_format="auto", print_fn=print, batch_size=32, progress=False):
    """Returns the path of a JSONL pair file holding the pairs of `data` with `teacher_scores` (the cross-encoder's
    logits of the positive, then of each of the first `num_negatives` negatives) on every record, scoring only when
    the cache has no such file yet.

    Args:
        config: a validated `TrainConfig` with `distillation` (a cross-encoder `.keras` file or export) set.
        data, data_format: pair files with at least `num_negatives` negatives per record, as `TrainConfig.data`
            takes them (a path, comma list or glob; what `prepare_hard_negative_pairs` returns).
        progress: a progress line on stderr every few seconds while the pairs are scored.
    """
    import collections

    from tf_dualenc.data.pair_records import iter_pair_records, resolve_pair_files

    files = resolve_pair_files(data)
    path = cache_path(config, files)
    if os.path.isfile(path):
        print_fn(f"teacher scores: cached {path}")
        return path
    from tf_dualenc.loading import load_reranker

    # Validated as training reads them, so a bad record fails here with its file and line, before any scoring.
    skipped = collections.Counter()
    records = list(iter_pair_records(files, data_format, lenient=config.lenient, skipped=skipped,
                                     num_negatives=config.num_negatives))
    if not records:
        raise ValueError(f"{data}: no training pairs to score for distillation ({dict(skipped)} skipped).")
    lists = [[record.document, *record.negatives] for record in records]
    score_pairs = load_reranker(config.distillation)
    start = time.perf_counter()
    queries = [r.query for r, candidates in zip(records, lists) for _ in candidates]
    candidates = [candidate for candidates in lists for candidate in candidates]
    # Scored a chunk at a time, so a long scoring shows its progress (a line on stderr every few seconds).
    meter = Progress(len(queries), "pairs", label="teacher scoring", enabled=progress)
    flat, chunk = [], 16 * batch_size
    for begin in range(0, len(queries), chunk):
        flat.extend(score_pairs(queries[begin:begin + chunk], candidates[begin:begin + chunk], batch_size=batch_size))
        meter.update(len(queries[begin:begin + chunk]))
    width = 1 + config.num_negatives
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_writer(path) as f:
        for i, record in enumerate(records):
            f.write(json.dumps({"query_id": record.query_id, "query": record.query, "document_id": record.document_id,
                                "document": record.document, "negatives": list(record.negatives),
                                "teacher_scores": [round(float(s), 6) for s in flat[i * width : (i + 1) * width]]},
                               ensure_ascii=False) + "\n")
    print_fn(f"teacher scores ({config.distillation}): {len(records)} lists of {width} scored in "
             f"{time.perf_counter() - start:.1f} s" + (f" ({dict(skipped)} skipped)" if skipped else "") + f"; cached in {path}")
    return path
