"""The project's packaging: the conda environments agree with pyproject.toml."""

import ast
import re
import string
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
