"""Figures and tables say what the data show: the same intervals in both, Holm-corrected tests, Fig. 2 as the paper draws it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from test_data import spec

from icl import artifacts, config, figures, metrics, names, stats, tables, tasks

MSE_SEEDS = {"prefix": [0.002, 0.03, 0.4], "causal": [0.05, 0.2, 0.9]}  # skewed: an arithmetic interval goes below 0


def metrics_rows(**columns) -> pd.DataFrame:
    """Test-split rows of the final read-out of 2-layer softmax SL runs (with L2) on lr, one per seed, unless overridden."""
    defaults = dict(
        task="lr", setting="s-lr", model="softmax", attention="dot", variant="released", n_layers=2, width=16, heads=2, shared=True, l2=True, permute=False,
        train_batches=4, train_n_context=8, eta=np.nan, split="test", test_set="synthetic", n_context=8, x_shift=0.0,
        layer=2, step=20, metric="query_mse",
    )
    frame = pd.DataFrame(columns) if any(isinstance(v, list) for v in columns.values()) else pd.DataFrame([columns])
    for name, value in defaults.items():
        if name not in frame:
            frame[name] = value
    return frame.assign(run_key=frame["mask"] + frame["seed"].astype(str) + frame["x_shift"].astype(str))


def table1_frame(shifts=(0.0,)) -> pd.DataFrame:
    return pd.concat([
        metrics_rows(mask=[mask] * 3, seed=[0, 1, 2], x_shift=[shift] * 3, value=[v * (1 + shift) for v in values])
        for mask, values in MSE_SEEDS.items() for shift in shifts
    ], ignore_index=True)


def drawn(monkeypatch, name, frames, configs):
    """Draw a figure and return it instead of saving it."""
    kept = {}
    monkeypatch.setattr(figures, "save", lambda fig, path, caption: kept.update(fig=fig, caption=caption))
    figures.draw(name, frames, configs, None)
    return kept["fig"], kept["caption"]


def test_every_artifact_is_drawn_or_tabled_by_exactly_one_function():
    kinds = {name: a.kind for name, a in artifacts.ARTIFACTS.items()}
    assert set(figures.FIGURES) == {n for n, k in kinds.items() if k == "figure"}
    assert set(tables.TABLES) == {n for n, k in kinds.items() if k == "table"}


def test_an_mse_table_shows_a_geometric_interval_and_no_negative_lower_bound():
    summary, text = tables.TABLES["table1"]({"table1": table1_frame()}, {"table1": {}})
    prefix = summary[(summary["row"] == "PrefixLM-SL") & (summary["task"] == "lr")].iloc[0]
    assert (prefix["mean"], prefix["ci_low"], prefix["ci_high"]) == pytest.approx(stats.geometric_mean_ci(MSE_SEEDS["prefix"]))
    assert prefix["average"] == "geometric"
    assert stats.mean_ci(MSE_SEEDS["prefix"])[1] < 0 < prefix["ci_low"]
    assert (summary["ci_low"].dropna() >= 0).all() and "[-" not in text


def test_a_figure_band_is_the_table_interval(monkeypatch):
    frame = table1_frame(shifts=(0.0, 1.0))
    summary, _ = tables.TABLES["table1"]({"table1": frame}, {"table1": {}})
    fig, _ = drawn(monkeypatch, "ext_distribution_shift", {"table1": frame}, {"table1": {}})
    ax = fig.axes[0]
    for mask, row in (("prefix", "PrefixLM-SL"), ("causal", "CausalLM-SL")):
        expected = summary[(summary["row"] == row) & (summary["task"] == "lr")].iloc[0]
        colour = to_rgb(figures.MASK_PALETTE[mask])
        line = next(line for line in ax.get_lines() if to_rgb(line.get_color()) == colour and len(line.get_xdata()) == 2)
        band = next(c for c in ax.collections if np.allclose(c.get_facecolor()[0][:3], colour))
        at_zero = band.get_paths()[0].vertices
        at_zero = at_zero[np.isclose(at_zero[:, 0], 0.0), 1]
        assert line.get_ydata()[0] == pytest.approx(expected["mean"])
        assert (at_zero.min(), at_zero.max()) == pytest.approx((expected["ci_low"], expected["ci_high"]))


def test_the_paired_comparison_corrects_its_p_values_for_every_setting_it_tests():
    frame = pd.concat([table1_frame(), table1_frame().assign(task="nlr", setting="s-nlr", run_key=lambda f: "nlr" + f["run_key"])])
    summary, text = tables.TABLES["paired_comparison"]({"table1": frame}, {"table1": {}})
    assert len(summary) == 2
    assert summary["p_holm"].to_numpy() == pytest.approx(stats.holm(summary["p_value"]))
    assert (summary["p_holm"] >= summary["p_value"]).all()
    assert "p (Holm)" in text and "for the 2 settings tested" in text


def test_settings_that_the_table_columns_do_not_tell_apart_are_never_pooled():
    """Two learning rates, say: the same task, model and regulariser, but two settings, each compared on its own seeds."""
    other = table1_frame().assign(setting="s-lr-faster", run_key=lambda f: "faster" + f["run_key"], value=lambda f: f["value"] * 10)
    summary = tables.paired(tables.final_errors(pd.concat([table1_frame(), other])))
    assert sorted(summary["setting"]) == ["s-lr", "s-lr-faster"]
    assert (summary["seeds"] == 3).all()
    assert summary.set_index("setting").loc["s-lr-faster", "prefix_mean"] == pytest.approx(
        10 * summary.set_index("setting").loc["s-lr", "prefix_mean"])


def theory_frames():
    depth = pd.DataFrame([
        dict(mask=mask, metric=metric, layer=layer, seed=seed, eta=1.6, value=10.0 ** -layer * (seed + 1))
        for mask in ("prefix", "causal", "causal2") for metric in ("ice_mse", "query_mse") for layer in range(1, 5) for seed in range(2)
    ])
    stationary = pd.DataFrame([
        dict(mask=mask, metric="query_mse", n_context=n, x_shift=shift, seed=seed, value=(1 + shift) / n * (seed + 1))
        for mask in ("prefix", "causal", "causal2") for n in (20, 40) for shift in (0.0, 1.0) for seed in range(2)
    ])
    theory = dict(d=16, n_context=40, sequences=8, queries=16, seeds=2, eta=1.6)
    return {"theory_depth": depth, "theory_stationary": stationary}, {name: {"theory": theory} for name in ("theory_depth", "theory_stationary")}


def test_fig2_draws_the_papers_three_panels_and_no_causal2(monkeypatch):
    fig, caption = drawn(monkeypatch, "fig2", *theory_frames())
    left, middle, right = fig.axes[:3]
    assert "prefixLM" in left.get_title() and "causalLM" in middle.get_title() and "stationary" in right.get_title()
    causal2 = to_rgb(figures.MASK_PALETTE["causal2"])
    for ax, mask in ((left, "prefix"), (middle, "causal")):
        curves = [line for line in ax.get_lines() if len(line.get_xdata()) == 4]
        assert len(curves) == 2 and all(to_rgb(line.get_color()) == to_rgb(figures.MASK_PALETTE[mask]) for line in curves)
    assert all(to_rgb(line.get_color()) != causal2 for ax in (left, middle) for line in ax.get_lines())
    assert "1e-3" not in caption and "0.001" not in caption


def test_the_theory_table_reads_the_stationary_point_one_paper_step_either_side_of_100_ices():
    frames, configs = theory_frames()
    frames["theory_stationary"] = pd.DataFrame([
        dict(mask=mask, n_context=n, x_shift=shift, seed=seed, value=(1 + shift) / n * (seed + 1))
        for mask in ("prefix", "causal", "causal2") for n in range(20, 201, 20) for shift in (0.0, 1.0) for seed in range(2)
    ])
    configs["theory_depth"]["theory"] |= dict(max_depth=4, eta_sweep=[1.6])
    summary, text = tables.TABLES["theory_values"](frames, configs)
    crossing = summary[summary["paper"].str.contains("over 100 ICEs")]
    assert list(crossing["quantity"]) == [f"causal stationary point, mu_x = 0, {n} ICEs" for n in (80, 100, 120)]
    at_100 = crossing.iloc[1]
    assert (at_100["mean"], at_100["ci_low"], at_100["ci_high"]) == pytest.approx(stats.geometric_mean_ci([1 / 100, 2 / 100]))
    lowest = summary[summary["quantity"].str.startswith("causal query MSE, lowest")].iloc[0]
    assert lowest["seed_min"] == pytest.approx(1e-4) and lowest["seed_max"] == pytest.approx(2e-4)  # depth 4 of 10^-layer x (seed + 1)
    assert "every 20 ICEs" in text


# Runs pipeline commands in a fresh interpreter (this one has loaded torch) and lists the heavy modules it imported.
HEAVY_IMPORTS = """
import json, sys
from icl import cli
for argv in json.loads(sys.argv[1]):
    cli.main(argv)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn"))))
