"""Every model is trained once, and every job can be addressed by its rule's name.

- The real `snakemake` on small configs: adding a sweep, resizing the groups or changing a setting
  retrains exactly the runs that are new, counted from the train jobs' logs; `--forcerun train`
  retrains on purpose.
- Dry runs: `--set-resources`, `--set-threads`, a profile's `set-resources`, `--until` and
  `--forcerun` reach the `train` rule, and the rule graph does not grow with the number of groups.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from icl import config, plan, store

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"
SHARED_L2 = [{"shared": True, "l2": True}]
TABLE1 = {"grid": {"task": ["lr"], "mask": ["prefix", "causal"]}, "variants": SHARED_L2}
FIG6 = {"grid": {"task": ["lr"], "mask": ["prefix", "causal"], "train_batches": [2, 4]}, "variants": SHARED_L2}


def write_config(path: Path, sweeps: dict, **execution) -> Path:
    """The tiny config with these sweeps; the pipeline reads config.yaml first, so its other sweeps stay planned."""
    tiny = yaml.safe_load(TINY.read_text())
    tiny["sweeps"] = sweeps
    tiny["execution"] |= execution
    path.write_text(yaml.safe_dump(tiny))
    return path


def merged(base: dict, override: dict) -> dict:
    """Snakemake's merge of config files: nested mappings key by key, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def pipeline_plan(configfile):
    """The plan the pipeline makes from config.yaml and then `configfile`."""
    read = lambda path: yaml.safe_load(Path(path).read_text())
    return plan.make_plan(config.validate(merged(read(REPO / "config.yaml"), read(configfile))))


