"""`tf-dualenc train`."""

from tf_dualenc.cli._flags import add_json


def add_parser(subparsers):
    p = subparsers.add_parser("train", help="train a dual encoder (resumes from the output folder's last checkpoint)")
    p.add_argument("--config", help="YAML or JSON file of TrainConfig keys (see docs/training.md)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key; repeatable")
    p.add_argument("--output-dir", metavar="DIR", help="shorthand for --set output_dir=DIR")
    p.add_argument("--stop-after-steps", type=int, default=None, help="stop this process after N steps (rerun to resume)")
    add_json(p, "the run's summary (as summary.json holds it)")
    p.set_defaults(func=run)


def run(args):
    from tf_dualenc.training import TrainConfig, train

    config = TrainConfig.from_file(args.config, args.set) if args.config else TrainConfig().with_overrides(args.set)
    if args.output_dir:
        config = config.with_overrides([f"output_dir={args.output_dir}"])
    summary, _ = train(config.validate(), stop_after_steps=args.stop_after_steps, progress=not args.quiet)
    return summary
