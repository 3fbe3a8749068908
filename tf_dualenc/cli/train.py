"""`tf-dualenc train`."""

from tf_dualenc.cli._flags import add_json


def add_parser(subparsers):
    from tf_dualenc.recipes import recipe_names

    p = subparsers.add_parser("train", help="train a dual encoder (resumes from the output folder's last checkpoint)")
    p.add_argument("--recipe", choices=recipe_names(), default=None,
                   help="a named recipe shipped with the package (tf_dualenc/recipes/), beneath --config and --set")
    p.add_argument("--config", help="YAML or JSON file of TrainConfig keys (see docs/training.md)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one config key; repeatable")
    p.add_argument("--data", metavar="DIR", help="shorthand for --set data=DIR (a BEIR folder or pair files)")
    p.add_argument("--output-dir", metavar="DIR", help="shorthand for --set output_dir=DIR")
    p.add_argument("--stop-after-steps", type=int, default=None, help="stop this process after N steps (rerun to resume)")
    add_json(p, "the run's summary (as summary.json holds it)")
    p.set_defaults(func=run)


def train_config(args):
    """The TrainConfig the flags describe: the recipe, then the config file, then --set, --data and --output-dir."""
    from tf_dualenc.config_files import read_config_mapping
    from tf_dualenc.training import TrainConfig

    values = read_config_mapping(args.config) if args.config else {}
    if args.recipe:
        if values.get("recipe") not in (None, args.recipe):
            raise ValueError(f"--recipe {args.recipe} and {args.config}'s recipe: {values['recipe']} disagree; give one.")
        values["recipe"] = args.recipe
    config = TrainConfig.from_dict(values, source=args.config or "--recipe")
    shorthands = [f"{key}={value}" for key, value in (("data", args.data), ("output_dir", args.output_dir)) if value]
    return config.with_overrides(list(args.set) + shorthands)


def run(args):
    from tf_dualenc.training import train

    summary, _ = train(train_config(args).validate(), stop_after_steps=args.stop_after_steps, progress=not args.quiet)
    return summary
