"""A bad config stops with a message naming the key, the value and what is allowed, before any job runs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from icl import config, plan

REPO = Path(__file__).resolve().parents[1]


def test_defaults_fill_every_section():
    filled = config.validate({})
    assert filled["model"]["n_layers"] == 24 and filled["train"]["learning_rate"] == 1e-4
    assert filled["theory"]["eta_sweep"] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2]
    assert filled["sweeps"] == {}


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({"seeds": 0}, "config.seeds = 0 is out of range; it must be >= 1"),
        ({"model": {"attention": "cosine"}}, "config.model.attention = 'cosine' is not allowed; choose one of ['dot', 'rbf']"),
        ({"data": {"x_dim": "sixteen"}}, "config.data.x_dim = 'sixteen' has the wrong type; expected integer"),
        ({"train": {"warmup_fraction": 1.5}}, "config.train.warmup_fraction = 1.5 is out of range; it must be <= 1"),
        ({"data": {"tsk": "lr"}}, "config.data: unknown key 'tsk'; allowed keys:"),
        ({"theory": {"eta_sweep": [0.1, -1]}}, "config.theory.eta_sweep.1 = -1 is out of range; it must be > 0"),
        ({"sweeps": {"t": {"grid": {"mask": ["prefix"]}, "variants": [{"shard": True}]}}}, "config.sweeps.t: unknown run key 'shard'"),
        ({"sweeps": {"t": {"variants": [{}]}}}, "config.sweeps.t: 'grid' is a required property"),
        ({"sweeps": {"t": {"grid": {}}}}, "config.sweeps.t.grid is empty; it needs at least 1 key"),
        ({"sweeps": {"$(touch PWNED)": {"grid": {"mask": ["prefix"]}}}}, "config.sweeps: the name '$(touch PWNED)' is not allowed"),
        ({"sweeps": {"a;touch PWNED;b": {"grid": {"mask": ["prefix"]}}}}, "config.sweeps: the name 'a;touch PWNED;b' is not allowed"),
        ({"sweeps": {"../../..": {"grid": {"mask": ["prefix"]}}}}, "config.sweeps: the name '../../..' is not allowed"),
        ({"sweeps": {"a b": {"grid": {"mask": ["prefix"]}}}}, "letters, digits and underscores, starting with a letter"),
    ],
)
def test_bad_value_names_key_value_and_allowed(bad, expected):
    with pytest.raises(config.ConfigError) as error:
        config.validate(bad)
    assert expected in str(error.value)


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({"sweeps": {"s": {"grid": {"mask": ["prefix", "casual"]}}}},
         "config.sweeps.s.grid.mask = 'casual' is not allowed; choose one of ['prefix', 'causal']"),
        ({"sweeps": {"s": {"grid": {"mask": ["prefix"]}, "variants": [{}, {"n_layers": 0}]}}},
         "config.sweeps.s.variants[1].n_layers = 0 is out of range; it must be >= 1"),
        ({"model": {"width": 30, "heads": 4}, "sweeps": {"s": {"grid": {"task": ["lr"]}}}},
         "config.model.heads = 4 must divide width = 30"),
        ({"data": {"n_context": 10}, "evaluate": {"n_context": [16]}, "sweeps": {"s": {"grid": {"task": ["lr"]}}}},
         "config.evaluate.n_context [16] exceeds config.data.n_context = 10"),
    ],
)
def test_bad_value_inside_a_sweep_names_its_full_config_path(bad, expected):
    with pytest.raises(config.ConfigError) as error:
        plan.make_plan(config.validate(bad))
    assert expected in str(error.value)


def test_an_error_names_the_file_that_set_the_key(tmp_path):
    base, override = tmp_path / "base.yaml", tmp_path / "override.yaml"
    base.write_text(yaml.safe_dump({"sweeps": {"s": {"grid": {"n_layers": [2]}}}}))
    override.write_text(yaml.safe_dump({"sweeps": {"s": {"grid": {"n_layers": [0]}}}}))
    merged = {"sweeps": {"s": {"grid": {"n_layers": [0]}}}}
    with pytest.raises(config.ConfigError, match=rf"config.sweeps.s.grid.n_layers = 0 .* \(set in {override}\)"):
        plan.from_config(merged, [base, override])


def test_a_dataset_file_over_the_data_budget_stops_the_plan_with_its_size():
    huge = {"data": {"x_dim": 10_000_000}, "sweeps": {"s": {"grid": {"task": ["lr"]}}}, "seeds": 1}
    with pytest.raises(config.ConfigError, match=r"execution.data_budget_gb = 4, but results/data/lr/.*train-b1000.pt would hold about 1.54e\+05 GB; lower data.x_dim"):
        plan.from_config(huge)


def test_a_model_over_the_memory_budget_stops_the_plan_with_its_estimate():
    huge = {"train": {"batch_size": 100_000}, "data": {"train_batches": 1}, "sweeps": {"s": {"grid": {"task": ["lr"]}}}, "seeds": 1}
    with pytest.raises(config.ConfigError, match=r"execution.memory_budget_gb = 8, but one model of results/runs/lr/.* needs about \d.* GB in training"):
        plan.from_config(huge)
    plan.from_config(huge | {"execution": {"memory_budget_gb": 5000}})  # the named key is the way out


def test_released_heads_square_must_divide_width():
    """The released model's heads have width / heads^2 features; the standard and LSA models only need heads | width."""
    sweeps = {"s": {"grid": {"task": ["lr"]}}}
    bad = config.validate({"model": {"width": 12, "heads": 4}, "sweeps": sweeps})
    with pytest.raises(config.ConfigError, match=r"heads\^2 = 16 must divide width = 12"):
        plan.make_plan(bad)
    for model in ({"variant": "standard"}, {"model": "lsa"}):
        plan.make_plan(config.validate({"model": {"width": 12, "heads": 4} | model, "sweeps": sweeps}))


