"""Expand the config's sweeps into runs, datasets and training groups, with stable keys and readable paths.

A run is one trained model: a flat, fully resolved config (the data, model and train sections with
a sweep's overrides) plus a seed. Its key is a hash of that config, so a run that two sweeps ask
for is trained once. A group is the runs that one job trains together as one batched computation:
runs of the same shape and schedule that may differ in mask, seed, data, task or regulariser.
"""

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import models, tasks
from .config import RUN_SECTIONS, ConfigError, origin, section_of, validate, validate_run
from .names import architecture

RESULTS = Path("results")

# Keys that a group's models must share: everything that fixes the shape of the batched
# computation or its optimiser schedule.
GROUP_KEYS = (
    "model", "variant", "n_layers", "width", "heads", "ffn_width", "attention", "shared", "x_dim", "n_context",
    "n_queries", "steps", "batch_size", "learning_rate", "warmup_fraction", "beta1", "beta2", "adam_eps",
    "weight_decay", "precision",
)
# Keys that fix a training set; train_batches only says how much of it is used (sets are nested).
DATA_KEYS = ("task", "x_dim", "x_distribution", "x_scale", "x_shift", "n_context", "n_queries", "noise", "batch_size")
TEST_KEYS = ("task", "x_dim", "x_distribution", "x_scale", "x_shift", "n_context", "n_queries", "noise", "test_sequences")


def stable_hash(value, length: int = 8) -> str:
    """A short hex digest of a JSON-serialisable value, the same on every machine and run."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:length]


def draw_seed(spec: dict) -> int:
    """The seed of a run's random draws (initial weights, batch order, ICE order): a hash of its
    config without the mask, so the prefix and causal runs of one setting and seed start from the
    same weights and see the same batches, paired in everything but the mask."""
    return int(stable_hash({k: v for k, v in spec.items() if k != "mask"}, length=15), 16)


@dataclass(frozen=True)
class Run:
    spec: dict = field(hash=False, compare=False)
    key: str = ""

    @property
    def directory(self) -> Path:
        s = self.spec
        return RESULTS / "runs" / s["task"] / architecture(s) / s["mask"] / f"seed{s['seed']}-{self.key}"

    @property
    def train_data(self) -> Path:
        identity = {k: self.spec[k] for k in DATA_KEYS} | {"seed": self.spec["seed"]}
        return RESULTS / "data" / self.spec["task"] / f"seed{self.spec['seed']}-{stable_hash(identity)}" / f"train-b{self.spec['train_batches']}.pt"

    def _test_identity(self, x_shifts) -> str:
        identity = {k: self.spec[k] for k in TEST_KEYS} | {"seed": self.spec["seed"], "x_shifts": sorted(x_shifts)}
        return stable_hash(identity)

    def test_data(self, x_shifts) -> Path:
        return self.train_data.parent / f"test-{self._test_identity(x_shifts)}.pt"

    def baselines(self, x_shifts) -> Path:
        """The baselines scored on the run's test file, beside it."""
        return self.train_data.parent / f"baselines-{self._test_identity(x_shifts)}.parquet"

    def constructed_lsa(self, x_shifts) -> Path:
        """The constructed LSA scored on the run's test file (lr), beside it."""
        return self.train_data.parent / f"lsa-constructed-{self._test_identity(x_shifts)}.parquet"

    def train_data_spec(self) -> dict:
        """What the training-set file is drawn from."""
        return {k: self.spec[k] for k in DATA_KEYS + ("seed", "train_batches")}

    def test_data_spec(self) -> dict:
        return {k: self.spec[k] for k in TEST_KEYS + ("seed",)}

    def file(self, name: str) -> Path:
        """One of the run's files: model.pt, curve.parquet, train.log (training) or metrics.parquet."""
        return self.directory / name


@dataclass
class Group:
    name: str
    sweep: str
    runs: list


@dataclass
class Plan:
    sweeps: dict  # sweep name -> its runs, in order
    groups: list

    def runs(self):
        """Every distinct run, once."""
        return list({run.key: run for runs in self.sweeps.values() for run in runs}.values())

    def aggregate_inputs(self, sweep: str, x_shifts) -> dict:
        """The files a sweep's metrics table is built from: each run's metrics and training curve, the
        baselines on its test files, and for trained LSA on lr the constructed LSA on the same prompts."""
        runs = self.sweeps[sweep]
        return {
            "runs": [str(run.file(name)) for run in runs for name in ("metrics.parquet", "curve.parquet")],
            "baselines": sorted({str(run.baselines(x_shifts)) for run in runs}),
            "constructed_lsa": sorted(
                {str(run.constructed_lsa(x_shifts)) for run in runs if run.spec["model"] == "lsa" and run.spec["task"] == "lr"}
            ),
        }


def _resolve(config: dict, sweep: str, point: dict, variant_index: int, seed: int) -> dict:
    """One run's flat config: the sections' defaults, then the sweep's grid point, then its variant."""
    variant = config["sweeps"][sweep]["variants"][variant_index]
    spec = {key: value for section in RUN_SECTIONS for key, value in config[section].items()}
    spec.update(point)
    spec.update(variant)
    spec["seed"] = seed

    def where(key):
        if key in variant:
            return ("sweeps", sweep, "variants", variant_index, key)
        if key in point:
            return ("sweeps", sweep, "grid", key)
        return (section_of(key), key)

    validate_run(spec, where, eval_n_context=config["evaluate"]["n_context"])
    return spec


