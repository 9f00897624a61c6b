"""Reproduce "CausalLM is not optimal for in-context learning" (Ding et al., ICLR 2024) as one DAG.

    snakemake --cores all                                   # default, CPU-sized config, every artifact
    snakemake --cores all --configfile configs/paper.yaml   # the paper's scale, on a GPU
    snakemake --cores 2 results/figures/fig2_stationary.pdf # one artifact and only what it needs
"""

try:
    from icl import artifacts, plan
    from icl import config as icl_config
except ImportError as error:
    raise ImportError(f"{error}: install the pipeline's package first, with `pip install -e .`") from error


configfile: "config.yaml"


icl_config.validate(config)
PLAN = plan.make_plan(config)


include: "rules/common.smk"
include: "rules/theory.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/aggregate.smk"
include: "rules/artifacts.smk"


rule all:
    default_target: True
    input:
        [str(path) for artifact in artifacts.available(config) for path in artifact.outputs],
