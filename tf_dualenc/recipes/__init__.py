"""Named training recipes: YAML files of `TrainConfig` keys shipped inside the package (package data, so an installed
wheel has them too), each the settings a docs table was measured with.

    quick    sized for `make demo` (the default pipeline): minutes on 2 CPU cores
    strong   the best dense recipe chosen on validation in docs/benchmarks.md

A recipe is the bottom layer of a training config: `tf-dualenc train --recipe strong --data DIR`, or `recipe: strong`
in a training config or a pipeline config's `train:` mapping; keys set beside it win over the recipe's. A recipe
holds no data or output location. `epochs` and `warmup_fraction` make it independent of the data set's size: the
trainer derives `steps` and `warmup_steps` from the pairs it actually trains on.
"""

import os

RECIPES_DIR = os.path.dirname(os.path.abspath(__file__))
# Keys a recipe may not hold: where data come from and where outputs go belong to the run, not to the recipe.
RUN_KEYS = ("data", "data_format", "split", "output_dir", "hard_negatives_cache")


def recipe_names():
    """The shipped recipes' names, sorted."""
    return sorted(name[:-len(".yaml")] for name in os.listdir(RECIPES_DIR) if name.endswith(".yaml"))


def recipe_path(name):
    """The file of recipe `name`; ValueError listing the valid names when there is none."""
    names = recipe_names()
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"recipe={name!r} (valid: {names})")
    return os.path.join(RECIPES_DIR, f"{name}.yaml")


def read_recipe(name):
    """Recipe `name`'s keys as a dict (`TrainConfig` keys; validated with the rest of the config that uses it)."""
    from tf_dualenc.config_files import read_config_mapping

    path = recipe_path(name)
    values = read_config_mapping(path, "Recipe")
    misplaced = sorted(set(values) & set(RUN_KEYS + ("recipe",)))
    if misplaced:
        raise ValueError(f"{path}: a recipe may not set {misplaced} (data and output locations belong to the run; recipes "
                         "do not nest).")
    return values