"""


def small_theory_command() -> list:
    """A theory command that computes with tensors in a second or so (its --out still to add)."""
    small = config.validate({"theory": {"sequences": 2, "queries": 2, "seeds": 1, "stationary_n": {"start": 4, "stop": 8, "step": 4}}})
    return ["theory", "stationary", "--theory", json.dumps(small["theory"])]


def imported_by(commands) -> list:
    result = subprocess.run([sys.executable, "-c", HEAVY_IMPORTS, json.dumps(commands)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_aggregate_figure_and_table_never_import_torch_or_scikit_learn(tmp_path):
    """They run where Snakemake runs, on a cluster's login node: they must stay light."""
    run = tmp_path / "runs" / "one" / "metrics.parquet"
    metrics.write(table1_frame(shifts=(0.0, 1.0)), run, spec())
    table1 = tmp_path / "table1.parquet"
    light = [
        ["aggregate", str(run), "--sweep", "table1", "--evaluate", "{}", "--out", str(table1)],
        ["table", "table1", "--metrics", f"table1={table1}", "--out", str(tmp_path / "table1.csv")],
        ["figure", "ext_distribution_shift", "--metrics", f"table1={table1}", "--out", str(tmp_path / "shift.pdf")],
    ]
    assert imported_by(light) == []
    assert all((tmp_path / name).stat().st_size > 0 for name in ("table1.csv", "table1.md", "shift.pdf", "shift.png"))
    # The check can fail: a command that computes with tensors does import torch.
    theory = [*small_theory_command(), "--out", str(tmp_path / "theory.parquet")]
    assert "torch" in imported_by([theory])


