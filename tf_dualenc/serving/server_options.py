"""The local server's options (`add_server_arguments`), for `python -m tf_dualenc.serving.local_server` and
`tf-dualenc serve`, whose parser lists them with the command line's own: no heavy import here."""

DEFAULT_MAX_BATCH_SIZE = 512
DEFAULT_MAX_TEXT_BYTES = 64 * 1024

SERVER_DESCRIPTION = "A small local server that speaks TF Serving's gRPC PredictionService API and REST `:predict` over exports."


def add_server_arguments(parser):
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER", help="a model folder with numeric versions; repeatable")
    parser.add_argument("--model-config-file", metavar="FILE",
                        help="TF Serving model config (model_config_list text proto); a relative base_path is read from the "
                             "file's folder (serving/models.local.config serves exports/scifact)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--grpc-port", type=int, default=8500, help="gRPC PredictionService port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--rest-port", type=int, default=8501, help="REST API port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                        help="texts per request; more is INVALID_ARGUMENT (default: %(default)s)")
    parser.add_argument("--max-text-bytes", type=int, default=DEFAULT_MAX_TEXT_BYTES,
                        help="UTF-8 bytes per text; more is INVALID_ARGUMENT (default: %(default)s)")
    parser.add_argument("--max-workers", type=int, default=8, help="requests computed at once per protocol (default: %(default)s)")
    parser.add_argument("--max-queued-requests", type=int, default=1024,
                        help="requests that wait for a worker instead of being refused (default: %(default)s)")
    parser.add_argument("--rest-timeout", type=float, default=30.0,
                        help="seconds a REST client has to send its whole request, then 408 (default: %(default)s)")
    parser.add_argument("--queue-timeout", type=float, default=30.0,
                        help="seconds a REST request may wait for a worker, then 503 (default: %(default)s)")
    parser.add_argument("--enable-batching", action="store_true",
                        help="run requests that arrive together for one signature as one model call (as TF Serving's --enable_batching)")
    return parser
