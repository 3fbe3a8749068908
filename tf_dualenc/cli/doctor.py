"""`tf-dualenc doctor`."""

from tf_dualenc.cli._flags import add_json


def add_parser(subparsers):
    p = subparsers.add_parser("doctor", help="report the installed stack and whether TF ops, tfrs and TFX load")
    p.add_argument("--strict", action="store_true",
                   help="hold the environment to the lock: every pinned package installed at its pin (what `make test` "
                        "checks); default: the core must be installed, parts an extra left out are reported, not failed")
    add_json(p, "the report (each pinned package, the environment, each check)")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc import doctor

    report = doctor.check(strict=args.strict)
    return report, 0 if report["ok"] else 1
