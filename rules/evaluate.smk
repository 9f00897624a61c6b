for group in PLAN.groups:

    rule:
        name:
            f"evaluate_{group.name}"
        input:
            models=[str(run.file("model.pt")) for run in group.runs],
            test_data=sorted({str(run.test_data(config["evaluate"]["x_shifts"])) for run in group.runs}),
        output:
            [str(run.file("metrics.parquet")) for run in group.runs],
        params:
            runs=json_arg([run_record(run) for run in group.runs]),
        log:
            f"results/logs/evaluate/{group.name}.log",
        threads: max(1, config["execution"]["threads"])
        resources:
            gpu=GPUS_PER_JOB,
            cpus_per_gpu=CPUS_PER_GPU,
            mem_mb=lambda wildcards, attempt: config["execution"]["train_mem_mb"] * attempt,
            runtime=lambda wildcards, attempt: 30 * attempt,
        conda:
            TRAINING_ENV
        shell:
            "python -m icl evaluate --runs {params.runs:q} > {log:q} 2>&1"
