# The language-model study (config section lm; icl.lm_plan): a GINC corpus, one training job per
# (model size, objective) with every seed as one of its stacked models, and one metrics table.
# Without an lm section these rules are not defined.

if "lm" in config:
    LM_GROUPS = {group.name: group for group in lm_plan.groups(config["lm"])}
    GINC = lm_plan.ginc_directory(config["lm"])

    localrules:
        aggregate_lm,

    rule ginc:
        """The pretraining documents and the few-shot prompt sets, with their Bayes-optimal predictions."""
        output:
            corpus=str(GINC / "corpus.pt"),
            prompts=str(GINC / "prompts.pt"),
        params:
            spec=json_arg(lm_plan.ginc_spec(config["lm"])),
        log:
            f"results/logs/lm/{GINC.name}.log",
        benchmark:
            f"results/benchmarks/lm/{GINC.name}.tsv",
        conda:
            "../envs/icl.yaml"
        shell:
            "python -m icl ginc --spec {params.spec:q} --corpus {output.corpus:q} --prompts {output.prompts:q} > {log:q} 2>&1"

    rule train_lm:
        """Pretrain one (size, objective) group: one stacked model per seed."""
        input:
            rules.ginc.output.corpus,
        output:
            "results/lm/runs/{group}/model.pt",
            "results/lm/runs/{group}/train.log",
        wildcard_constraints:
            group="|".join(map(re.escape, LM_GROUPS)),
        params:
            group=lambda wildcards: json_arg({"name": wildcards.group, "spec": LM_GROUPS[wildcards.group].spec}),
        log:
            "results/logs/lm/train/{group}.log",
        benchmark:
            "results/benchmarks/lm/train/{group}.tsv",
        threads: max(1, config["execution"]["threads"])
        resources:
            gpu=GPUS_PER_JOB,
            cpus_per_gpu=CPUS_PER_GPU,
            mem_mb=lambda wildcards, attempt: config["execution"]["train_mem_mb"] * attempt,
            runtime=lambda wildcards, attempt: config["execution"]["train_runtime_minutes"] * attempt,
        conda:
            TRAINING_ENV
        shell:
            "python -m icl train-lm --group {params.group:q} --corpus {input:q} --quiet > {log:q} 2>&1"

    rule evaluate_lm:
        """Few-shot accuracy of one group on every prompt set, and its training curve."""
        input:
            model="results/lm/runs/{group}/model.pt",
            prompts=rules.ginc.output.prompts,
        output:
            "results/lm/runs/{group}/metrics.parquet",
        wildcard_constraints:
            group="|".join(map(re.escape, LM_GROUPS)),
        params:
            group=lambda wildcards: json_arg({"name": wildcards.group, "spec": LM_GROUPS[wildcards.group].spec}),
        log:
            "results/logs/lm/evaluate/{group}.log",
        benchmark:
            "results/benchmarks/lm/evaluate/{group}.tsv",
        threads: max(1, config["execution"]["threads"])
        resources:
            gpu=GPUS_PER_JOB,
            cpus_per_gpu=CPUS_PER_GPU,
            mem_mb=lambda wildcards, attempt: config["execution"]["train_mem_mb"] * attempt,
            runtime=lambda wildcards, attempt: 30 * attempt,
        conda:
            TRAINING_ENV
        shell:
            "python -m icl evaluate-lm --group {params.group:q} --prompts {input.prompts:q} > {log:q} 2>&1"

    rule aggregate_lm:
        """Every group's metrics with the Bayes-optimal and chance accuracy of each prompt set, in one table."""
        input:
            metrics=[str(group.directory / "metrics.parquet") for group in LM_GROUPS.values()],
            prompts=rules.ginc.output.prompts,
        output:
            str(artifacts.metrics_path("lm")),
        params:
            lm=json_arg(config["lm"]),
        log:
            "results/logs/lm/aggregate.log",
        benchmark:
            "results/benchmarks/lm/aggregate.tsv",
        conda:
            "../envs/icl.yaml"
        shell:
            "python -m icl aggregate-lm {input.metrics:q} --prompts {input.prompts:q} --lm {params.lm:q} --out {output:q} > {log:q} 2>&1"
