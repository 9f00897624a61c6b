rule train_data:
    """A fixed training set, shared by every run trained on it (prefix and causal see the same data)."""
    output:
        "results/data/{task}/{dataset}/train-b{batches}.pt",
    wildcard_constraints:
        task="[a-z0-9]+",
        batches=r"\d+",
    params:
        spec=lambda wildcards, output: json_arg(TRAIN_DATA[output[0]]),
    log:
        "results/logs/data/{task}/{dataset}/train-b{batches}.log",
    benchmark:
        "results/benchmarks/data/{task}/{dataset}/train-b{batches}.tsv",
    priority: 1  # before the other datasets: training waits for these
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl data train --spec {params.spec:q} --out {output:q} > {log:q} 2>&1"


rule test_data:
    """Held-out test prompts of one (task, seed, distribution), at every evaluated shift of x."""
    output:
        "results/data/{task}/{dataset}/test-{hash}.pt",
    wildcard_constraints:
        task="[a-z0-9]+",
        hash="[0-9a-f]+",
    params:
        spec=lambda wildcards, output: json_arg(TEST_DATA[output[0]]),
        x_shifts=[str(shift) for shift in config["evaluate"]["x_shifts"]] or ["0"],
    log:
        "results/logs/data/{task}/{dataset}/test-{hash}.log",
    benchmark:
        "results/benchmarks/data/{task}/{dataset}/test-{hash}.tsv",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl data test --spec {params.spec:q} --x-shifts {params.x_shifts:q} --out {output:q} > {log:q} 2>&1"


rule baselines:
    """Least squares, ridge and online GD scored on a test file: the references drawn beside the models."""
    input:
        "results/data/{task}/{dataset}/test-{hash}.pt",
    output:
        "results/data/{task}/{dataset}/baselines-{hash}.parquet",
    wildcard_constraints:
        task="[a-z0-9]+",
        hash="[0-9a-f]+",
    params:
        spec=lambda wildcards, input: json_arg(TEST_DATA[input[0]]),
    log:
        "results/logs/data/{task}/{dataset}/baselines-{hash}.log",
    benchmark:
        "results/benchmarks/data/{task}/{dataset}/baselines-{hash}.tsv",
    conda:
        "../envs/icl.yaml"
    shell:
        "python -m icl baselines --spec {params.spec:q} --test {input:q} --out {output:q} > {log:q} 2>&1"
