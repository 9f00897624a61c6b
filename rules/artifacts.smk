FIGURES = [a.name for a in artifacts.available(config) if a.kind == "figure"]
TABLES = [a.name for a in artifacts.available(config) if a.kind == "table"]


rule figure:
    input:
        unpack(artifact_metrics),
    output:
        pdf="results/figures/{name}.pdf",
        png="results/figures/{name}.png",
    wildcard_constraints:
        name="|".join(FIGURES),
    params:
        metrics=named_paths,
    log:
        "results/logs/figures/{name}.log",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl figure {wildcards.name} --metrics {params.metrics} --out {output.pdf} > {log} 2>&1"


rule table:
    input:
        unpack(artifact_metrics),
    output:
        csv="results/tables/{name}.csv",
        md="results/tables/{name}.md",
    wildcard_constraints:
        name="|".join(TABLES) or "^$",
    params:
        metrics=named_paths,
    log:
        "results/logs/tables/{name}.log",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl table {wildcards.name} --metrics {params.metrics} --out {output.csv} > {log} 2>&1"
