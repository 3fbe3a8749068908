"""Re-ranking and RocketQA-style training on SciFact / SQuAD-ReQA with the pretrained all-MiniLM-L6-v2 (2 CPU cores).

Rows (NDCG@10 / MRR@10 / P@1 on the test split, latency per query of each stage):
  A  dual encoder alone: all-MiniLM-L6-v2 fine-tuned with SamToNe (`benchmarks/finetune_minilm.py`, its model file)
  B  A + cross-encoder re-ranking of the top `--rerank-k`: a MiniLM cross-encoder trained listwise on the train split
     (positive + BM25-mined negatives)
  C  dual encoder trained with denoised hard negatives: negatives mined by A from the corpus (known positives
     excluded), those the cross-encoder of B scores as likely positive dropped (RocketQA), then SamToNe training from
     the pretrained MiniLM with one hard negative per pair, as many steps as A
  D  RocketQAv2 joint training from A and B: candidate lists of positive + hybrid negatives (denoised and undenoised
     mined ones), dynamic listwise distillation; the dual encoder alone and with its jointly trained re-ranker

    python benchmarks/rerank_benchmark.py --dataset scifact --dual-encoder /tmp/tf_dualenc_bench/samtone_seed0/model.keras

Results land in benchmarks/results/rerank_<dataset>.json after every row (a killed run keeps what it finished).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import time

import tf_dualenc  # noqa: F401  (environment shims before TensorFlow)

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=["scifact", "squad_reqa"], default="scifact")
    parser.add_argument("--dual-encoder", required=True, help="row A's model (.keras), from benchmarks/finetune_minilm.py")
    parser.add_argument("--dual-encoder-steps", type=int, default=56, help="A's training steps (row C trains as many)")
    parser.add_argument("--reranker-steps", type=int, default=300)
    parser.add_argument("--reranker-learning-rate", type=float, default=1e-4, help="peak; linear warm-up over a tenth of the steps")
    parser.add_argument("--joint-steps", type=int, default=40)
    parser.add_argument("--list-size", type=int, default=4)
    parser.add_argument("--rerank-k", type=int, default=20)
    parser.add_argument("--max-queries", type=int, default=None, help="test queries evaluated (default: all)")
    parser.add_argument("--pair-length", type=int, default=256, help="cross-encoder tokens (query + document)")
    parser.add_argument("--document-length", type=int, default=256)
    parser.add_argument("--train-document-length", type=int, default=128)
    parser.add_argument("--denoise-threshold", type=float, default=0.9)
    parser.add_argument("--rows", default="AB,C,D")
    parser.add_argument("--rerank-rows", default="AB,C,D", help="rows evaluated with re-ranking too (the others: dual encoder only)")
    parser.add_argument("--train-queries", type=int, default=None,
                        help="mine, denoise and build lists for a seeded sample of this many training queries (default: all)")
    parser.add_argument("--work-dir", default="/tmp/tf_dualenc_bench_rerank")
    parser.add_argument("--data-dir", default=None, help="one BEIR folder with train and test splits instead of --dataset's (smoke runs)")
    args = parser.parse_args(argv)

    import numpy as np

    from tf_dualenc.loading import load_model, load_retrieval_model
    from tf_dualenc.data import load_beir
    from tf_dualenc.evaluation import evaluate_reranking
    from tf_dualenc.models import build_bert_cross_encoder
    from tf_dualenc.reranking import build_candidate_lists, denoise_candidates, hybrid_negatives, mine_hard_negatives, write_candidate_lists
    from tf_dualenc.reranking.listwise_training import train_cross_encoder, train_jointly
    from tf_dualenc.training import TrainConfig, train

    train_dir, test_dir = (DATA / "scifact", DATA / "scifact") if args.dataset == "scifact" else (
        DATA / "squad_reqa_train", DATA / "squad_reqa_test")
    if args.data_dir:
        train_dir = test_dir = pathlib.Path(args.data_dir)
    work = pathlib.Path(args.work_dir) / args.dataset
    work.mkdir(parents=True, exist_ok=True)
    train_split, test = load_beir(train_dir, "train"), load_beir(test_dir, "test")
    out_path = (work / "results.json") if args.data_dir else HERE / "results" / f"rerank_{args.dataset}.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results.update(command="python benchmarks/rerank_benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv),
                   machine_cpus=os.cpu_count(), dataset=args.dataset)

    def save(row, report, **extra):
        results[row] = dict(report, **extra)
        out_path.write_text(json.dumps(results, indent=2) + "\n")
        first, second = report.get("retrieval"), report.get("reranked")
        print(f"{args.dataset} row {row}: retrieval {first}" + (f" | re-ranked {second}" if second else "")
              + f" | latency {report.get('latency_ms_per_query')}", flush=True)

    def evaluate(model, scorer, row, **extra):
        if row not in args.rerank_rows.split(","):
            from tf_dualenc.evaluation import evaluate_retrieval

            subset = test if args.max_queries is None else dataclasses.replace(
                test, queries={q: test.queries[q] for q in list(test.queries)[: args.max_queries]})
            subset = dataclasses.replace(subset, qrels={q: test.qrels[q] for q in subset.queries if q in test.qrels})
            plain = evaluate_retrieval(subset, model=model, output_dir=str(work / f"eval_{row}"))
            report = {"retrieval": plain["metrics"], "latency_ms_per_query": {"retrieval": round(
                1000 * (plain["timings"]["encode_queries_seconds"] + plain["timings"]["search_seconds"]) / len(subset.queries), 3)},
                "config": {"k": 100, "queries": len(subset.queries), "documents": len(subset.corpus)}}
            save(row, report, **extra)
            return report
        report = evaluate_reranking(test, model=model, scorer=scorer, k=100, rerank_k=args.rerank_k, max_queries=args.max_queries,
                                    output_dir=str(work / f"eval_{row}"))
        save(row, report, **extra)
        return report

    dual_encoder = load_retrieval_model(args.dual_encoder, 64, args.document_length)
    pairs = list(train_split.training_pairs())
    train_queries = None
    if args.train_queries:
        rng = np.random.default_rng(0)
        query_ids = sorted(train_split.qrels)
        train_queries = [query_ids[i] for i in sorted(rng.choice(len(query_ids), min(args.train_queries, len(query_ids)), replace=False))]
        chosen = set(train_queries)
        pairs = [p for p in pairs if p[0] in chosen]

    # B's cross-encoder: listwise on positive + BM25 negatives of the train split.
    reranker_path = work / "reranker.keras"
    if reranker_path.exists():
        reranker = load_model(reranker_path)
    else:
        bm25_negatives = mine_hard_negatives(train_split, retriever="bm25", depth=30)
        lists = build_candidate_lists(pairs, bm25_negatives, args.list_size, seed=0)
        reranker = build_bert_cross_encoder("all-MiniLM-L6-v2", sequence_length=args.pair_length)
        start = time.perf_counter()
        losses = train_cross_encoder(reranker, lists, steps=args.reranker_steps, batch_size=8, learning_rate=args.reranker_learning_rate,
                                     warmup_steps=args.reranker_steps // 10)["loss"]
        results["reranker_training"] = {"lists": len(lists), "list_size": args.list_size, "steps": args.reranker_steps, "batch_size": 8,
                                        "learning_rate": args.reranker_learning_rate, "warmup_steps": args.reranker_steps // 10,
                                        "pair_length": args.pair_length, "seconds": round(time.perf_counter() - start, 1),
                                        "first_loss": losses[0], "last_10_loss": float(np.mean(losses[-10:]))}
        reranker.save(reranker_path)
    if "AB" in args.rows:
        evaluate(dual_encoder, reranker.score_pairs, "AB", models={"dual_encoder": args.dual_encoder, "reranker": str(reranker_path)})

    # Mined negatives for C and D: A's top 30 minus known positives, the first one skipped; then denoised by B.
    mined_path = work / "mined.json"
    if mined_path.exists():
        mined = json.loads(mined_path.read_text())
    else:
        start = time.perf_counter()
        dense = mine_hard_negatives(train_split, retriever="dense", model=dual_encoder, depth=30, skip_top=1, queries=train_queries)
        mined = {}
        dropped_total = kept_total = 0
        for qid, candidates in dense.items():
            kept, dropped = denoise_candidates(train_split.queries[qid], candidates[:8], reranker.score_pairs, args.denoise_threshold)
            mined[qid] = {"denoised": [[d, t] for d, t, _ in kept], "undenoised": [[d, t] for d, t in candidates[:8]]}
            kept_total, dropped_total = kept_total + len(kept), dropped_total + len(dropped)
        mined_path.write_text(json.dumps(mined))
        results["denoising"] = {"threshold": args.denoise_threshold, "candidates_scored": kept_total + dropped_total,
                                "dropped": dropped_total, "seconds": round(time.perf_counter() - start, 1)}
        print(f"denoising: dropped {dropped_total} of {kept_total + dropped_total} mined negatives", flush=True)

    if "C" in args.rows:
        lists = build_candidate_lists(pairs, {q: [tuple(x) for x in v["denoised"]] for q, v in mined.items()}, 2, seed=0)
        pair_file = write_candidate_lists(lists, str(work / "denoised_pairs.jsonl"))
        config = TrainConfig(
            data=pair_file, model="bert", preset="all-MiniLM-L6-v2", architecture="sde", query_length=64,
            document_length=args.train_document_length, loss="samtone", same_tower="query", temperature=0.05, optimizer="adam",
            learning_rate=2e-5, batch_size=32, steps=args.dual_encoder_steps, num_negatives=1, checkpoint_every=args.dual_encoder_steps,
            output_dir=str(work / "denoised_hard_negatives"), log_every=1,
        ).validate()
        summary, _ = train(config, progress=False)
        model_c = load_retrieval_model(summary["model"], 64, args.document_length)
        evaluate(model_c, reranker.score_pairs, "C", training={"pairs": len(lists), "seconds": summary["seconds_this_run"],
                                                             "steps": summary["steps_done"]})
        del model_c

    if "D" in args.rows:
        # Hybrid data augmentation: per list, denoised negatives first, then undenoised ones to fill it.
        hybrid = {qid: hybrid_negatives([tuple(x) for x in v["denoised"]], [tuple(x) for x in v["undenoised"]], args.list_size - 1)
                  for qid, v in mined.items()}
        lists = build_candidate_lists(pairs, hybrid, args.list_size, seed=1)
        joint_reranker = load_model(reranker_path)
        start = time.perf_counter()
        history = train_jointly(dual_encoder, joint_reranker, lists, steps=args.joint_steps, batch_size=8)
        evaluate(dual_encoder, joint_reranker.score_pairs, "D", training={
            "lists": len(lists), "steps": args.joint_steps, "seconds": round(time.perf_counter() - start, 1),
            "kl_first": history["kl"][0], "kl_last_10": float(np.mean(history["kl"][-10:]))})


if __name__ == "__main__":
    main()
