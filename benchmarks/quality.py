"""Retrieval quality with honest selection: fine-tune all-MiniLM-L6-v2 per (architecture, loss, seed) on the training
split minus a validation split carved from it, then score dense, BM25 and hybrid retrieval on validation and test.

    .venv/bin/python benchmarks/quality.py [--dataset scifact|squad_reqa] [--recipe strong|plain]
                                           [--architectures sde,ade_spl] [--losses samtone,in_batch] [--seeds 0,1,2]

Everything that could be chosen (the hybrid interpolation weight; nothing else is tuned per run) is chosen on the
validation split; test numbers are reported, never used. The recipes below were fixed before any run of this script.
Each (dataset, recipe, architecture, loss, seed) lands in benchmarks/results/quality/ as soon as it is measured, with
per-query test and validation scores for the paired tests of `benchmarks/compare_losses.py`. A cell whose result file
exists is skipped, so the script can be re-run after an interruption.
"""

import argparse
import dataclasses
import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
RESULTS = HERE / "results" / "quality"
MEASURES = ("NDCG@10", "MRR@10", "P@1", "Recall@100")
PER_QUERY = ("NDCG@10", "MRR@10", "P@1")

# Fixed before any measurement (not tuned on test): MiniLM's usual fine-tuning settings (sentence-transformers' MNRL
# scale 20 = temperature 0.05, lr 2e-5, 10% warm-up), 256 document tokens, 3 epochs, and for "strong" one hard
# negative per pair drawn from the starting model's top 8 non-positives after skipping the first (RocketQA's
# advice: the very top "negatives" are often unlabelled positives).
RECIPES = {
    "strong": {"epochs": 3, "warmup_fraction": 0.1, "hard_negatives": "dense", "num_negatives": 1},
    "plain": {"epochs": 3, "warmup_fraction": 0.0, "hard_negatives": None, "num_negatives": 0},
}
# Each piece of "strong" measured on its own: the same recipe with exactly one piece taken out or changed (defined
# before any of them ran). `settings` override COMMON; "mixed_precision" and "mini_batch_size" change only how the
# step computes, so hard negatives are mined by the same float32 model as for "strong". The last two rows go the other
# way, more of the two pieces the leave-one-out rows found to matter most (updates and hard negatives); they were
# defined after those rows and are judged on validation like everything else.
ABLATIONS = {
    "strong_no_warmup": {"warmup_fraction": 0.0},
    "strong_no_hard_negatives": {"hard_negatives": None, "num_negatives": 0},
    "strong_1_epoch": {"epochs": 1},
    "strong_128_tokens": {"settings": {"document_length": 128}},
    "strong_bfloat16": {"settings": {"mixed_precision": "bfloat16"}},
    "strong_batch_128_cached": {"settings": {"batch_size": 128, "mini_batch_size": 32}},
    # Issue 16's batch-256 fine-tune: the paper's scale of batch in MiniLM's memory; on SciFact's ~640 training pairs
    # this is 2 updates per epoch, so it shows the cached step at work, not a better recipe.
    "strong_batch_256_cached": {"settings": {"batch_size": 256, "mini_batch_size": 32}},
    "strong_5_epochs": {"epochs": 5},
    "strong_3_negatives": {"num_negatives": 3},
    # Distillation from the cascade's cross-encoder (`--teacher`, trained on the same training queries, never on
    # validation): listwise KL over each pair's positive and hard negative, weight 1, teacher temperature 1 (defaults).
    "strong_distilled": {"teacher": True},
    # Issue 25's `quick` recipe (what `make demo` trains): the strong recipe cut to fit an 8-minute demo on 2 cores, so
    # 1-2 epochs in bfloat16, with a higher learning rate to make up for fewer updates. A small grid, defined before
    # any of it ran; the cell chosen is the best on validation.
    "quick_2_epochs": {"epochs": 2, "settings": {"mixed_precision": "bfloat16"}},
    "quick_1_epoch_lr5e-5": {"epochs": 1, "settings": {"mixed_precision": "bfloat16", "learning_rate": 5e-5}},
    "quick_2_epochs_lr5e-5": {"epochs": 2, "settings": {"mixed_precision": "bfloat16", "learning_rate": 5e-5}},
    "quick_1_epoch_lr1e-4": {"epochs": 1, "settings": {"mixed_precision": "bfloat16", "learning_rate": 1e-4}},
}
RECIPES.update({name: {**RECIPES["strong"], **change} for name, change in ABLATIONS.items()})
# The package's recipe files (tf_dualenc/recipes/) and the cell of this script each one is (tests/test_benchmark_stats.py
# checks that every key agrees, but the precision: a recipe file says `auto`).
RECIPE_FILES = {"strong": ("strong_5_epochs", "ade_spl", "samtone"), "quick": ("quick_2_epochs_lr5e-5", "ade_spl", "samtone")}
STEP_ONLY = ("mixed_precision", "mini_batch_size")
COMMON = {"model": "bert", "preset": "all-MiniLM-L6-v2", "query_length": 64, "document_length": 256, "batch_size": 32,
          "optimizer": "adam", "learning_rate": 2e-5, "temperature": 0.05, "validation_fraction": 0.2}
