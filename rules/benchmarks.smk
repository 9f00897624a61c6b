rule benchmarks:
    """Every job's runtime and memory in one table, for the report."""
    input:
        benchmark_records,
    output:
        report(
            "results/benchmarks/summary.csv",
            caption="../workflow/report/benchmarks.rst",
            category="Benchmarks",
        ),
    log:
        "results/logs/benchmarks.log",
    benchmark:
        "results/benchmarks/benchmarks.tsv",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl benchmarks {input:q} --out {output:q} > {log:q} 2>&1"
