# One rule trains every group: a group's models are trained together in one process, as one
# batched computation, and each still gets its own files. A group holds runs of one set of
# sweeps, so a single artifact trains only the groups it needs. The job's output is the group's
# manifest; the models go to the store of trained runs, which the job consults first and which
# Snakemake never deletes (see icl.store).


rule train:
    """Train the runs of one group that are not in the store yet, and list them all in its manifest."""
    input:
        lambda wildcards: sorted({str(run.train_data) for run in PLAN.group(wildcards.group).runs}),
    output:
        "results/groups/{group}/trained.json",
    wildcard_constraints:
        group=plan.GROUP_NAME,
    params:
        runs=lambda wildcards: json_arg([run.spec for run in PLAN.group(wildcards.group).runs]),
    log:
        "results/logs/train/{group}.log",
    benchmark:
        "results/benchmarks/train/{group}.tsv",
    threads: max(1, config["execution"]["threads"])
    priority: lambda wildcards: PLAN.group(wildcards.group).train_priority()
    resources:
        gpu=GPUS_PER_JOB,
        cpus_per_gpu=CPUS_PER_GPU,
        mem_mb=lambda wildcards, attempt: config["execution"]["train_mem_mb"] * attempt,
        runtime=lambda wildcards, attempt: config["execution"]["train_runtime_minutes"] * attempt,
    conda:
        TRAINING_ENV
    shell:
        "python -m icl train --runs {params.runs:q} --manifest {output:q} > {log:q} 2>&1"
