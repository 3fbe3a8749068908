"""The paper's architecture question without pretraining: T5 towers from random init (real T5 vocabulary),
SDE vs ADE-SPL × in-batch softmax vs SamToNe, trained on squad_reqa_train, evaluated on squad_reqa_test.

    .venv/bin/python benchmarks/t5_random_init_squad.py [--size tiny] [--steps 300] [--batch-size 128]

Each result lands in benchmarks/results/t5_<size>_<architecture>_<loss>_<steps>steps_squad.json as soon as it is measured.
"""

import argparse
import json
import pathlib
import sys
import time

import tf_dualenc  # noqa: F401

HERE = pathlib.Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--variants", default="sde:in_batch,sde:samtone,ade_spl:in_batch,ade_spl:samtone")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="/tmp/tf_dualenc_bench_t5")
    args = parser.parse_args(argv)

    from tf_dualenc.data import load_beir
    from tf_dualenc.loading import load_model
    from tf_dualenc.evaluation import evaluate_retrieval
    from tf_dualenc.training import TrainConfig, train

    test = load_beir(SHARED / "data" / "squad_reqa_test", "test")
    for variant in args.variants.split(","):
        architecture, loss = variant.split(":")
        config = TrainConfig(
            data=str(SHARED / "data" / "squad_reqa_train"), split="train", model="t5", size=args.size,
            vocabulary=str(SHARED / "models" / "t5" / "spiece.model"), architecture=architecture, loss=loss,
            query_length=32, document_length=64, dropout=0.0, batch_size=args.batch_size, steps=args.steps,
            learning_rate=args.learning_rate, seed=args.seed, checkpoint_every=args.steps, log_every=10,
            output_dir=f"{args.work_dir}/{args.size}_{architecture}_{loss}_{args.steps}steps",
        ).validate()
        summary, _ = train(config, progress=False)
        model = load_model(summary["model"])
        start = time.perf_counter()
        report = evaluate_retrieval(test, model=model, measures=("P@1", "MRR@10", "NDCG@10", "Recall@100", "MAP@100"),
                                    batch_size=256, model_description=f"T5 {args.size} random init, {architecture}, {loss}")
        report["training"] = {"config": config.to_dict(), "summary": summary}
        report["command"] = "python benchmarks/t5_random_init_squad.py " + " ".join(sys.argv[1:] if argv is None else argv)
        (HERE / "results" / f"t5_{args.size}_{architecture}_{loss}_{args.steps}steps_squad.json").write_text(json.dumps(report, indent=2) + "\n")
        metrics = " ".join(f"{k}={v:.4f}" for k, v in report["metrics"].items())
        print(f"{architecture:<8} {loss:<9} {metrics} train {summary['seconds_this_run']}s eval {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
