"""Load and check the pipeline's configuration against workflow/schemas/config.schema.yaml.

Defaults are filled in, and the first error stops everything with a message that names the key,
the value and what is allowed, before any job runs.
"""

import functools
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
RUN_SECTIONS = ("data", "model", "train")


class ConfigError(ValueError):
    """A configuration value that the schema or the pipeline does not allow.

    `keys` is the path of the offending key in the config (e.g. ("sweeps", "s", "grid", "n_layers")),
    so that the error can name the config file that set it.
    """

    def __init__(self, message: str, keys=()):
        super().__init__(message)
        self.keys = tuple(keys)


@functools.cache
def schema() -> dict:
    """The parsed schema, read once per process (planning validates every run against it); not to be modified."""
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


def _describe(error: jsonschema.ValidationError, key: str) -> str:
    """A message for the first schema error of the value at `key` (its dotted config path)."""
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
    if kind == "pattern" and "propertyNames" in error.relative_schema_path:
        return (
            f"{key}: the name {error.instance!r} is not allowed; names become file paths and job names, so they are "
            "letters, digits and underscores, starting with a letter (at most 64 characters)"
        )
    if kind == "minProperties":
        return f"{key} is empty; it needs at least {allowed} key"
    return f"{key} = {error.instance!r}: {error.message}"


def validate(config: dict, root: str = "config") -> dict:
    """Fill in defaults and check `config` in place; raise ConfigError naming the first bad key."""
    _check(_Validator(schema()), config, root)
    if "lm" in config:
        _check_lm(config, root)
    for name, sweep in config["sweeps"].items():
        for key in list(sweep["grid"]) + [k for variant in sweep["variants"] for k in variant]:
            if key not in run_keys():
                raise ConfigError(
                    f"{root}.sweeps.{name}: unknown run key {key!r}; allowed keys: {', '.join(sorted(run_keys()))}",
                    keys=("sweeps", name),
                )
    return config


def _check_lm(config: dict, root: str) -> None:
    """What the schema cannot say about the lm section: sizes that fit together, and a metrics name of its own."""
    lm = config["lm"]
    if "lm" in config["sweeps"]:
        raise ConfigError(f"{root}.sweeps.lm: the name lm belongs to the lm section's metrics; rename the sweep", keys=("sweeps", "lm"))
    for index, size in enumerate(lm["sizes"]):
        if size["width"] % size["heads"]:
            raise ConfigError(f"{root}.lm.sizes[{index}].heads = {size['heads']} must divide width = {size['width']}",
                              keys=("lm", "sizes", index, "heads"))
    longest = max(lm["prompts"]["k"]) * (max(lm["prompts"]["example_lengths"]) + 1) + max(lm["prompts"]["example_lengths"]) - 1
    if longest > lm["context"]:
        raise ConfigError(
            f"{root}.lm.context = {lm['context']} is shorter than the longest prompt, {longest} tokens "
            "(k examples of L + 1 tokens and a test x of L - 1, at the largest k and L)", keys=("lm", "context"),
        )
    if lm["corpus"]["document_length"] < lm["context"]:
        raise ConfigError(
            f"{root}.lm.corpus.document_length = {lm['corpus']['document_length']} is shorter than lm.context = {lm['context']}",
            keys=("lm", "corpus", "document_length"),
        )


def _check(validator, instance, root):
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        path = errors[0].absolute_path
        raise ConfigError(_describe(errors[0], ".".join([root, *map(str, path)])), keys=path)


def run_keys() -> dict:
    """The schema of every key a run can set: the properties of data, model and train together."""
    properties = schema()["properties"]
    return {key: sub for section in RUN_SECTIONS for key, sub in properties[section]["properties"].items()}


def section_of(key: str) -> str:
    """The config section (data, model or train) that holds run key `key`."""
    properties = schema()["properties"]
    return next(section for section in RUN_SECTIONS if key in properties[section]["properties"])


def validate_run(spec: dict, where, eval_n_context=()) -> None:
    """Check one resolved run config (after a sweep's overrides) against the run keys' schemas, and
    against the shortened prompts `eval_n_context` it will be tested with.

    `where(key)` gives the config path, as a tuple of keys, that set `key` for this run, so that an
    error names the key the user wrote (a sweep's grid or variant, or the section default).
    """
    def fail(message, key):
        keys = where(key)
        raise ConfigError(f"{_dotted(keys)}{message}", keys=keys)

    run_schema = {"type": "object", "properties": run_keys()}
    errors = sorted(jsonschema.Draft202012Validator(run_schema).iter_errors(spec), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        keys = where(errors[0].absolute_path[0])
        raise ConfigError(_describe(errors[0], _dotted(keys)), keys=keys)
    if spec["width"] % spec["heads"]:
        fail(f" = {spec['heads']} must divide width = {spec['width']}", "heads")
    if spec["model"] == "softmax" and spec["variant"] == "released" and spec["width"] % spec["heads"] ** 2:
        fail(
            f": the released variant's heads have width / heads^2 features, so heads^2 = {spec['heads'] ** 2} "
            f"must divide width = {spec['width']}",
            "heads",
        )
    if spec.get("train_n_context", 0) > spec["n_context"]:
        fail(f" = {spec['train_n_context']} exceeds n_context = {spec['n_context']}", "train_n_context")
    if spec["n_context"] < max([0, *eval_n_context]):
        raise ConfigError(f"config.evaluate.n_context {list(eval_n_context)} exceeds {_dotted(where('n_context'))} = {spec['n_context']}",
                          keys=("evaluate", "n_context"))
    if spec["task"] == "real":
        from . import episodes  # loads the datasets: only when a config asks for them

        if spec["n_context"] + spec["n_queries"] > episodes.longest_prompt():
            fail(
                f": task real has at most {episodes.longest_prompt()} samples in its smallest class pair, "
                f"fewer than n_context + n_queries = {spec['n_context'] + spec['n_queries']}",
                "task",
            )


def _dotted(keys) -> str:
    """("sweeps", "s", "variants", 0, "l2") -> config.sweeps.s.variants[0].l2"""
    return "config" + "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in keys)


def origin(keys, files) -> str | None:
    """The last of the config files (in the order Snakemake merges them) that sets the key at `keys`."""
    found = None
    for path in files:
        try:
            node = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue
        for key in keys:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
        else:
            found = str(path)
    return found


def load(path) -> dict:
    """Read a YAML config file and validate it."""
    with open(path) as handle:
        return validate(yaml.safe_load(handle) or {}, root=f"{path}")
