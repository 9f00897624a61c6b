# Helpers shared by the rules. Paths come from the package (icl.plan, icl.artifacts), so the
# rules and the CLI agree on them.

import json
import os
import re

from icl import cli


def json_arg(value):
    """A compact JSON string, for passing structured settings to the CLI."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# Execution settings decide how a job runs, never what it computes. They reach the train and
# evaluate jobs through the environment, which every job inherits from the Snakemake process that
# parsed this file (locally or on a cluster node), rather than through params (changing them must
# not trigger a rerun, see profiles/default) or the shell text (no config value enters a shell).
os.environ[cli.EXECUTION_VARIABLE] = json_arg(config["execution"])


# Training and evaluation ask for a GPU unless the config pins them to the CPU.
GPUS_PER_JOB = 0 if config["execution"]["device"] == "cpu" else 1
TRAINING_ENV = "../envs/icl-cuda.yaml" if GPUS_PER_JOB else "../envs/icl.yaml"
CPUS_PER_GPU = config["execution"]["cpus_per_gpu"] if GPUS_PER_JOB else 0

TRAIN_DATA = {str(run.train_data): run.train_data_spec() for run in PLAN.runs()}
TEST_DATA = {str(run.test_data(config["evaluate"]["x_shifts"])): run.test_data_spec() for run in PLAN.runs()}


def artifact_metrics(wildcards):
    """The metrics tables one artifact reads, by name."""
    artifact = artifacts.get(wildcards.name)
    return {table: str(artifacts.metrics_path(table)) for table in artifacts.inputs(artifact, config)}


def named_paths(wildcards, input):
    """NAME=PATH for each metrics table, one shell word each."""
    return [f"{name}={path}" for name, path in input.items()]


def benchmark_records(wildcards):
    """The benchmark record of every job of the full run (each rule's benchmark record mirrors its log)."""
    x_shifts = config["evaluate"]["x_shifts"]
    data_files = set(TRAIN_DATA) | set(TEST_DATA)
    for sweep in config["sweeps"]:
        inputs = PLAN.aggregate_inputs(sweep, x_shifts)
        data_files |= set(inputs["baselines"]) | set(inputs["constructed_lsa"])
    logs = [f"results/logs/theory_{kind}.log" for kind in ("depth", "stationary")]
    logs += [f"results/logs/{stage}/{group.name}.log" for group in PLAN.groups for stage in ("train", "evaluate")]
    logs += [f"results/logs/aggregate/{sweep}.log" for sweep in config["sweeps"]]
    logs += [f"results/logs/{artifact.kind}s/{artifact.name}.log" for artifact in artifacts.available(config)]
    return sorted(str(benchmarks.record_path(path)) for path in [*data_files, *logs])
