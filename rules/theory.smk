rule theory:
    """Constructed-LSA curves over depth (every mask and eta) or at the stationary points."""
    output:
        "results/metrics/theory_{kind}.parquet",
    wildcard_constraints:
        kind="depth|stationary",
    params:
        theory=json_arg(config["theory"]),
    log:
        "results/logs/theory_{kind}.log",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl theory {wildcards.kind} --theory {params.theory:q} --out {output} > {log} 2>&1"
