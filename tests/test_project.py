"""The project's packaging: the conda environments agree with pyproject.toml and hold only third-party
packages, and the workflow runs in an environment that has those but not the pipeline's package."""

import ast
import os
import re
import string
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

from icl import benchmarks

REPO = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": ("pytorch-cpu", "pytorch-gpu")}


def requirement(text):
    name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", text).groups()
    return name.lower(), spec.replace(" ", "")


def test_conda_environments_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = dict(requirement(r) for r in project["dependencies"])
    python = project["requires-python"]
    for env_file, torch_name in (("icl.yaml", "pytorch-cpu"), ("icl-cuda.yaml", "pytorch-gpu")):
        listed = yaml.safe_load((REPO / "envs" / env_file).read_text())["dependencies"]
        # No pip section: an environment file is copied before it is built, so a path in it would point elsewhere.
        assert all(isinstance(d, str) for d in listed), env_file
        env = dict(requirement(d) for d in listed)
        assert env.pop("python") == python, env_file
        assert env.pop(torch_name) == wanted["torch"], env_file
        if env_file == "icl.yaml":
            assert env.pop("c-compiler") == "", "the CPU environment has a C compiler for the CPU kernels"
        assert env == {k: v for k, v in wanted.items() if k != "torch"}, env_file


def test_jobs_run_in_an_environment_with_the_dependencies_but_not_the_package(tmp_path):
    """What a conda environment of envs/ gives a job, as a plain venv: every dependency, but no `icl`."""
    dependencies = Path(sysconfig.get_paths()["purelib"])
    if (dependencies / "icl").is_dir():
        pytest.skip(f"the package is installed into {dependencies} itself, so no environment here lacks it")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    # A .pth line adds the directory, but the .pth files in it (the editable install of `icl`) are not run.
    (site / "dependencies.pth").write_text(f"{dependencies}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env["PATH"]])  # every job's `python` is this environment's
    python = str(venv / "bin" / "python")
    unfound = subprocess.run([python, "-c", "import torch, snakemake; import icl"], env=env, capture_output=True, text=True)
    assert "No module named 'icl'" in unfound.stderr, unfound.stderr

    target = "results/tables/theory_values.csv"  # a job of each kind: two tensor steps, then a light one
    result = subprocess.run(
        [python, "-m", "snakemake", target, "--cores", "2", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path / "work"),
         "--configfile", str(REPO / "tests" / "data" / "tiny.yaml")],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "work" / target).stat().st_size > 0


def test_every_rule_names_an_environment_and_records_a_benchmark():
    for rules in (REPO / "rules").glob("*.smk"):
        text = rules.read_text()
        count = len(re.findall(r"^\s*rule\b", text, re.M))
        assert len(re.findall(r"^\s+conda:$", text, re.M)) == count, rules
        assert len(re.findall(r"^\s+benchmark:$", text, re.M)) == count, rules
        for log, record in re.findall(r'log:\n\s+f?"(results/logs/[^"]+)",\n\s+benchmark:\n\s+"([^"]+)"', text):
            assert record == str(benchmarks.record_path(log)), (rules, log)  # the list of every job's record assumes it


def shell_commands():
    """(file, command) for every `shell:` directive of the workflow, read as the string literals that follow it."""
    for path in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.strip() != "shell:":
                continue
            indent = len(line) - len(line.lstrip())
            block = []
            for following in lines[number + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following)
            try:
                command = ast.literal_eval("(" + "\n".join(block) + ")")
            except ValueError as error:  # an f-string or an expression: its text could not be checked
                raise AssertionError(f"{path.name}:{number + 1}: a shell command must be a plain string literal") from error
            yield f"{path.name}:{number + 1}", command


def test_every_shell_placeholder_is_quoted():
    commands = list(shell_commands())
    assert len(commands) >= 10
    for where, command in commands:
        for _, field, spec, _ in string.Formatter().parse(command):
            if field is not None:
                assert spec == "q", f"{where}: placeholder {{{field}}} is not quoted ({{{field}:q}})"