VARIANTS = {
    "in_batch": {"loss": "in_batch"},
    "samtone": {"loss": "samtone", "same_tower": "query"},
    "samtone_both": {"loss": "samtone", "same_tower": "both"},
    "pair": {"loss": "pair", "mask_duplicates": False},
}
DATASETS = {"scifact": (DATA / "scifact", DATA / "scifact"), "squad_reqa": (DATA / "squad_reqa_train", DATA / "squad_reqa_test")}
# Sequence lengths per data set, from the training split only: SciFact abstracts need COMMON's 256 document tokens;
# SQuAD-ReQA answer sentences (with their article title) are 25 words on average and 48 at the 95th percentile, its
# questions at most 30 words: 64 and 32 tokens cover nearly all of them at a quarter of the cost.
LENGTHS = {"scifact": {}, "squad_reqa": {"query_length": 32, "document_length": 64}}


def cell_settings(recipe, architecture, variant, dataset="scifact"):
    """The TrainConfig keys a cell of this script trains with (data and output locations aside): what a recipe file
    must hold to be that cell."""
    spec = RECIPES[recipe]
    return {**COMMON, **LENGTHS[dataset], **spec.get("settings", {}), "architecture": architecture, **VARIANTS[variant],
            "epochs": spec["epochs"], "warmup_fraction": spec["warmup_fraction"], "hard_negatives": spec["hard_negatives"],
            "num_negatives": spec["num_negatives"]}


def _per_query(qrels, run):
    from tf_dualenc.evaluation import evaluate_run

    scores = evaluate_run(qrels, run, measures=MEASURES)
    return scores["aggregate"], {m: {q: round(v[m], 5) for q, v in scores["per_query"].items()} for m in PER_QUERY}


def score_retrievers(splits, dense, lexical):
    """Dense, BM25, RRF and validation-weighted interpolation, on each split; returns (metrics, per-query)."""
    from tf_dualenc.evaluation.hybrid import choose_interpolation_weight, interpolate_runs, reciprocal_rank_fusion

    weight, curve = None, None
    if "validation" in splits:  # the interpolation weight is chosen there, so without it there is no interpolation
        weight, curve = choose_interpolation_weight(splits["validation"].qrels, dense["validation"], lexical["validation"])
    metrics, per_query = {}, {}
    for name, split in splits.items():
        runs = {"dense": dense[name], "bm25": lexical[name],
                "hybrid_rrf": reciprocal_rank_fusion([dense[name], lexical[name]], depth=100)}
        if weight is not None:
            runs["hybrid_interpolate"] = interpolate_runs(dense[name], lexical[name], weight, depth=100)
        for method, run in runs.items():
            metrics.setdefault(name, {})[method], per_query.setdefault(name, {})[method] = _per_query(split.qrels, run)
    return metrics, per_query, {"interpolation_weight": weight, "validation_curve": curve}