def test_a_job_process_loads_its_imports_uncollected_then_collects_again_and_exits_cleanly(tmp_path):
    """python -m icl, as a job runs it: torch is imported with the collector off, then frozen out of
    later collections with the collector back on; the process ends without the interpreter's
    teardown, yet its output and its standard streams are complete and its exit status is 0."""
    theory = small_theory_command()
    probe = (
        "import gc, json, sys; from icl import cli; cli.main(json.loads(sys.argv[1]), own_process=True); "
        "print(json.dumps([gc.isenabled(), gc.get_freeze_count(), 'torch' in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", probe, json.dumps([*theory, "--out", str(tmp_path / "a.parquet")])],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    enabled, frozen, imported_torch = json.loads(result.stdout.splitlines()[-1])
    assert enabled and imported_torch and frozen > 100_000  # torch's objects, frozen
    # the module entry point: text still buffered at the end reaches the log; the teardown (which
    # would run this atexit handler) does not happen
    entry = (
        "import atexit, runpy, sys; sys.argv = ['icl', *sys.argv[1:]]; print('buffered'); "
        "atexit.register(print, 'teardown'); runpy.run_module('icl', run_name='__main__')"
    )
    # a job's stdout is its log file, block-buffered unless PYTHONUNBUFFERED says otherwise
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    result = subprocess.run([sys.executable, "-c", entry, *theory, "--out", str(tmp_path / "b.parquet")], capture_output=True, text=True,
                            env=buffered)
    assert result.returncode == 0, result.stderr
    assert "buffered" in result.stdout and "teardown" not in result.stdout
    assert metrics.read([tmp_path / "b.parquet"]).equals(metrics.read([tmp_path / "a.parquet"]))


