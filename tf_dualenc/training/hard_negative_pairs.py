"""Hard negatives for `tf-dualenc train` (`hard_negatives: bm25 | dense | <file>`): mined once per configuration,
cached as a training-pair JSONL file with negatives, then streamed like any pair file. The cache key leaves out the
run's seed (unless the miner is a randomly initialised tower), so the seeds of one experiment share one mined set.

Mining excludes every known positive of the query and the validation queries (they are held out of training),
skips the first `hard_negatives_skip_top` non-positives (the likeliest unlabelled positives, as RocketQA
observes), and draws `num_negatives` per pair, seeded, from the next `hard_negatives_depth`.
"""

import hashlib
import json
import os

from tf_dualenc.mining import MINERS, build_candidate_lists, mine_hard_negatives, read_candidate_lists, write_candidate_lists

_KEY_FIELDS = ("data", "split", "title_separator", "lenient", "validation_fraction", "hard_negatives", "hard_negatives_depth",
               "hard_negatives_skip_top", "num_negatives", "model", "preset", "size", "vocabulary", "architecture",
               "embedding_dim", "query_length", "document_length")


def cache_path(config, precision="float32"):
    """Where the pair file for `config` is cached: a name keyed by every setting that decides its content (for dense
    mining, the `precision` the miner computes in, too)."""
    from tf_dualenc.data.fingerprint import fingerprint_inputs

    key = {name: getattr(config, name) for name in _KEY_FIELDS}
    if config.hard_negatives == "dense" and precision != "float32":
        key["precision"] = precision  # float32 keys stay as they were, so existing caches stay valid
    if config.ignore_identical_ids:
        key["ignore_identical_ids"] = True  # likewise: keys without the rule stay as they were
    # The data's files as they are now: an edited corpus or qrels file at the same path is mined again.
    key["data_files"] = fingerprint_inputs(config.data)
    if config.hard_negatives == "dense" and not config.preset:
        key["seed"] = config.seed  # a randomly initialised miner differs per seed
    if config.hard_negatives not in MINERS:
        # A given file: its identity is its path, size and modification time.
        stat = os.stat(config.hard_negatives)
        key["file"] = [os.path.abspath(config.hard_negatives), stat.st_size, stat.st_mtime_ns]
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]
    folder = config.hard_negatives_cache or config.output_dir
    return os.path.join(folder, f"hard_negatives-{digest}.jsonl")


def prepare_hard_negative_pairs(config, model, print_fn=print, progress=False, on_documents=None):
    """Returns the path of a pair JSONL file with `num_negatives` hard negatives per training pair for `config`,
    mining (or filtering the given file) only when the cache has no such file yet.

    Args:
        config: a validated `TrainConfig` with `hard_negatives` set.
        model: the model being fine-tuned, before training (encodes for `hard_negatives: dense`, in its precision).
        progress: dense mining: progress lines on stderr while the queries and the corpus are encoded.
        on_documents: dense mining: called with ([(id, text)], [N, D] embeddings) of the corpus it encoded (not
            called when the mined set comes from the cache).
    """
    from tf_dualenc.data.validation_split import has_dev_split, load_training_split, validation_query_ids

    from tf_dualenc.precision import model_precision

    path = cache_path(config, model_precision(model) or "float32" if model is not None else "float32")
    if os.path.isfile(path):
        print_fn(f"hard negatives: cached {path}")
        return path
    if config.hard_negatives in MINERS:
        print_fn(f"hard negatives ({config.hard_negatives}): mining for the training queries of {config.data}")
        lists, stats = _mine(config, model, load_training_split, progress, on_documents)
    else:
        # A folder with a dev split validates on it: no training query is held out then.
        carved = config.validation_fraction > 0 and not has_dev_split(config.data)
        lists, stats = _from_file(config, validation_query_ids if carved else None)
    if not lists:
        raise ValueError(f"hard_negatives={config.hard_negatives!r} left no training pair with {config.num_negatives} "
                         f"negative(s) ({stats}); lower num_negatives or raise hard_negatives_depth.")
    write_candidate_lists(lists, path)
    print_fn(f"hard negatives ({config.hard_negatives}): {len(lists)} training pairs with {config.num_negatives} each "
             f"({stats}); cached in {path}")
    return path


def _mine(config, model, load_training_split, progress=False, on_documents=None):
    dataset = load_training_split(config.data, fraction=config.validation_fraction, split=config.split, lenient=config.lenient)
    positives = max(len(docs) for docs in dataset.qrels.values())
    mined = mine_hard_negatives(dataset, retriever=config.hard_negatives, model=model, title_separator=config.title_separator,
                                depth=config.hard_negatives_skip_top + config.hard_negatives_depth + positives,
                                skip_top=config.hard_negatives_skip_top, progress=progress, on_documents=on_documents,
                                batch_size=config.encode_batch_size, ignore_identical_ids=config.ignore_identical_ids)
    mined = {q: candidates[: config.hard_negatives_depth] for q, candidates in mined.items()}
    pairs = list(dataset.training_pairs(config.title_separator))
    # Seed 0, not the run's seed: the mined set is one per configuration, shared by every seed of an experiment.
    lists = build_candidate_lists(pairs, mined, config.num_negatives + 1, seed=0)
    return lists, {"pairs": len(pairs), "dropped_for_too_few_negatives": len(pairs) - len(lists)}


def _from_file(config, validation_query_ids):
    lists, skipped = read_candidate_lists(config.hard_negatives, config.num_negatives + 1, lenient=config.lenient)
    held_out = set()
    if validation_query_ids is not None:
        held_out = validation_query_ids({item.query_id for item in lists}, config.validation_fraction)
        if any(item.query_id is None for item in lists):
            raise ValueError(f"{config.hard_negatives}: validation_fraction > 0 needs a query_id on every record, to keep "
                             "validation queries out of training.")
    kept = [item for item in lists if item.query_id not in held_out]
    return kept, {"records": len(lists), "validation_records_dropped": len(lists) - len(kept), **skipped}
