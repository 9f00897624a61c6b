"""Nothing in a config reaches a shell, and one run at a time writes a results/ folder.

These run the real `snakemake`, in folders whose names hold shell syntax and spaces.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from icl import run_lock

REPO = Path(__file__).resolve().parents[1]
HOSTILE = ["$(touch MARK_subst)", "`touch MARK_backtick`", "a;touch MARK_semicolon;b", "' ; touch MARK_quote ; '", '" && touch MARK_dquote #']

# One small sweep: 2 models of 2 layers for a few steps.
SMALL = {
    "seeds": 1,
    "data": {"x_dim": 2, "n_context": 4, "n_queries": 2, "train_batches": 2, "test_sequences": 8},
    "model": {"n_layers": 1, "width": 8, "heads": 2, "ffn_width": 8},
    "train": {"steps": 4, "batch_size": 4},
    "evaluate": {"n_context": [2], "x_shifts": [0]},
    "execution": {"device": "cpu", "threads": 1, "log_every": 2, "checkpoint_every": 2},
    "theory": {"sequences": 4, "queries": 4, "max_depth": 2, "eta_sweep": [1.6], "stationary_n": {"start": 4, "stop": 8, "step": 4},
               "x_shifts": [0], "seeds": 1},
}


def snakemake(workdir, config_path, *args, **kwargs):
    command = [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(config_path)]
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def write_config(path, **changes):
    path.write_text(yaml.safe_dump(SMALL | changes))
    return path


def markers(root):
    return sorted(p.name for p in Path(root).rglob("MARK*"))


def test_hostile_strings_in_free_text_and_folder_names_never_run(tmp_path):
    workdir = tmp_path / "a folder $(touch MARK_dir) ; touch MARK_dir2"
    workdir.mkdir()
    sweeps = {f"hostile_{i}": {"description": text, "grid": {"mask": ["prefix", "causal"]}} for i, text in enumerate(HOSTILE[:2])}
    config_path = write_config(tmp_path / "hostile.yaml", sweeps=sweeps)
    result = snakemake(workdir, config_path, "--cores", "2", "results/metrics/hostile_0.parquet")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (workdir / "results" / "metrics" / "hostile_0.parquet").stat().st_size > 0
    assert markers(tmp_path) == [] and markers(Path.cwd()) == []


@pytest.mark.parametrize("name", [HOSTILE[0], "../../.."])  # every pattern is checked in tests/test_config.py
def test_a_sweep_name_with_shell_or_path_syntax_stops_before_any_job(tmp_path, name):
    config_path = write_config(tmp_path / "bad.yaml", sweeps={name: {"grid": {"mask": ["prefix"]}}})
    result = snakemake(tmp_path, config_path, "--cores", "1")
    assert result.returncode != 0
    assert f"config.sweeps: the name {name!r} is not allowed" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and markers(tmp_path) == []


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_second_run_on_the_same_results_stops_at_once_and_a_killed_run_leaves_no_claim(tmp_path):
    # The first run trains long enough for the second to start while it holds the lock.
    slow = write_config(tmp_path / "slow.yaml", train={"steps": 100_000, "batch_size": 4},
                        sweeps={"slow": {"grid": {"mask": ["prefix"]}}})
    target = "results/metrics/slow.parquet"
    first = subprocess.Popen(
        [sys.executable, "-m", "snakemake", target, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(slow), "--cores", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        lock = tmp_path / run_lock.LOCK_PATH
        wait_for(lambda: lock.exists() and "pid" in lock.read_text(), 120, "the first run to take the lock")
        # Snakemake's own lock is a set of files that --unlock removes, as its message advises; ours is not.
        assert snakemake(tmp_path, slow, "--unlock").returncode == 0
        second = snakemake(tmp_path, slow, "--cores", "1", "--rerun-incomplete", target)
        assert second.returncode != 0
        assert "another Snakemake run (pid" in second.stdout + second.stderr
        assert not (tmp_path / "results" / "metrics").exists()

        # Opting in lets a run of disjoint targets go ahead beside it.
        allowed = write_config(tmp_path / "allowed.yaml", execution=SMALL["execution"] | {"allow_concurrent_runs": True},
                               sweeps={"slow": {"grid": {"mask": ["prefix"]}}})
        beside = snakemake(tmp_path, allowed, "--cores", "1", "results/metrics/theory_stationary.parquet")
        assert beside.returncode == 0, beside.stdout[-3000:] + beside.stderr[-3000:]
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: no clean-up runs
        first.wait()
    run_lock.acquire(lock)  # the killed run's claim went with its process


def test_training_reads_its_execution_settings_from_the_environment_the_workflow_sets(monkeypatch):
    from icl import cli

    monkeypatch.setenv(cli.EXECUTION_VARIABLE, '{"device": "cpu"}')
    command = ["train", "--runs", "[]", "--manifest", "trained.json"]
    assert cli.parser().parse_args(command).execution == {"device": "cpu"}
    monkeypatch.delenv(cli.EXECUTION_VARIABLE)
    with pytest.raises(SystemExit):
        cli.main(command)
