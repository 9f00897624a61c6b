rule aggregate:
    """Every run of a sweep in one tidy table: test metrics, training curves, and the baselines (and for trained
    LSA the constructed LSA) on its test sets."""
    input:
        unpack(lambda wildcards: PLAN.aggregate_inputs(wildcards.sweep, config["evaluate"]["x_shifts"])),
    output:
        "results/metrics/{sweep}.parquet",
    params:
        evaluate=json_arg(config["evaluate"]),
    wildcard_constraints:
        sweep="|".join(map(re.escape, config["sweeps"])) or "^$",
    log:
        "results/logs/aggregate/{sweep}.log",
    benchmark:
        "results/benchmarks/aggregate/{sweep}.tsv",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl aggregate {input:q} --sweep {wildcards.sweep:q} --evaluate {params.evaluate:q} --out {output:q} > {log:q} 2>&1"
