"""`tf-dualenc train-vocab`."""

from tf_dualenc.cli._flags import add_json


def add_parser(subparsers):
    p = subparsers.add_parser("train-vocab", help="train a T5-compatible SentencePiece vocabulary on a corpus")
    p.add_argument("--input", nargs="+", required=True, help="text, JSONL or BEIR corpus.jsonl/queries.jsonl files")
    p.add_argument("--output", required=True, metavar="FILE", help="the SentencePiece .model file to write")
    p.add_argument("--vocabulary-size", type=int, default=32000, help="pieces in the vocabulary (default: %(default)s)")
    p.add_argument("--fields", default="title,text", help="JSONL fields to read, comma-separated (default: %(default)s)")
    add_json(p, "the vocabulary written")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc import vocabulary

    path = vocabulary.train_sentencepiece_vocabulary(
        args.input, args.output, vocabulary_size=args.vocabulary_size, text_fields=tuple(args.fields.split(","))
    )
    print(f"wrote {path}")
    return {"vocabulary": path}