def _pair_file(dataset, path):
    """The training pairs of a `BeirDataset` as a pair JSONL file (with query ids, so it can be sampled by query)."""
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for query_id, query, document_id, document in dataset.training_pairs():
                f.write(json.dumps({"query_id": query_id, "query": query, "document_id": document_id, "document": document},
                                   ensure_ascii=False) + "\n")
        tmp.replace(path)
    return str(path)


def _sampled_pairs(path, count, work):
    """A pair file holding every pair of a deterministic sample of `count` of `path`'s query ids."""
    from tf_dualenc.data.validation_split import sample_query_ids

    records = [json.loads(line) for line in open(path, encoding="utf-8")]
    kept = sample_query_ids({r["query_id"] for r in records}, count)
    out = work / f"{pathlib.Path(path).stem}-{count}-queries.jsonl"
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            if record["query_id"] in kept:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return str(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="scifact")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="strong")
    parser.add_argument("--architectures", default="sde", help="comma list of sde, ade, ade_spl")
    parser.add_argument("--losses", default="samtone,in_batch", help=f"comma list of {sorted(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--zero-shot", action="store_true", help="also score the untrained model (once per dataset)")
    parser.add_argument("--max-train-queries", type=int, default=None,
                        help="train on a deterministic sample of this many training queries (after the validation split "
                             "is carved and hard negatives mined), to fit a large set into a CPU session")
    parser.add_argument("--max-test-queries", type=int, default=None,
                        help="score a deterministic sample of this many test queries (against the whole test corpus)")
    parser.add_argument("--skip-validation", action="store_true",
                        help="score the test split only (it halves the encoding on a data set whose validation split has "
                             "its own corpus); no hybrid interpolation then, since its weight is chosen on validation")
    parser.add_argument("--teacher", default=None,
                        help="the cross-encoder .keras that recipes with distillation distil from (benchmarks/cascade.py "
                             "trains one on the training split minus validation)")
    parser.add_argument("--work-dir", default="/tmp/tf_dualenc_quality")
    args = parser.parse_args(argv)
    command = "python benchmarks/quality.py " + " ".join(sys.argv[1:] if argv is None else argv)

    from tf_dualenc.data import load_beir
    from tf_dualenc.data.validation_split import load_training_split, load_validation, sample_query_ids
    from tf_dualenc.evaluation.hybrid import dense_runs, lexical_run
    from tf_dualenc.training import TrainConfig, train
    from tf_dualenc.training.hard_negative_pairs import prepare_hard_negative_pairs
    from tf_dualenc.training.trainer import build_model

    train_path, test_path = DATASETS[args.dataset]
    recipe = RECIPES[args.recipe]
    if recipe.get("teacher") and not args.teacher:
        parser.error(f"--recipe {args.recipe} distils from a cross-encoder: give it with --teacher PATH.keras")
    common = {**COMMON, **LENGTHS[args.dataset], **recipe.get("settings", {})}
    test = load_beir(test_path, "test")
    if args.max_test_queries:
        kept = sample_query_ids(test.qrels, args.max_test_queries)
        test = dataclasses.replace(test, qrels={q: d for q, d in test.qrels.items() if q in kept},
                                   queries={q: test.queries[q] for q in kept})
    splits = {"test": test} if args.skip_validation else {
        "validation": load_validation(train_path, fraction=common["validation_fraction"]), "test": test}
    bm25_runs = {name: lexical_run(split) for name, split in splits.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(args.work_dir)

    def save(name, result):
        result["command"] = command
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")

    if args.zero_shot and not (RESULTS / f"{args.dataset}_zero_shot.json").exists():
        from tf_dualenc.models import build_bert_dual_encoder

        model = build_bert_dual_encoder("all-MiniLM-L6-v2", architecture="sde", query_sequence_length=common["query_length"],
                                        document_sequence_length=common["document_length"])
        runs, timings = dense_runs(model, splits)
        metrics, per_query, fusion = score_retrievers(splits, runs, bm25_runs)
        save(f"{args.dataset}_zero_shot", {"model": "all-MiniLM-L6-v2 (zero-shot)", "metrics": metrics, "per_query": per_query,
                                           "fusion": fusion, "timings": timings})
        print(f"{args.dataset} zero-shot: " + json.dumps({s: {m: round(v["NDCG@10"], 4) for m, v in r.items()} for s, r in metrics.items()}),
              flush=True)
        del model

    for seed in (int(s) for s in args.seeds.split(",")):
        for architecture in args.architectures.split(","):
            for variant in args.losses.split(","):
                name = f"{args.dataset}_{args.recipe}_{architecture}_{variant}_seed{seed}"
                if (RESULTS / f"{name}.json").exists():
                    print(f"{name}: exists, skipped", flush=True)
                    continue
                base = dict(common, data=str(train_path), architecture=architecture, seed=seed, **VARIANTS[variant],
                            **({"distillation": args.teacher} if recipe.get("teacher") else {}))
                data = {}
                if recipe["hard_negatives"]:
                    # Mined once per (dataset, architecture) with the starting model, validation queries left out.
                    miner = {key: value for key, value in base.items() if key not in STEP_ONLY}
                    mining = TrainConfig(**{**miner, "loss": "in_batch"}, hard_negatives=recipe["hard_negatives"],
                                         num_negatives=recipe["num_negatives"], hard_negatives_cache=str(work / "hard_negatives"),
                                         output_dir=str(work / "mining")).validate()
                    starting_model = None if recipe["hard_negatives"] == "bm25" else build_model(mining)
                    data = {"data": prepare_hard_negative_pairs(mining, starting_model), "num_negatives": recipe["num_negatives"],
                            "validation_fraction": 0.0}
                    del starting_model
                if args.max_train_queries:
                    source = data.get("data") or _pair_file(load_training_split(train_path, fraction=common["validation_fraction"]),
                                                            work / f"{args.dataset}_training_pairs.jsonl")
                    data = {**data, "data": _sampled_pairs(source, args.max_train_queries, work), "validation_fraction": 0.0}
                if data:
                    pairs = sum(1 for _ in open(data["data"], encoding="utf-8"))
                else:
                    from tf_dualenc.data.pairs import load_training_pairs

                    pairs = len(load_training_pairs(str(train_path), validation_fraction=common["validation_fraction"]))
                steps = recipe["epochs"] * (pairs // common["batch_size"])
                config = TrainConfig(**{**base, **data}, steps=steps, warmup_steps=int(recipe["warmup_fraction"] * steps),
                                     checkpoint_every=steps, log_every=1, output_dir=str(work / name)).validate()
                summary, model = train(config, progress=False)
                runs, timings = dense_runs(model, splits)
                metrics, per_query, fusion = score_retrievers(splits, runs, bm25_runs)
                save(name, {"dataset": args.dataset, "recipe": args.recipe, "recipe_settings": {**common, **recipe},
                            "test_queries": len(splits["test"].qrels), "validation_queries": len(splits["validation"].qrels) if "validation" in splits else 0,
                            "architecture": architecture, "loss": variant, "seed": seed, "training_pairs": pairs,
                            "metrics": metrics, "per_query": per_query, "fusion": fusion, "timings": timings,
                            "training": {"config": config.to_dict(), "summary": summary}})
                print(f"{name}: " + " ".join(f"{s}/{m} {r[m]['NDCG@10']:.4f}" for s, r in metrics.items() for m in ("dense", "hybrid_rrf"))
                      + f" (train {summary['seconds_this_run']}s)", flush=True)
                del model


if __name__ == "__main__":
    main()