def sweep_runs(config: dict, sweep: str) -> list:
    """The runs of one sweep: grid x variants x seeds, each distinct run once (two variants may
    resolve to the same run, e.g. one that restates a default)."""
    definition = config["sweeps"][sweep]
    names = list(definition["grid"])
    runs = {}
    for values in itertools.product(*(definition["grid"][name] for name in names)):
        for variant_index in range(len(definition["variants"])):
            for seed in range(config["seeds"]):
                spec = _resolve(config, sweep, dict(zip(names, values)), variant_index, seed)
                runs.setdefault(stable_hash(spec), Run(spec=spec, key=stable_hash(spec)))
    return list(runs.values())


def _group_signature(spec: dict):
    return tuple(spec[k] for k in GROUP_KEYS) + (tasks.get(spec["task"]).output_dim,)


def make_plan(config: dict) -> Plan:
    """Runs per sweep, and groups of at most execution.group_size runs.

    Runs are grouped by the set of sweeps that ask for them (besides shape and schedule), so
    building one artifact trains only groups whose every run it reads, in whatever order the
    config lists its sweeps.
    """
    sweeps = {name: sweep_runs(config, name) for name in config["sweeps"]}
    wanted_by = {}
    for name, runs in sweeps.items():
        for run in runs:
            wanted_by.setdefault(run.key, (run, []))[1].append(name)
    buckets = {}
    for run, names in wanted_by.values():
        buckets.setdefault((tuple(names), _group_signature(run.spec)), []).append(run)
    size = config["execution"]["group_size"]
    groups, counters = [], {}
    for (names, _), members in buckets.items():
        for start in range(0, len(members), size):
            label = "_".join([*names, re.sub(r"\W", "_", architecture(members[0].spec))])
            index = counters[label] = counters.get(label, -1) + 1
            groups.append(Group(name=f"{label}_{index}", sweep="+".join(names), runs=members[start : start + size]))
    return Plan(sweeps=sweeps, groups=groups)


def dataset_bytes(spec: dict, sequences: int) -> float:
    """Size of `sequences` prompts of a run's shape in a dataset file: x and y in float32."""
    width = spec["x_dim"] + tasks.get(spec["task"]).output_dim
    return 4.0 * sequences * (spec["n_context"] + spec["n_queries"]) * width


def training_bytes(spec: dict) -> float:
    """Device memory of one run in training: its weights, optimiser state and activations, and its training set."""
    config = models.ModelConfig.from_spec(spec, tasks.get(spec["task"]).output_dim)
    return models.training_bytes(config, spec["batch_size"]) + dataset_bytes(spec, spec["train_batches"] * spec["batch_size"])


def _test_sets(spec: dict, x_shifts) -> int:
    if spec["task"] == "real":
        from . import episodes  # scikit-learn, only for the real task

        return len(episodes.TEST_SETS)
    return len({0.0, *map(float, x_shifts)})


def check_resources(plan: Plan, config: dict) -> None:
    """Stop a config whose largest dataset file or whose single model does not fit the budgets, before any job runs."""
    execution, x_shifts = config["execution"], config["evaluate"]["x_shifts"]
    runs = plan.runs()
    if not runs:
        return
    files = [(dataset_bytes(r.spec, r.spec["train_batches"] * r.spec["batch_size"]), r.train_data, r) for r in runs]
    files += [(dataset_bytes(r.spec, r.spec["test_sequences"]) * _test_sets(r.spec, x_shifts), r.test_data(x_shifts), r) for r in runs]
    size, path, _ = max(files, key=lambda item: item[0])
    if size > execution["data_budget_gb"] * 1e9:
        raise ConfigError(
            f"config.execution.data_budget_gb = {execution['data_budget_gb']:g}, but {path} would hold about {size / 1e9:.3g} GB; "
            "lower data.x_dim, data.n_context, data.train_batches, data.test_sequences or train.batch_size, "
            "or raise execution.data_budget_gb",
            keys=("execution", "data_budget_gb"),
        )
    need, run = max(((training_bytes(r.spec), r) for r in runs), key=lambda item: item[0])
    if need > execution["memory_budget_gb"] * 1e9:
        raise ConfigError(
            f"config.execution.memory_budget_gb = {execution['memory_budget_gb']:g}, but one model of {run.directory} needs "
            f"about {need / 1e9:.3g} GB in training (weights, optimiser, activations and its training set); lower "
            "train.batch_size, the model's size or its data, or raise execution.memory_budget_gb",
            keys=("execution", "memory_budget_gb"),
        )


def from_config(config: dict, config_files=()) -> Plan:
    """Validate `config` in place, expand it into runs and groups, and check them against the budgets.

    Every error names the key and value, and `config_files` (in the order they were merged) tell
    which file set the key.
    """
    try:
        validate(config)
        plan = make_plan(config)
        check_resources(plan, config)
    except ConfigError as error:
        source = origin(error.keys, config_files) if error.keys else None
        if source is None:
            raise
        raise ConfigError(f"{error} (set in {source})", keys=error.keys) from None
    return plan
