"""Expand the config's sweeps into runs, datasets and training groups.

A run (icl.runs) is one trained model, keyed by a hash of its resolved config, so a run that two
sweeps ask for is one run. A group is the runs that one train job trains together as one batched
computation: runs of the same shape and schedule, wanted by the same set of sweeps, that may differ
in mask, seed, data, task or regulariser. Groups only decide how work is batched: a run is trained
once whatever group it falls in, since each job trains only the runs not yet in the store (icl.store).
"""

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from .config import RUN_SECTIONS, ConfigError, origin, section_of, validate, validate_run
from .names import OUTPUT_DIM
from .runs import GROUP_KEYS, RESULTS, Run, architecture, has_ice_term, stable_hash
from .shapes import dataset_bytes, run_training_bytes, run_training_flops

GROUP_NAME = r"[A-Za-z][A-Za-z0-9_]*"  # sweep names joined by _, an architecture and an index


@dataclass
class Group:
    name: str
    sweep: str
    runs: list

    def manifest(self, stage: str) -> Path:
        """The declared output of the group's train or evaluate job (see icl.store)."""
        return manifest(self.name, stage)

    def train_priority(self) -> float:
        """Snakemake's priority of the group's train job: 2 plus its matmul work in GFLOP. Training
        outranks every other job (its datasets, at 1, come next), and the largest groups start first, so
        that the short jobs fill the cores at the end of a run rather than a long one running alone."""
        return 2 + sum(run.spec["steps"] * run_training_flops(run.spec) for run in self.runs) / 1e9


def manifest(group: str, stage: str) -> Path:
    return RESULTS / "groups" / group / {"train": "trained.json", "evaluate": "evaluated.json"}[stage]


@dataclass
class Plan:
    sweeps: dict  # sweep name -> its runs, in order
    groups: list

    def runs(self):
        """Every distinct run, once."""
        return list({run.key: run for runs in self.sweeps.values() for run in runs}.values())

    def group(self, name: str) -> Group:
        for group in self.groups:
            if group.name == name:
                return group
        raise ValueError(f"no training group {name!r} in this config's plan; `snakemake --list-target-rules` and a dry run name the planned ones")

    def aggregate_inputs(self, sweep: str, x_shifts) -> dict:
        """The files a sweep's metrics table is built from: the evaluate manifests of the groups that
        hold its runs (each lists its runs' metrics and training curves), the baselines on their test
        files, and for trained LSA on lr the constructed LSA on the same prompts."""
        runs = self.sweeps[sweep]
        keys = {run.key for run in runs}
        return {
            "runs": [str(g.manifest("evaluate")) for g in self.groups if keys & {run.key for run in g.runs}],
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
                runs.setdefault(stable_hash(spec), Run.of(spec))
    return list(runs.values())


def group_signature(spec: dict) -> dict:
    """What the runs of one group must share: the GROUP_KEYS, their task's label width, and whether
    their loss has the ICE term (which decides the positions the last layer computes)."""
    return {key: spec[key] for key in GROUP_KEYS} | {
        "task (output size)": OUTPUT_DIM[spec["task"]],
        "l2 (whether the loss has an ICE term)": has_ice_term(spec),
    }


def make_plan(config: dict) -> Plan:
    """Runs per sweep, and groups of at most execution.group_size runs, balanced in size.

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
        buckets.setdefault((tuple(names), tuple(group_signature(run.spec).values())), []).append(run)
    size = config["execution"]["group_size"]
    groups, counters = [], {}
    for (names, _), members in buckets.items():
        label = "_".join([*names, re.sub(r"\W", "_", architecture(members[0].spec))])
        # As few groups as group_size allows, of sizes that differ by at most one: 18 runs make two jobs
        # of 9 rather than 12 and 6, which balances the jobs' lengths and keeps every group large.
        count = -(-len(members) // size)
        for part in range(count):
            index = counters[label] = counters.get(label, -1) + 1
            chunk = members[part * len(members) // count : (part + 1) * len(members) // count]
            groups.append(Group(name=f"{label}_{index}", sweep="+".join(names), runs=chunk))
    return Plan(sweeps=sweeps, groups=groups)


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
    need, run = max(((run_training_bytes(r.spec), r) for r in runs), key=lambda item: item[0])
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
