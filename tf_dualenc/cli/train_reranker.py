"""`tf-dualenc train-reranker`: a BERT or T5 cross-encoder trained listwise on mined candidate lists."""

import os

from tf_dualenc.cli._flags import add_json
from tf_dualenc.cli._lists import add_list_arguments, training_lists, write_training_record
from tf_dualenc.cli._output import new_output_dir


def add_parser(subparsers):
    p = subparsers.add_parser("train-reranker", help="train a cross-encoder re-ranker listwise on mined lists")
    add_list_arguments(p)
    p.add_argument("--tower", choices=["bert", "t5"], default="bert", help="the cross-encoder's tower (default: %(default)s)")
    p.add_argument("--preset", default=None,
                   help="BERT: all-MiniLM-L6-v2 (default), a keras-hub preset or a HF folder; T5: a keras-hub preset or HF folder")
    p.add_argument("--size", default="tiny", help="T5 tower size without --preset (default: %(default)s)")
    p.add_argument("--vocabulary", default=None, help="T5: SentencePiece model")
    p.add_argument("--pair-length", type=int, default=256, help="tokens of query + document (default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=5e-5, help="peak learning rate (default: %(default)s)")
    p.add_argument("--pointwise-weight", type=float, default=0.5, help="weight of the calibrating BCE term (0: listwise only; default: %(default)s)")
    p.add_argument("--validation-data", default=None, help="held-out lists (JSONL) scored during training")
    p.add_argument("--validate-every", type=int, default=None, help="validation interval in steps (default: at the end)")
    add_json(p, "the model written and its training record (as training.json holds it)")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.models import build_bert_cross_encoder, build_t5_cross_encoder
    from tf_dualenc.reranking.listwise_training import train_cross_encoder

    if args.tower == "t5" and not args.vocabulary:
        raise ValueError("--tower t5 needs --vocabulary (a SentencePiece model, e.g. ../shared/models/t5/spiece.model).")
    new_output_dir(args.output_dir, ["reranker.keras"])
    lists, validation = training_lists(args)
    if args.tower == "bert":
        model = build_bert_cross_encoder(args.preset or "all-MiniLM-L6-v2", sequence_length=args.pair_length)
    else:
        model = build_t5_cross_encoder(args.size, vocabulary=args.vocabulary, sequence_length=args.pair_length, preset=args.preset)
    settings = {"steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                "warmup_steps": args.warmup_steps, "pointwise_weight": args.pointwise_weight, "seed": args.seed,
                "validate_every": args.validate_every, "log_every": args.log_every}
    history = train_cross_encoder(model, lists, validation_lists=validation, **settings)
    path = os.path.join(args.output_dir, "reranker.keras")
    model.save(path)
    inputs = {"data": args.data, "validation_data": args.validation_data, "list_size": args.list_size, "lenient": args.lenient,
              "tower": args.tower, "preset": args.preset, "size": args.size, "vocabulary": args.vocabulary,
              "pair_length": args.pair_length}
    record = write_training_record(args.output_dir, inputs, settings, lists, history)
    print(f"wrote {path} (export it with `tf-dualenc export --model {path} --output-dir DIR --model-name reranker`)")
    return {"model": path, **record}