def snakemake(workdir, configfile, *args):
    command = [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(configfile)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def trained_keys(workdir, configfile, sweeps, *args) -> list:
    """Train what the sweeps' metrics need (--until train) and return the keys of the runs the train jobs trained."""
    shutil.rmtree(workdir / "results" / "logs" / "train", ignore_errors=True)
    targets = [f"results/metrics/{sweep}.parquet" for sweep in sweeps]
    snakemake(workdir, configfile, *targets, "--cores", "2", "--until", "train", *args)
    logs = (workdir / "results" / "logs" / "train").glob("*.log")
    return [match for log in logs for match in re.findall(r"^training (\w+) ", log.read_text(), re.M)]


def run_keys(configfile, *sweeps) -> set:
    planned = pipeline_plan(configfile)
    return {run.key for sweep in sweeps for run in planned.sweeps[sweep]}


def test_adding_a_sweep_regrouping_or_changing_a_setting_retrains_only_new_runs(tmp_path):
    work = tmp_path / "work"
    first = write_config(tmp_path / "first.yaml", {"table1": TABLE1})
    assert sorted(trained_keys(work, first, ["table1"])) == sorted(run_keys(first, "table1"))

    # a second sweep that shares the first one's runs: its groups differ, its shared runs are not retrained
    both = write_config(tmp_path / "both.yaml", {"table1": TABLE1, "fig6": FIG6})
    new = run_keys(both, "table1", "fig6") - run_keys(first, "table1")
    assert len(new) == 4 and len(run_keys(both, "table1", "fig6")) == 8
    assert sorted(trained_keys(work, both, ["table1", "fig6"])) == sorted(new)

    # the same runs in groups of one: a new train job per run, none of which trains
    regrouped = write_config(tmp_path / "regrouped.yaml", {"table1": TABLE1, "fig6": FIG6}, group_size=1)
    assert trained_keys(work, regrouped, ["table1", "fig6"]) == []
    assert len(list((work / "results" / "logs" / "train").glob("*.log"))) == 8

    # a changed training setting in one sweep: exactly the runs it changes are trained
    faster = {**FIG6, "variants": [SHARED_L2[0] | {"learning_rate": 2e-3}]}
    changed = write_config(tmp_path / "changed.yaml", {"table1": TABLE1, "fig6": faster})
    assert len(run_keys(changed, "fig6") - run_keys(both, "fig6")) == 8
    assert sorted(trained_keys(work, changed, ["table1", "fig6"])) == sorted(run_keys(changed, "fig6"))

    # on purpose: --forcerun train retrains the runs of the targets' groups; stored models are read-only
    assert sorted(trained_keys(work, changed, ["table1"], "--forcerun", "train")) == sorted(run_keys(changed, "table1"))
    for run in pipeline_plan(changed).sweeps["table1"]:
        assert (work / run.file(store.MODEL)).stat().st_mode & 0o222 == 0


# --- dry runs: the rules can be addressed by name ---


def dry_run(workdir, *args) -> str:
    return snakemake(workdir, TINY, "-n", "--cores", "4", *args)


def job_blocks(output: str, rule: str) -> list:
    """The dry run's description of each job of a rule."""
    return re.findall(rf"^rule {rule}:\n((?:    .*\n)+)", output, re.M)


def test_resources_and_threads_of_every_training_job_are_set_by_rule_name(tmp_path):
    output = dry_run(tmp_path, "--set-resources", "train:runtime=600", "--set-threads", "train=3")
    blocks = job_blocks(output, "train")
    assert len(blocks) == len(plan.make_plan(config.load(TINY)).groups)
    for block in blocks:
        assert "runtime=600" in block and "threads: 3" in block


def test_a_profile_sets_the_resources_of_the_train_rule(tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "profile.yaml").write_text("set-resources:\n  train:\n    runtime: 77\n")
    blocks = job_blocks(dry_run(tmp_path, "--workflow-profile", str(profile)), "train")
    assert blocks and all("runtime=77" in block for block in blocks)


def test_until_train_stops_after_training(tmp_path):
    output = dry_run(tmp_path, "--until", "train")
    rules = set(re.findall(r"^rule (\w+):", output, re.M))
    assert rules == {"train_data", "train"}


def test_forcerun_train_names_every_training_job_of_a_finished_target(tmp_path):
    """A dry run on a finished target: nothing to do, unless the train rule is forced."""
    target = "results/groups/" + plan.make_plan(config.load(TINY)).groups[0].name + "/trained.json"
    snakemake(tmp_path, TINY, "--cores", "2", target)
    assert job_blocks(dry_run(tmp_path, target), "train") == []
    forced = job_blocks(dry_run(tmp_path, target, "--forcerun", "train"), "train")
    assert len(forced) == 1 and "Forced execution" in forced[0]


def test_training_jobs_run_first_and_the_largest_first(tmp_path):
    """Train jobs outrank every other job, the datasets they read come next, and a group with more work
    ranks higher: the long jobs start first and the short ones fill the cores at the end."""
    output = dry_run(tmp_path)
    groups = {group.name: group for group in plan.make_plan(config.load(TINY)).groups}
    priorities = {}
    for block in job_blocks(output, "train"):
        name = re.search(r"wildcards: group=(\S+)", block).group(1)
        priorities[name] = float(re.search(r"priority: (\S+)", block).group(1))
        assert priorities[name] == groups[name].train_priority() > 2
    assert priorities.keys() == groups.keys()
    assert all("priority: 1\n" in block for block in job_blocks(output, "train_data"))
    assert not any("priority" in block for rule in ("test_data", "baselines", "evaluate", "theory") for block in job_blocks(output, rule))
    runs = next(group.runs for group in groups.values() if len(group.runs) > 1)
    assert plan.Group(name="g", sweep="s", runs=runs[:2]).train_priority() > plan.Group(name="g", sweep="s", runs=runs[:1]).train_priority()


def test_the_rule_graph_does_not_grow_with_the_number_of_groups(tmp_path):
    nodes = []
    for size in (8, 1):
        configfile = write_config(tmp_path / f"size{size}.yaml", yaml.safe_load(TINY.read_text())["sweeps"], group_size=size)
        graph = snakemake(tmp_path, configfile, "--rulegraph")
        nodes.append(len(re.findall(r"^\s*\d+\[label", graph, re.M)))
    assert len(plan.make_plan(config.load(tmp_path / "size1.yaml")).groups) > len(plan.make_plan(config.load(TINY)).groups)
    assert nodes[0] == nodes[1] == 12


@pytest.mark.parametrize("stages", [[], ["train"], ["train", "evaluate"]])
def test_forced_stages_reach_the_jobs_through_the_environment(monkeypatch, stages):
    environment = store.forced_environment(frozenset(stages), forceall=False)
    monkeypatch.delenv(store.FORCE_VARIABLE, raising=False)
    monkeypatch.setenv(store.FORCE_VARIABLE, environment.get(store.FORCE_VARIABLE, ""))
    assert [s for s in store.STAGES if store.forced(s)] == stages
    assert store.forced_environment(frozenset(), forceall=True) == {store.FORCE_VARIABLE: "train,evaluate"}
