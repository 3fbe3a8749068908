"""The full cascade on SciFact, every choice made on the validation split: hybrid first stage (a fine-tuned dual
encoder from `benchmarks/quality.py` + BM25, interpolation weight chosen on validation), then a MiniLM cross-encoder
re-ranking the top `--rerank-k` (its training lists mined from the training split minus validation; its best step
and its share of the final score chosen on validation from 0, 0.1, ..., 1 — a share of 0 means the re-ranker is not
used, so the cascade cannot score below the hybrid run on validation).

    .venv/bin/python benchmarks/cascade.py --dual-encoder /tmp/tf_dualenc_quality/scifact_strong_sde_samtone_seed0/model.keras

Writes benchmarks/results/quality/scifact_cascade_<name>.json (validation and test metrics of every stage).
"""

import argparse
import json
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "scifact"
RESULTS = HERE / "results" / "quality"
MEASURES = ("NDCG@10", "MRR@10", "P@1", "Recall@100")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dual-encoder", required=True, help="a .keras dual encoder (trained without the validation queries)")
    parser.add_argument("--name", default="samtone_seed0")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--reranker-steps", type=int, default=200)
    parser.add_argument("--reranker-learning-rate", type=float, default=1e-4)
    parser.add_argument("--list-size", type=int, default=4)
    parser.add_argument("--pair-length", type=int, default=256)
    parser.add_argument("--rerank-k", type=int, default=20)
    parser.add_argument("--work-dir", default="/tmp/tf_dualenc_cascade")
    args = parser.parse_args(argv)

    from tf_dualenc.data import load_beir
    from tf_dualenc.data.validation_split import load_training_split, load_validation
    from tf_dualenc.evaluation import evaluate_run
    from tf_dualenc.evaluation.hybrid import choose_interpolation_weight, dense_runs, interpolate_runs, lexical_run
    from tf_dualenc.evaluation.rerank_evaluation import choose_rerank_weight, combine_reranking, cross_encoder_scores
    from tf_dualenc.loading import load_model, load_retrieval_model
    from tf_dualenc.models import build_bert_cross_encoder
    from tf_dualenc.reranking import build_candidate_lists, mine_hard_negatives
    from tf_dualenc.reranking.listwise_training import train_cross_encoder

    work = pathlib.Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    result = {"command": "python benchmarks/cascade.py " + " ".join(sys.argv[1:] if argv is None else argv), "settings": vars(args)}
    train_split = load_training_split(DATA, fraction=args.validation_fraction)
    splits = {"validation": load_validation(DATA, fraction=args.validation_fraction), "test": load_beir(DATA, "test")}

    # The cross-encoder: listwise on BM25-mined lists of training queries only; validation lists pick its best step.
    # Cached by every setting that shapes it, so a re-run with other settings trains its own.
    reranker_path = work / (f"reranker_v{args.validation_fraction}_s{args.reranker_steps}_lr{args.reranker_learning_rate}"
                            f"_l{args.list_size}_p{args.pair_length}.keras")
    if reranker_path.exists():
        reranker = load_model(reranker_path)
    else:
        def lists_for(split, seed):
            mined = mine_hard_negatives(split, retriever="bm25", depth=30, skip_top=1)
            return build_candidate_lists(list(split.training_pairs()), mined, args.list_size, seed=seed)

        lists, validation_lists = lists_for(train_split, 0), lists_for(splits["validation"], 1)
        reranker = build_bert_cross_encoder("all-MiniLM-L6-v2", sequence_length=args.pair_length)
        start = time.perf_counter()
        history = train_cross_encoder(reranker, lists, steps=args.reranker_steps, batch_size=8, learning_rate=args.reranker_learning_rate,
                                      warmup_steps=args.reranker_steps // 10, validation_lists=validation_lists,
                                      validate_every=args.reranker_steps // 4, print_fn=lambda line: print(line, flush=True))
        result["reranker_training"] = {"lists": len(lists), "validation_lists": len(validation_lists), "seconds": round(time.perf_counter() - start, 1),
                                       "validation": history["validation"], "best_step": history["best_step"]}
        reranker.save(reranker_path)

    model = load_retrieval_model(args.dual_encoder)
    dense, _ = dense_runs(model, splits)
    lexical = {name: lexical_run(split) for name, split in splits.items()}
    weight, _ = choose_interpolation_weight(splits["validation"].qrels, dense["validation"], lexical["validation"])
    hybrid = {name: interpolate_runs(dense[name], lexical[name], weight, depth=100) for name in splits}
    cross = {}
    for name, split in splits.items():
        start = time.perf_counter()
        cross[name] = cross_encoder_scores(hybrid[name], split.queries, split.document_text, reranker.score_pairs, args.rerank_k)
        result.setdefault("rerank_ms_per_query", {})[name] = round(1000 * (time.perf_counter() - start) / len(split.queries), 1)
    rerank_weight, curve = choose_rerank_weight(splits["validation"].qrels, hybrid["validation"], cross["validation"])
    result.update(hybrid_weight=weight, rerank_weight=rerank_weight, rerank_weight_curve=curve, rerank_k=args.rerank_k)
    result["metrics"] = {}
    for name, split in splits.items():
        stages = {"dense": dense[name], "bm25": lexical[name], "hybrid": hybrid[name],
                  "cascade_cross_encoder_only": combine_reranking(hybrid[name], cross[name], 1.0),
                  "cascade": combine_reranking(hybrid[name], cross[name], rerank_weight)}
        result["metrics"][name] = {stage: evaluate_run(split.qrels, run, measures=MEASURES)["aggregate"] for stage, run in stages.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"scifact_cascade_{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    for name, stages in result["metrics"].items():
        print(name + ": " + ", ".join(f"{stage} {m['NDCG@10']:.4f}" for stage, m in stages.items()), flush=True)
    print(f"hybrid weight {weight}, re-rank weight {rerank_weight} (both chosen on validation)")


if __name__ == "__main__":
    main()
