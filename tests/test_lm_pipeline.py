"""The language-model study end to end: the real `snakemake` on a tiny lm config, and byte-identical reruns of its steps."""

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from icl import artifacts, config, ginc, lm_plan, lm_training, metrics

REPO = Path(__file__).resolve().parents[1]
TINY_LM = REPO / "tests" / "data" / "tiny_lm.yaml"


def tiny_config() -> dict:
    """config.yaml with tiny_lm.yaml on top, as Snakemake merges them."""
    merged = yaml.safe_load((REPO / "config.yaml").read_text())
    for key, value in yaml.safe_load(TINY_LM.read_text()).items():
        merged[key] = merged.get(key, {}) | value if isinstance(value, dict) else value
    return config.validate(merged)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lm")
    command = [sys.executable, "-m", "snakemake", "lm_artifacts", "--cores", "2", "-s", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(TINY_LM)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_the_three_artifacts_are_built(finished):
    built = [a for a in artifacts.available(tiny_config()) if a.name in artifacts.LM_ARTIFACTS]
    assert len(built) == 3
    for artifact in built:
        for path in artifact.outputs:
            assert (finished / path).stat().st_size > 0, path


def test_lm_metrics_hold_every_objective_reading_and_reference(finished):
    path = finished / artifacts.metrics_path("lm")
    assert pq.read_schema(path).equals(metrics.LM_SCHEMA, check_metadata=False)
    frame = metrics.read([path])
    lm = tiny_config()["lm"]
    accuracy = frame[frame["metric"] == "accuracy_pct"]
    readings = set(zip(accuracy["objective"], accuracy["evaluation_mask"]))
    assert readings == {("causal", "causal"), ("prefix", "prefix"), ("prefix", "causal"), ("prefix_full", "prefix"),
                        ("prefix_full", "causal"), ("bayes", "none"), ("chance", "none")}
    per_reading = len(lm["sizes"]) * lm["seeds"] * 2 * len(lm["prompts"]["k"]) * len(lm["prompts"]["example_lengths"])
    assert (accuracy[accuracy["objective"] == "causal"].shape[0]) == per_reading
    assert accuracy["value"].between(0, 100).all()
    assert (frame[frame["metric"] == "train_loss"]["value"] > 0).all()


def test_the_default_config_has_no_lm_artifacts():
    default = config.load(REPO / "config.yaml")
    assert not {a.name for a in artifacts.available(default)} & set(artifacts.LM_ARTIFACTS)
    assert {a.name for a in artifacts.available(tiny_config())} >= set(artifacts.LM_ARTIFACTS)


def test_each_step_writes_the_same_bytes_twice(tmp_path, monkeypatch):
    lm = tiny_config()["lm"]
    spec = lm_plan.ginc_spec(lm)
    execution = {"threads": 1, "cpu_kernels": "auto", "device": "cpu"}
    group = lm_plan.groups(lm)[-1]  # prefix_full: two passes per step
    outputs = []
    for attempt in ("first", "second"):
        (tmp_path / attempt).mkdir()
        monkeypatch.chdir(tmp_path / attempt)
        ginc.save(ginc.corpus_file(spec), Path("corpus.pt"))
        ginc.save(ginc.prompts_file(spec), Path("prompts.pt"))
        lm_training.train(group, Path("corpus.pt"), execution, progress=False)
        lm_training.evaluate(group, Path("prompts.pt"), execution)
        outputs.append([Path(p).read_bytes() for p in ("corpus.pt", "prompts.pt", group.directory / "model.pt", group.directory / "metrics.parquet")])
    assert outputs[0] == outputs[1]
