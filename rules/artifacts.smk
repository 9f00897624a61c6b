FIGURES = [a.name for a in artifacts.available(config) if a.kind == "figure"]
TABLES = [a.name for a in artifacts.available(config) if a.kind == "table"]


rule figure:
    input:
        unpack(artifact_metrics),
    output:
        pdf="results/figures/{name}.pdf",
        png=report(
            "results/figures/{name}.png",
            caption="../workflow/report/artifact.rst",
            category="Figures",
            labels={"artifact": "{name}"},
        ),
    wildcard_constraints:
        name="|".join(map(re.escape, FIGURES)),
    params:
        metrics=named_paths,
        caption=lambda wildcards: captions.caption(wildcards.name, config),
    log:
        "results/logs/figures/{name}.log",
    benchmark:
        "results/benchmarks/figures/{name}.tsv",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl figure {wildcards.name:q} --metrics {params.metrics:q} --out {output.pdf:q} > {log:q} 2>&1"


rule table:
    input:
        unpack(artifact_metrics),
    output:
        csv=report(
            "results/tables/{name}.csv",
            caption="../workflow/report/artifact.rst",
            category="Tables",
            labels={"artifact": "{name}"},
        ),
        md="results/tables/{name}.md",
    wildcard_constraints:
        name="|".join(map(re.escape, TABLES)) or "^$",
    params:
        metrics=named_paths,
        caption=lambda wildcards: captions.caption(wildcards.name, config),
    log:
        "results/logs/tables/{name}.log",
    benchmark:
        "results/benchmarks/tables/{name}.tsv",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl table {wildcards.name:q} --metrics {params.metrics:q} --out {output.csv:q} > {log:q} 2>&1"
