"""The CPU benchmarks run and print real numbers: the training throughput with its ratio to the released
code, and the paired comparison of the model code with a git revision's."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NUMBER = r"\d+(?:\.\d+)?"


def run_benchmark(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_throughput_benchmark_prints_a_rate_and_its_ratio_to_the_released_code():
    out = run_benchmark("train_throughput.py", "--ks", "2", "--steps", "2", "--repeats", "1", "--warmup", "1", "--layers", "UL")
    row = re.search(rf"^\s+2\s+({NUMBER})\s+({NUMBER})x", out, re.M)
    assert row, out
    rate, ratio = float(row[1]), float(row[2])
    assert rate > 0 and ratio == pytest.approx(rate / 169.0, abs=0.006)  # the released code's 169 UL model-steps/s


def test_the_paired_benchmark_times_a_revision_against_the_working_tree():
    out = run_benchmark("paired_models.py", "HEAD", "--layers", "UL", "--blocks", "2", "--steps", "1")
    rates = {name: float(rate) for name, rate in re.findall(rf"^UL\s+(HEAD|working tree):\s+({NUMBER}) model-steps", out, re.M)}
    assert set(rates) == {"HEAD", "working tree"} and min(rates.values()) > 0, out
    ratio = re.search(rf"^UL ratio, working tree / HEAD: ({NUMBER})$", out, re.M)
    assert ratio and float(ratio[1]) == pytest.approx(rates["working tree"] / rates["HEAD"], rel=0.01)


def test_the_paired_benchmark_times_the_pytorch_code_against_the_cpu_kernels():
    out = run_benchmark("paired_models.py", "--cpu-kernels", "--layers", "SL", "--blocks", "2", "--steps", "1")
    rates = {name: float(rate) for name, rate in re.findall(rf"^SL\s+(PyTorch code|CPU kernels):\s+({NUMBER}) model-steps", out, re.M)}
    assert set(rates) == {"PyTorch code", "CPU kernels"} and min(rates.values()) > 0, out
    assert re.search(rf"^SL ratio, CPU kernels / PyTorch code: {NUMBER}$", out, re.M), out


def test_the_paired_benchmark_builds_each_trainer_from_its_own_model_code(tmp_path, monkeypatch):
    """The revision's models.py is that revision's text, and a trainer made with a version of the model
    code builds its group with that version, leaving the training code's own models module in place."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import paired_models
    from icl import data, models, training

    at_head = paired_models.models_at("HEAD")
    assert at_head.build.__code__.co_filename == "HEAD:workflow/icl/models.py"  # compiled from the revision's text
    assert at_head.ReleasedTransformer is not models.ReleasedTransformer

    config = paired_models.load_config(paper=False)
    spec = paired_models.base_spec(config, shared=False, precision="fp32") | {"train_batches": 1}
    dataset = tmp_path / "train.pt"
    data.save(data.training_set(spec), dataset)
    members = paired_models.make_members(spec, 2, tmp_path, dataset)
    execution = config["execution"] | {"device": "cpu", "compile": "off"}
    trainer = paired_models.trainer_with(at_head, members, execution)
    assert type(trainer.model) is at_head.ReleasedTransformer
    assert training.models is models
