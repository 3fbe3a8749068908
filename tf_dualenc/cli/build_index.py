"""`tf-dualenc build-index`: every option goes to the Beam job's own parser (`main` passes them as `pipeline_args`)."""

from tf_dualenc.cli._flags import add_json


def add_parser(subparsers):
    p = subparsers.add_parser("build-index", add_help=False,
                              help="Beam job: embed a corpus with an encoder export and build a ScaNN / exact index (--help for options)")
    add_json(p, "the index's manifest")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.extras import require

    require("apache_beam", feature="tf-dualenc build-index")
    from tf_dualenc.indexing import build_index_pipeline

    return build_index_pipeline.run(args.pipeline_args, progress=not args.quiet)
