"""`tf-dualenc serve`: the local server's options (`server_options.add_server_arguments`) and the command line's own."""

from tf_dualenc.cli._flags import add_json
from tf_dualenc.serving.server_options import SERVER_DESCRIPTION, add_server_arguments


def add_parser(subparsers):
    p = subparsers.add_parser("serve", help="local TF Serving-compatible gRPC/REST server over exports", description=SERVER_DESCRIPTION)
    add_server_arguments(p)
    add_json(p, "what is served once the server is up (its gRPC and REST addresses, each model's version, signatures and "
                "folder)")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.extras import require

    for module in ("grpc", "tensorflow_serving"):
        require(module, feature="tf-dualenc serve")
    from tf_dualenc.serving import local_server

    # The server runs until interrupted: its result is printed once it is up, not when the command returns.
    local_server.serve(args, on_start=args.print_json if args.json else None)
    return 0
