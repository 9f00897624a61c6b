# One rule per training group: a group's models are trained together in one process, as one
# batched computation, and each still gets its own files. A group holds runs of one sweep, so a
# single artifact trains only the groups it needs.

TRAINING_FILES = ("model.pt", "curve.parquet", "train.log")

for group in PLAN.groups:

    rule:
        name:
            f"train_{group.name}"
        input:
            sorted({str(run.train_data) for run in group.runs}),
        output:
            [str(run.file(name)) for run in group.runs for name in TRAINING_FILES],
        params:
            runs=json_arg([run_record(run) for run in group.runs]),
        log:
            f"results/logs/train/{group.name}.log",
        threads: max(1, config["execution"]["threads"])
        resources:
            gpu=GPUS_PER_JOB,
            cpus_per_gpu=CPUS_PER_GPU,
            mem_mb=lambda wildcards, attempt: config["execution"]["train_mem_mb"] * attempt,
            runtime=lambda wildcards, attempt: config["execution"]["train_runtime_minutes"] * attempt,
        conda:
            TRAINING_ENV
        shell:
            "python -m icl train --runs {params.runs:q} > {log:q} 2>&1"
