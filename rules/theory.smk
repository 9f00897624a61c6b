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
    benchmark:
        "results/benchmarks/theory_{kind}.tsv",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl theory {wildcards.kind:q} --theory {params.theory:q} --out {output:q} > {log:q} 2>&1"


rule constructed_lsa_on_test:
    """The constructed LSA at every depth and eta on a trained run's lr test prompts (ext_trained_lsa)."""
    input:
        "results/data/lr/{dataset}/test-{hash}.pt",
    output:
        "results/data/lr/{dataset}/lsa-constructed-{hash}.parquet",
    wildcard_constraints:
        hash="[0-9a-f]+",
    params:
        spec=lambda wildcards, input: json_arg(TEST_DATA[input[0]]),
        theory=json_arg(config["theory"]),
    log:
        "results/logs/data/lr/{dataset}/lsa-constructed-{hash}.log",
    benchmark:
        "results/benchmarks/data/lr/{dataset}/lsa-constructed-{hash}.tsv",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl theory test-prompts --theory {params.theory:q} --spec {params.spec:q} --test {input:q} --out {output:q} > {log:q} 2>&1"