def test_the_variant_names_the_run_and_splits_groups():
    """The released softmax model is marked in its run's path; the variant fixes the shape, so a group holds one."""
    variants = {"s": {"grid": {"variant": ["released", "standard"], "attention": ["rbf"]}, "variants": [{}, {"model": "lsa"}]}}
    built = plan.make_plan(config.validate({"seeds": 1, "sweeps": variants}))
    names = sorted(run.directory.parts[3] for run in built.runs())
    assert names == ["lsa-SL-24x128h2", "lsa-SL-24x128h2", "softmax-rbf-SL-24x128h2", "softmax-rel-rbf-SL-24x128h2"]
    assert all(len({run.spec["variant"] for run in group.runs}) == 1 for group in built.groups)


def test_the_ice_term_splits_groups():
    """A run with the L2 term computes every position in its last layer, one without only the queries: a
    group holds one kind. An L2 weight of 0 is no ICE term."""
    sweeps = {"s": {"grid": {"task": ["lr"]}, "variants": [{"l2": True}, {"l2": False}, {"l2": True, "l2_weight": 0.0}, {"l2": True, "l2_weight": 0.5}]}}
    built = plan.make_plan(config.validate({"seeds": 2, "sweeps": sweeps}))
    kinds = sorted(sorted((run.spec["l2"], run.spec["l2_weight"]) for run in group.runs) for group in built.groups)
    assert kinds == [
        [(False, 1.0), (False, 1.0), (True, 0.0), (True, 0.0)],
        [(True, 0.5), (True, 0.5), (True, 1.0), (True, 1.0)],
    ]


def test_groups_are_as_few_as_group_size_allows_and_balanced():
    """20 runs of one shape in groups of at most 12 make two groups of 10, not 12 and 8; every run is in one group."""
    sweeps = {"s": {"grid": {"task": ["lr", "nlr"], "mask": ["prefix", "causal"]}, "variants": [{}]}}
    for size, expected in [(12, [10, 10]), (7, [6, 7, 7]), (20, [20]), (6, [5, 5, 5, 5]), (3, [2, 3, 3, 3, 3, 3, 3])]:
        built = plan.make_plan(config.validate({"seeds": 5, "sweeps": sweeps, "execution": {"group_size": size}}))
        assert sorted(len(group.runs) for group in built.groups) == expected, size
        assert sorted(run.key for group in built.groups for run in group.runs) == sorted(run.key for run in built.runs())


def test_shipped_configs_are_valid():
    for path in [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml")), REPO / "tests" / "data" / "tiny.yaml"]:
        plan.from_config(yaml.safe_load(path.read_text()), [path])


def test_planning_the_default_config_loads_no_torch(tmp_path):
    """A dry run, like every cluster job's reading of the Snakefile, plans without importing torch (about 3 s of
    CPU per process). A config with the real task does load scikit-learn to check its prompt lengths."""
    command = [sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "--cores", "2", "-s", str(REPO / "Snakefile"),
               "--directory", str(tmp_path), "--configfile", str(REPO / "config.yaml")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert {"icl.plan", "icl.captions", "pandas"} <= imported  # the check sees the workflow's imports (Snakemake's own include pandas)
    assert not [module for module in imported if module.split(".")[0] in ("torch", "sklearn")]


def test_snakemake_refuses_a_bad_config_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": {"attention": "cosine"}}))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(bad), "--cores", "1"],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "model.attention = 'cosine' is not allowed; choose one of ['dot', 'rbf']" in result.stdout + result.stderr
    assert f"(set in {bad})" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_variants_that_resolve_to_the_same_run_give_it_once():
    cfg = config.validate({"seeds": 2, "sweeps": {"s": {"grid": {"mask": ["prefix"]}, "variants": [{}, {"n_layers": 24}]}}})
    runs = plan.make_plan(cfg)
    assert len(runs.sweeps["s"]) == 2  # n_layers 24 is the default: one run per seed
    assert [g.sweep for g in runs.groups] == ["s"]


def test_the_schema_allows_exactly_what_the_registries_implement():
    """A task, mask, model, variant or attention added to (or removed from) the code is one the config accepts."""
    from icl import masks, models, tasks

    properties = {key: spec for section in ("data", "model") for key, spec in config.schema()["properties"][section]["properties"].items()}
    assert properties["task"]["enum"] == list(tasks.TASKS)
    assert properties["mask"]["enum"] == list(masks.TRAINED_MASKS)
    assert properties["model"]["enum"] == list(models.MODELS)
    assert properties["variant"]["enum"] == list(models.VARIANTS)
    assert properties["attention"]["enum"] == list(models.ATTENTIONS)


def _with_lm(**lm):
    return {"lm": lm}


@pytest.mark.parametrize(("lm", "message"), [
    ({"sizes": [{"n_layers": 2, "width": 30, "heads": 4}]}, "config.lm.sizes[0].heads = 4 must divide width = 30"),
    ({"context": 40}, "config.lm.context = 40 is shorter than the longest prompt, 100 tokens"),
    ({"corpus": {"document_length": 64}}, "config.lm.corpus.document_length = 64 is shorter than lm.context = 128"),
    ({"objectives": ["causal", "t5"]}, "config.lm.objectives.1 = 't5' is not allowed"),
])
def test_bad_lm_settings_name_the_key(lm, message):
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.validate(_with_lm(**lm))


def test_lm_section_is_absent_by_default_and_filled_when_present():
    assert "lm" not in config.validate({})
    filled = config.validate(_with_lm())["lm"]
    assert filled["objectives"] == ["causal", "prefix", "prefix_full"] and filled["corpus"]["vocab_size"] == 50
