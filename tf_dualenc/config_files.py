"""Reading a config file (YAML or JSON) into a mapping, with errors that name the file."""

import json
import os


def read_config_mapping(path, kind="Config file"):
    """The mapping in the YAML or JSON file `path` (by suffix); ValueError / FileNotFoundError name the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} not found: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    is_json = path.endswith(".json")
    try:
        if is_json:
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text) or {}
    except Exception as error:  # yaml and json raise different types
        raise ValueError(f"{kind} {path} is not valid {'JSON' if is_json else 'YAML'}: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"{kind} {path} must hold a mapping of keys to values.")
    return values