def test_the_names_artifacts_show_are_those_of_what_the_pipeline_computes():
    from icl import baselines, episodes

    assert list(names.BASELINE_LABELS) == list(baselines.BASELINES)
    assert set(names.BASELINES_FOR_TASK) == set(tasks.TASKS) == set(names.HEADLINE_METRIC) == set(names.OUTPUT_DIM)
    assert list(names.TEST_SET_TITLES) == list(episodes.TEST_SETS)
    for name, task in tasks.TASKS.items():
        classification = issubclass(task, tasks.Classification)
        assert names.HEADLINE_METRIC[name] == ("query_error_pct" if classification else "query_mse"), name


def test_the_benchmark_summary_has_a_row_per_job_and_a_total_per_stage(tmp_path, monkeypatch):
    from icl import benchmarks

    monkeypatch.chdir(tmp_path)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    records = {
        "results/benchmarks/train/g_0.tsv": "12.5\t0:00:12\t300.0\t1\t1\t1\t0\t0\t95.0\t11.9\n",
        "results/benchmarks/train/g_1.tsv": "7.5\t0:00:07\t500.0\t1\t1\t1\t0\t0\t90.0\t6.0\n",
        "results/benchmarks/theory_depth.tsv": "2.0\t0:00:02\t100.0\t1\t1\t1\t0\t0\t99.0\t2.0\n",
    }
    for path, row in records.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(header + row)
    benchmarks.write(list(records), "results/benchmarks/summary.csv")
    table = pd.read_csv("results/benchmarks/summary.csv")
    totals = table[table["job"] == "(all jobs)"].set_index("stage")
    assert totals.loc["train", "seconds"] == 20.0 and totals.loc["train", "max_rss_mb"] == 500.0
    assert totals.loc["theory", "seconds"] == 2.0
    jobs = table[table["job"] != "(all jobs)"]
    assert sorted(jobs["job"]) == ["theory_depth", "train/g_0", "train/g_1"]
    assert benchmarks.record_path("results/logs/train/g_0.log") == Path("results/benchmarks/train/g_0.tsv")
    assert benchmarks.record_path("results/data/lr/s/test-ab.pt") == Path("results/benchmarks/data/lr/s/test-ab.tsv")


def lm_rows(reads_values: dict, k=4) -> pd.DataFrame:
    """Accuracy rows of one 2x16 size, one setting, per (objective, evaluation mask) and seed."""
    rows = []
    for (objective, evaluation_mask), values in reads_values.items():
        for seed, value in enumerate(values):
            rows.append(dict(run_key=f"{objective}/seed{seed}", objective=objective, evaluation_mask=evaluation_mask, n_layers=2, width=16,
                             heads=2, parameters=1000, seed=seed, split="in_distribution", k=k, example_length=3, step=10,
                             metric="accuracy_pct", value=value))
    return pd.DataFrame(rows)


def test_the_lm_gap_is_the_paired_difference_per_seed():
    causal, prefix = [50.0, 60.0, 70.0], [55.0, 61.0, 80.0]
    frame = lm_rows({("causal", "causal"): causal, ("prefix", "prefix"): prefix, ("prefix", "causal"): causal})
    gaps = tables.lm_paired(frame).set_index("comparison")
    mean, low, high, p_value = stats.paired_difference(prefix, causal)
    assert gaps.loc["prefix - causal", "difference"] == pytest.approx(np.mean([5.0, 1.0, 10.0])) == pytest.approx(mean)
    assert (gaps.loc["prefix - causal", "ci_low"], gaps.loc["prefix - causal", "ci_high"]) == pytest.approx((low, high))
    assert gaps.loc["prefix - causal", "better_seeds"] == 3
    assert np.isnan(gaps.loc["prefix, read causally - causal", "p_value"])  # identical: no test
