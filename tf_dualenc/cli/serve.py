"""`tf-dualenc serve`: every option goes to the local server's own parser (`main` passes them as `server_args`)."""


def add_parser(subparsers):
    p = subparsers.add_parser("serve", add_help=False,
                              help="local TF Serving-compatible gRPC/REST server over exports (--help for options)")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.extras import require

    for module in ("grpc", "tensorflow_serving"):
        require(module, feature="tf-dualenc serve")
    from tf_dualenc.serving import local_server

    local_server.main(args.server_args, prog="tf-dualenc serve")
    return 0
