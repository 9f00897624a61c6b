rule aggregate:
    """Every run of a sweep in one tidy table: test metrics, training curves and the baselines on its test sets."""
    input:
        runs=lambda wildcards: [
            str(run.file(name)) for run in PLAN.sweeps[wildcards.sweep] for name in ("metrics.parquet", "curve.parquet")
        ],
        baselines=lambda wildcards: sorted({str(run.baselines(config["evaluate"]["x_shifts"])) for run in PLAN.sweeps[wildcards.sweep]}),
    output:
        "results/metrics/{sweep}.parquet",
    params:
        evaluate=json_arg(config["evaluate"]),
    wildcard_constraints:
        sweep="|".join(config["sweeps"]) or "^$",
    log:
        "results/logs/aggregate/{sweep}.log",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl aggregate {input} --sweep {wildcards.sweep} --evaluate {params.evaluate:q} --out {output} > {log} 2>&1"
