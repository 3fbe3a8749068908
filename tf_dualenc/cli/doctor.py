"""`tf-dualenc doctor`."""


def add_parser(subparsers):
    p = subparsers.add_parser("doctor", help="report the installed stack and whether TF ops, tfrs and TFX load")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc import doctor

    return doctor.run()
