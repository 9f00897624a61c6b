"""The project's packaging: the conda environments agree with pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml

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
        listed = [d for d in yaml.safe_load((REPO / "envs" / env_file).read_text())["dependencies"] if isinstance(d, str)]
        env = dict(requirement(d) for d in listed if d != "pip")
        assert env.pop("python") == python, env_file
        assert env.pop(torch_name) == wanted["torch"], env_file
        assert env == {k: v for k, v in wanted.items() if k != "torch"}, env_file


def test_every_rule_names_an_environment():
    for rules in (REPO / "rules").glob("*.smk"):
        text = rules.read_text()
        assert text.count("conda:") == len(re.findall(r"^\s*rule\b", text, re.M)), rules
