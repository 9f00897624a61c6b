"""Load and check the pipeline's configuration against workflow/schemas/config.schema.yaml.

Defaults are filled in, and the first error stops everything with a message that names the key,
the value and what is allowed, before any job runs.
"""

from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
RUN_SECTIONS = ("data", "model", "train")


class ConfigError(ValueError):
    """A configuration value that the schema or the pipeline does not allow."""


def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _fill_defaults(validator_class):
    """A validator that also writes each property's default into the instance (objects first, then leaves)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = yaml.safe_load(yaml.safe_dump(subschema["default"]))  # a fresh copy
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties_with_defaults})


_Validator = _fill_defaults(jsonschema.Draft202012Validator)


def _describe(error: jsonschema.ValidationError, root: str) -> str:
    key = ".".join([root, *map(str, error.absolute_path)]) if error.absolute_path else root
    kind, allowed = error.validator, error.validator_value
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        hint = f"; allowed keys: {', '.join(known)}" if known else ""
        return f"{key}: unknown key {', '.join(map(repr, unknown))}{hint}"
    if kind == "enum":
        return f"{key} = {error.instance!r} is not allowed; choose one of {allowed}"
    if kind == "type":
        return f"{key} = {error.instance!r} has the wrong type; expected {allowed}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        return f"{key} = {error.instance!r} is out of range; it must be {bound} {allowed}"
    if kind == "required":
        return f"{key}: {error.message}"
    return f"{key} = {error.instance!r}: {error.message}"


def validate(config: dict, root: str = "config") -> dict:
    """Fill in defaults and check `config` in place; raise ConfigError naming the first bad key."""
    _check(_Validator(schema()), config, root)
    for name, sweep in config["sweeps"].items():
        for key in list(sweep["grid"]) + [k for variant in sweep["variants"] for k in variant]:
            if key not in run_keys():
                raise ConfigError(
                    f"{root}.sweeps.{name}: unknown run key {key!r}; allowed keys: {', '.join(sorted(run_keys()))}"
                )
    return config


def _check(validator, instance, root):
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise ConfigError(_describe(errors[0], root))


def run_keys() -> dict:
    """The schema of every key a run can set: the properties of data, model and train together."""
    properties = schema()["properties"]
    return {key: sub for section in RUN_SECTIONS for key, sub in properties[section]["properties"].items()}


def validate_run(spec: dict, where: str, eval_n_context=()) -> None:
    """Check one resolved run config (after a sweep's overrides) against the run keys' schemas, and
    against the shortened prompts `eval_n_context` it will be tested with."""
    run_schema = {"type": "object", "properties": run_keys()}
    _check(jsonschema.Draft202012Validator(run_schema), spec, where)
    if spec["width"] % spec["heads"]:
        raise ConfigError(f"{where}: heads = {spec['heads']} must divide width = {spec['width']}")
    if spec["model"] == "softmax" and spec["variant"] == "released" and spec["width"] % spec["heads"] ** 2:
        raise ConfigError(
            f"{where}: the released variant's heads have width / heads^2 features, so heads^2 = {spec['heads'] ** 2} "
            f"must divide width = {spec['width']}"
        )
    if spec.get("train_n_context", 0) > spec["n_context"]:
        raise ConfigError(f"{where}: train_n_context = {spec['train_n_context']} exceeds n_context = {spec['n_context']}")
    if spec["n_context"] < max([0, *eval_n_context]):
        raise ConfigError(f"{where}: evaluate.n_context {list(eval_n_context)} exceeds n_context = {spec['n_context']}")
    if spec["task"] == "real":
        from . import episodes  # loads the datasets: only when a config asks for them

        if spec["n_context"] + spec["n_queries"] > episodes.longest_prompt():
            raise ConfigError(
                f"{where}: task real has at most {episodes.longest_prompt()} samples in its smallest class pair, "
                f"fewer than n_context + n_queries = {spec['n_context'] + spec['n_queries']}"
            )


def load(path) -> dict:
    """Read a YAML config file and validate it."""
    with open(path) as handle:
        return validate(yaml.safe_load(handle) or {}, root=f"{path}")
