"""The real `snakemake` on a tiny config, end to end, and the DAG's promises."""

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from icl import artifacts, config, episodes, metrics, plan

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"


def snakemake(workdir, *args, check=True):
    # Targets come first: options such as --configfile and --quiet take several values.
    command = [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(TINY)]
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


# What a rerun may write differently: the job logs, each run's train.log, which records the
# training's wall-clock seconds, the jobs' benchmark records, and the run lock, which names the
# process that held it.
# Everything else under results/ must come out byte for byte.
TIMED_FILES = ("results/logs/*", "results/runs/*/train.log", "results/benchmarks/*", "results/.run.lock")


def reproducible_files(workdir) -> dict:
    """Relative path -> bytes of every file under results/ apart from TIMED_FILES."""
    files = {path.relative_to(workdir).as_posix(): path for path in (workdir / "results").rglob("*") if path.is_file()}
    return {name: path.read_bytes() for name, path in files.items() if not any(fnmatch.fnmatch(name, p) for p in TIMED_FILES)}


def planned_jobs(workdir, *targets) -> dict:
    """Rule name -> job count of a dry run."""
    out = snakemake(workdir, *targets, "-n", "--quiet", "rules").stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M) if m[1] != "total"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pipeline")
    snakemake(workdir, "--cores", "2")
    return workdir


def test_every_artifact_is_built_and_not_empty(finished):
    tiny = config.load(TINY)
    for artifact in artifacts.available(tiny):
        for path in artifact.outputs:
            assert (finished / path).stat().st_size > 0, path
    assert len(artifacts.available(tiny)) == len(artifacts.ARTIFACTS) - len(artifacts.LM_ARTIFACTS)  # the lm study has its own test


def test_metrics_tables_have_the_schema_and_the_config(finished):
    for path in (finished / "results" / "metrics").glob("*.parquet"):
        table = pq.read_table(path)
        assert table.schema.equals(metrics.SCHEMA, check_metadata=False), path
        assert table.schema.metadata[b"schema_version"] == metrics.SCHEMA_VERSION.encode()
        assert metrics.config_of(path), path
        assert table.num_rows > 0


def test_each_run_has_its_own_outputs_and_no_leftovers(finished):
    tiny_config = config.load(TINY)
    tiny = plan.make_plan(tiny_config)
    for run in tiny.runs():
        for path in [run.file(name) for name in ("model.pt", "curve.parquet", "train.log")] + [run.metrics(tiny_config["evaluate"]["x_shifts"])]:
            assert (finished / path).stat().st_size > 0
        assert not (finished / run.file("resume.pt")).exists()
    for group in tiny.groups:
        for stage in ("train", "evaluate"):
            listed = json.loads((finished / group.manifest(stage)).read_text())["runs"]
            assert [entry["key"] for entry in listed] == [run.key for run in group.runs]
    assert not list((finished / "results").rglob(".*.tmp*"))


def test_tables_put_the_paper_beside_ours(finished):
    table1 = pd.read_csv(finished / "results" / "tables" / "table1.csv")
    models = {"PrefixLM-SL", "CausalLM-SL", "PrefixLM-UL", "CausalLM-UL"}
    baselines = {"Least squares", "Ridge (lambda 0.1)", "Online GD (causal limit)"}
    assert set(table1["row"]) == models | baselines
    exact = table1[(table1["row"] == "Least squares") & (table1["task"] == "lr")]
    assert exact["mean"].item() < 1e-10, "noiseless LR with more ICEs than dimensions: least squares is exact"
    online = table1[(table1["row"] == "Online GD (causal limit)") & (table1["task"] == "lr")]
    assert online["mean"].item() > 1e-4, "one online pass over 8 ICEs in R^4 is not exact"
    assert table1.loc[(table1["row"] == "CausalLM-SL") & (table1["task"] == "lr"), "paper"].item() == 0.19
    assert (table1["seeds"] == 2).all()
    paired = pd.read_csv(finished / "results" / "tables" / "paired_comparison.csv")
    assert {"ratio", "ratio_ci_low", "ratio_ci_high", "p_value", "p_holm"} <= set(paired.columns)
    assert (table1.loc[table1["metric"] == "query_mse", "ci_low"].dropna() >= 0).all()


def test_a_finished_pipeline_has_nothing_left_to_do(finished):
    assert "Nothing to be done" in snakemake(finished, "-n").stdout


