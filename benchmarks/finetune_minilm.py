"""Fine-tune all-MiniLM-L6-v2 with each loss, then evaluate: SciFact train → test, or squad_reqa_train → squad_reqa_test.

    .venv/bin/python benchmarks/finetune_minilm.py [--dataset scifact|squad_reqa] [--losses samtone,in_batch,samtone_both,pair]
                                                   [--steps 56] [--seeds 0]

Same hyperparameters for every variant (below); each result lands in
benchmarks/results/finetune_minilm_<variant>_seed<k>.json (SciFact) or
finetune_minilm_squad_reqa_<variant>_seed<k>.json as soon as it is measured.
"""

import argparse
import json
import pathlib
import sys
import time

import tf_dualenc  # noqa: F401

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"

VARIANTS = {
    "in_batch": {"loss": "in_batch"},
    "samtone": {"loss": "samtone", "same_tower": "query"},
    "samtone_both": {"loss": "samtone", "same_tower": "both"},
    "pair": {"loss": "pair", "mask_duplicates": False},
}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=["scifact", "squad_reqa"], default="scifact")
    parser.add_argument("--losses", default="samtone,in_batch,samtone_both,pair")
    parser.add_argument("--steps", type=int, default=56)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-length", type=int, default=128, help="document tokens while training")
    parser.add_argument("--eval-length", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--work-dir", default="/tmp/tf_dualenc_bench")
    args = parser.parse_args(argv)

    from tf_dualenc.loading import load_retrieval_model
    from tf_dualenc.data import load_beir
    from tf_dualenc.evaluation import evaluate_retrieval
    from tf_dualenc.training import TrainConfig, train

    train_data, test_data = (DATA / "scifact", DATA / "scifact") if args.dataset == "scifact" else (
        DATA / "squad_reqa_train", DATA / "squad_reqa_test")
    prefix = "" if args.dataset == "scifact" else "squad_reqa_"
    test = load_beir(test_data, "test")
    for seed in (int(s) for s in args.seeds.split(",")):
        for variant in args.losses.split(","):
            out = pathlib.Path(args.work_dir) / f"{prefix}{variant}_seed{seed}_{args.steps}steps"
            config = TrainConfig(
                data=str(train_data), split="train", model="bert", preset="all-MiniLM-L6-v2", architecture="sde",
                query_length=64, document_length=args.train_length, batch_size=args.batch_size, steps=args.steps,
                learning_rate=args.learning_rate, optimizer=args.optimizer, temperature=args.temperature, seed=seed,
                checkpoint_every=max(args.steps // 4, 1), log_every=1, output_dir=str(out), **VARIANTS[variant],
            ).validate()
            summary, _ = train(config, progress=False)
            model = load_retrieval_model(summary["model"], 64, args.eval_length)
            start = time.perf_counter()
            report = evaluate_retrieval(test, model=model, model_description=f"all-MiniLM-L6-v2 fine-tuned ({variant})")
            report["training"] = {"config": config.to_dict(), "summary": summary}
            report["command"] = "python benchmarks/finetune_minilm.py " + " ".join(sys.argv[1:] if argv is None else argv)
            (HERE / "results" / f"finetune_minilm_{prefix}{variant}_seed{seed}.json").write_text(json.dumps(report, indent=2) + "\n")
            metrics = " ".join(f"{k}={v:.4f}" for k, v in report["metrics"].items())
            print(f"{args.dataset} {variant:<14} seed={seed} {metrics} train {summary['seconds_this_run']}s "
                  f"({summary['pairs_per_second']} pairs/s) eval {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
