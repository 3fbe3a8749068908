"""`tf-dualenc train-joint`: RocketQAv2 joint training of a dual encoder and a cross-encoder on mined lists."""

import os

from tf_dualenc.cli._flags import add_json
from tf_dualenc.cli._lists import add_list_arguments, training_lists, write_training_record
from tf_dualenc.cli._output import new_output_dir
from tf_dualenc.loading import load_cross_encoder, load_retrieval_model


def add_parser(subparsers):
    p = subparsers.add_parser("train-joint", help="RocketQAv2 joint training: dual encoder + cross-encoder by dynamic listwise distillation")
    add_list_arguments(p)
    p.add_argument("--dual-encoder", required=True, help="the retriever: a .keras dual encoder, all-MiniLM-L6-v2 or a HF BERT folder")
    p.add_argument("--reranker", required=True, help="the re-ranker: a .keras cross-encoder (from train-reranker)")
    p.add_argument("--retriever-learning-rate", type=float, default=2e-5, help="the dual encoder's peak learning rate (default: %(default)s)")
    p.add_argument("--reranker-learning-rate", type=float, default=2e-5, help="the cross-encoder's peak learning rate (default: %(default)s)")
    p.add_argument("--retriever-temperature", type=float, default=0.05, help="τ of the retriever's softmax over each list (default: %(default)s)")
    p.add_argument("--query-length", type=int, default=None, help="query token budget (default: the model's)")
    p.add_argument("--document-length", type=int, default=None, help="document token budget (default: the model's)")
    add_json(p, "the models written and their training record (as training.json holds it)")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.reranking.listwise_training import train_jointly

    new_output_dir(args.output_dir, ["dual_encoder.keras", "reranker.keras"])
    dual_encoder = load_retrieval_model(args.dual_encoder, args.query_length, args.document_length)
    reranker = load_cross_encoder(args.reranker)
    lists, _ = training_lists(args)
    settings = {"steps": args.steps, "batch_size": args.batch_size, "retriever_learning_rate": args.retriever_learning_rate,
                "reranker_learning_rate": args.reranker_learning_rate, "warmup_steps": args.warmup_steps,
                "retriever_temperature": args.retriever_temperature, "seed": args.seed, "log_every": args.log_every}
    history = train_jointly(dual_encoder, reranker, lists, **settings)
    models = {name: os.path.join(args.output_dir, f"{name}.keras") for name in ("dual_encoder", "reranker")}
    dual_encoder.save(models["dual_encoder"])
    reranker.save(models["reranker"])
    inputs = {"data": args.data, "list_size": args.list_size, "lenient": args.lenient, "dual_encoder": args.dual_encoder,
              "reranker": args.reranker, "query_length": args.query_length, "document_length": args.document_length}
    record = write_training_record(args.output_dir, inputs, settings, lists, history)
    print(f"wrote {models['dual_encoder']} and {models['reranker']}")
    return {"models": models, **record}