def test_two_clean_runs_write_the_same_bytes(finished, tmp_path):
    snakemake(tmp_path, "--cores", "2")
    first, second = reproducible_files(finished), reproducible_files(tmp_path)
    assert first.keys() == second.keys()
    assert {".parquet", ".csv", ".md", ".png", ".pdf", ".pt"} <= {Path(name).suffix for name in first}
    differing = sorted(name for name in first if first[name] != second[name])
    assert not differing, f"{len(differing)} files differ between two clean runs: {differing}"


def test_a_theory_figure_builds_only_the_theory(tmp_path):
    jobs = planned_jobs(tmp_path, "results/figures/fig2.pdf")
    assert jobs == {"theory": 2, "figure": 1}  # Fig. 2 reads the depth curves and the stationary points


def test_fig3_trains_only_the_groups_of_its_sweep(tmp_path):
    dry_run = snakemake(tmp_path, "results/figures/fig3_probe_layers.pdf", "-n").stdout
    trained = re.findall(r"^rule train:\n(?:    .*\n)*?    wildcards: group=(\w+)", dry_run, re.M)
    tiny = plan.make_plan(config.load(TINY))
    assert sorted(trained) == sorted(g.name for g in tiny.groups if "table1" in g.sweep.split("+"))
    assert planned_jobs(tmp_path, "results/figures/fig3_probe_layers.pdf")["aggregate"] == 1


def test_a_run_shared_by_two_sweeps_is_trained_once():
    tiny = plan.make_plan(config.load(TINY))
    shared = {r.key for r in tiny.sweeps["table1"]} & {r.key for r in tiny.sweeps["fig6"]}
    assert shared, "tiny config should make fig6 reuse table1's SL lr runs"
    grouped = [run.key for group in tiny.groups for run in group.runs]
    assert len(grouped) == len(set(grouped)) == len(tiny.runs())


def test_workflow_is_lint_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "Snakefile")],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_the_report_holds_every_artifact_with_its_caption(finished):
    snakemake(finished, "--report", "report.html")
    html = (finished / "report.html").read_text(errors="replace")
    for artifact in artifacts.available(config.load(TINY)):
        assert artifact.name in html, artifact.name
    assert "Scale: softmax (released variant, rbf attention) models, 2 layers, width 16" in html  # the trained artifacts' caption states the tiny scale
    assert "paper" in html
    assert "summary.csv" in html  # every job's runtime and memory

def test_baselines_are_scored_on_the_models_test_prompts(finished):
    tiny = plan.make_plan(config.load(TINY))
    run = tiny.sweeps["table1"][0]
    scores = metrics.read([finished / run.baselines(config.load(TINY)["evaluate"]["x_shifts"])])
    assert set(scores["model"]) == {"least_squares", "ridge", "online_gd"}
    assert set(scores["x_shift"]) == {0.0, 1.0}
    assert set(scores["n_context"]) == set(range(1, run.spec["n_context"] + 1))


def test_real_data_models_are_tested_on_every_held_out_set_beside_classifiers(finished):
    frame = metrics.read([finished / "results" / "metrics" / "real.parquet"])
    test = frame[frame["split"] == "test"]
    assert set(test["test_set"]) == set(episodes.TEST_SETS)
    assert set(test["model"]) == {"softmax", "knn", "logistic_regression", "least_squares"}
    assert set(test.loc[test["model"] == "knn", "n_context"]) == set(range(1, 9))
    table = pd.read_csv(finished / "results" / "tables" / "ext_real_data_table.csv")
    ran = table[table["seeds"] > 0]
    assert set(ran["test_set"]) == set(episodes.TEST_SETS) and ran["accuracy"].between(0, 100).all()
    assert set(ran["row"]) == {"PrefixLM-SL", "CausalLM-SL", "3-nearest neighbours", "Logistic regression", "Least squares"}


def test_trained_lsa_is_compared_with_the_construction_on_its_own_test_prompts(finished):
    tiny = config.load(TINY)
    frame = metrics.read([finished / "results" / "metrics" / "lsa.parquet"])
    constructed = frame[frame["model"] == "lsa_constructed"]
    assert set(constructed["n_layers"]) == set(range(1, tiny["theory"]["max_depth"] + 1))
    assert set(constructed["eta"]) == {tiny["theory"]["eta"], *tiny["theory"]["eta_sweep"]}
    assert set(constructed["seed"]) == set(frame.loc[frame["model"] == "lsa", "seed"])
