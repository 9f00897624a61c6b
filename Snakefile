"""Reproduce "CausalLM is not optimal for in-context learning" (Ding et al., ICLR 2024) as one DAG.

    snakemake --cores all                                   # default, CPU-sized config, every artifact
    snakemake --cores all --configfile configs/paper.yaml   # the paper's scale, on a GPU
    snakemake --cores 2 results/figures/fig2.pdf           # one artifact and only what it needs
    snakemake --cores all lm_artifacts --configfile configs/lm.yaml   # the language-model study only
"""

import os
import sys

# The pipeline's package comes from this workflow's own source tree, for this file and (through
# PYTHONPATH, which every job inherits) for every job's `python -m icl`: a job's environment needs
# only the third-party packages (envs/), and no installed copy of the package can be stale.
PACKAGE_SOURCE = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, PACKAGE_SOURCE)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [PACKAGE_SOURCE, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != PACKAGE_SOURCE)]
    )
)

from snakemake.utils import min_version

# Profiles are named profile.yaml, which Snakemake reads from 9.19.0 on.
min_version("9.19.0")

try:
    from icl import artifacts, benchmarks, captions, lm_plan, plan, run_lock, store
except ImportError as error:
    raise ImportError(f"{error}: install the pipeline's dependencies first, with `pip install -e .`") from error


# The default config sits beside this file, so a run with --directory elsewhere still finds it.
DEFAULT_CONFIG = os.path.join(workflow.basedir, "config.yaml")


configfile: DEFAULT_CONFIG


# Every error names the key, its value and the file that set it, before any job runs.
PLAN = plan.from_config(config, [DEFAULT_CONFIG, *workflow.overwrite_configfiles])


report: "workflow/report/workflow.rst"


# A second run on the same results/ stops at once (see icl.run_lock); dry runs never take the lock.
# `--forcerun train` (or evaluate, or --forceall) makes those jobs redo their runs although the
# store holds them (see icl.store): the jobs, local or submitted to a cluster, inherit the variable.
onstart:
    if not config["execution"]["allow_concurrent_runs"]:
        run_lock.acquire()
    os.environ.update(store.forced_environment(workflow.dag_settings.forcerun, workflow.dag_settings.forceall))


include: "rules/common.smk"
include: "rules/theory.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/artifacts.smk"
include: "rules/benchmarks.smk"
include: "rules/lm.smk"


# Light steps run where Snakemake runs, also under a cluster executor.
localrules:
    all,
    aggregate,
    figure,
    table,
    benchmarks,
    lm_artifacts,


rule all:
    default_target: True
    input:
        [str(path) for artifact in artifacts.available(config) for path in artifact.outputs],
        "results/benchmarks/summary.csv",


# The language-model study's artifacts alone (empty without an lm section).
rule lm_artifacts:
    input:
        [str(path) for artifact in artifacts.available(config) if artifact.name in artifacts.LM_ARTIFACTS for path in artifact.outputs],
