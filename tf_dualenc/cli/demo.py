"""`tf-dualenc demo`."""

from tf_dualenc.cli._flags import add_json


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="train a tiny ADE-SPL T5 dual encoder with SamToNe on a built-in sample")
    p.add_argument("--output-dir", default="runs/demo", metavar="DIR", help="where the model and report go (default: %(default)s)")
    p.add_argument("--steps", type=int, default=60, help="training steps (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the model's weights and the training order (default: %(default)s)")
    p.add_argument(
        "--vocabulary",
        default=None,
        help="SentencePiece model; default: ../shared/models/t5/spiece.model if present, else one trained on the sample",
    )
    add_json(p, "the report (as report.json holds it)")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc import demo

    return demo.run(output_dir=args.output_dir, steps=args.steps, seed=args.seed, vocabulary=args.vocabulary)
