"""The `tf-dualenc` command line. Heavy modules load inside each command, so `--help` stays instant."""

import argparse
import sys
import warnings


def _doctor(args):
    from tf_dualenc import doctor

    return doctor.run()


def _demo(args):
    from tf_dualenc import demo

    demo.run(output_dir=args.output_dir, steps=args.steps, seed=args.seed, vocabulary=args.vocabulary)
    return 0


def _train_vocab(args):
    from tf_dualenc import vocabulary

    path = vocabulary.train_sentencepiece_vocabulary(
        args.input, args.output, vocabulary_size=args.vocabulary_size, text_fields=tuple(args.fields.split(","))
    )
    print(f"wrote {path}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="tf-dualenc", description=__doc__.split(".")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="report the installed stack and whether TF ops, tfrs and TFX load")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("demo", help="train a tiny ADE-SPL T5 dual encoder with SamToNe on a built-in sample")
    p.add_argument("--output-dir", default="runs/demo", help="where the model and report go (default: %(default)s)")
    p.add_argument("--steps", type=int, default=60, help="training steps (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--vocabulary",
        default=None,
        help="SentencePiece model; default: ../shared/models/t5/spiece.model if present, else one trained on the sample",
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser("train-vocab", help="train a T5-compatible SentencePiece vocabulary on a corpus")
    p.add_argument("--input", nargs="+", required=True, help="text, JSONL or BEIR corpus.jsonl/queries.jsonl files")
    p.add_argument("--output", required=True, help="output path of the .model file")
    p.add_argument("--vocabulary-size", type=int, default=32000)
    p.add_argument("--fields", default="title,text", help="JSONL fields to read, comma-separated (default: %(default)s)")
    p.set_defaults(func=_train_vocab)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    import tf_dualenc  # noqa: F401  (environment shims before any TensorFlow import)

    # keras-hub's T5 attention layers warn about a Keras mask they never use, once per layer and call.
    warnings.filterwarnings("ignore", message=r".*T5MultiHeadAttention.*does not support masking")

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"tf-dualenc {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
