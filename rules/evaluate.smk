rule evaluate:
    """Score the runs of one group that have no metrics on their test file yet, and list them all in its manifest."""
    input:
        trained="results/groups/{group}/trained.json",
        test_data=lambda wildcards: sorted({str(run.test_data(config["evaluate"]["x_shifts"])) for run in PLAN.group(wildcards.group).runs}),
    output:
        "results/groups/{group}/evaluated.json",
    wildcard_constraints:
        group=plan.GROUP_NAME,
    params:
        runs=lambda wildcards: json_arg([run.spec for run in PLAN.group(wildcards.group).runs]),
        x_shifts=json_arg(config["evaluate"]["x_shifts"]),
    log:
        "results/logs/evaluate/{group}.log",
    benchmark:
        "results/benchmarks/evaluate/{group}.tsv",
    threads: max(1, config["execution"]["threads"])
    resources:
        gpu=GPUS_PER_JOB,
        cpus_per_gpu=CPUS_PER_GPU,
        mem_mb=lambda wildcards, attempt: config["execution"]["train_mem_mb"] * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    conda:
        TRAINING_ENV
    shell:
        "python -m icl evaluate --runs {params.runs:q} --x-shifts {params.x_shifts:q} --manifest {output:q} > {log:q} 2>&1"
