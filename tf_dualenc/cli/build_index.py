"""`tf-dualenc build-index`: the Beam job's options (`index_config.add_build_arguments`) and the command line's own;
every other option is Beam's (`main` passes them as `pipeline_args`)."""

import argparse

from tf_dualenc.cli._flags import add_json
from tf_dualenc.index_config import BUILD_DESCRIPTION, BUILD_EPILOG, add_build_arguments


def add_parser(subparsers):
    p = subparsers.add_parser("build-index", help="Beam job: embed a corpus with an encoder export and build a ScaNN / exact index",
                              description=BUILD_DESCRIPTION, epilog=BUILD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_build_arguments(p)
    add_json(p, "the index's manifest")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.extras import require

    require("apache_beam", feature="tf-dualenc build-index")
    from tf_dualenc.indexing import build_index_pipeline

    return build_index_pipeline.run_parsed(args, build_index_pipeline.runner_args(args, args.pipeline_args), progress=not args.quiet)
