"""Report captions (reStructuredText): what an artifact shows, the scale it ran at, and what the paper says."""

from . import lm_plan, plan, scale
from .artifacts import LM_ARTIFACTS, get, inputs

LM_INTERVALS = "Accuracy %: mean with a 95% t-interval over seeds; differences: mean of the per-seed paired differences with a 95% t-interval"
INTERVALS = (
    "MSEs are the geometric mean with a 95% t-interval on log errors over seeds, error % the mean with a 95% t-interval"
)


def theory_scale(theory: dict) -> str:
    return (
        f"d = {theory['d']}, {theory['n_context']} ICEs for the depth curves, {theory['sequences']} prompts x "
        f"{theory['queries']} queries per seed, {theory['seeds']} seeds, eta = {theory['eta']}"
    )


def trained_scale(artifact, config: dict) -> str:
    """The scale of the runs the artifact reads, from the specs the plan trains (sweep overrides included)."""
    specs = [run.spec for sweep in inputs(artifact, config) for run in plan.sweep_runs(config, sweep)]
    return scale.describe(specs)


def caption(name: str, config: dict) -> str:
    artifact = get(name)
    theory = artifact.inputs[0].startswith("theory")
    if name in LM_ARTIFACTS:
        scale_text = lm_plan.describe(config["lm"])
    else:
        scale_text = theory_scale(config["theory"]) if theory else trained_scale(artifact, config)
    intervals = LM_INTERVALS if name in LM_ARTIFACTS else INTERVALS
    return f"**{artifact.title}.**\n\nScale: {scale_text}. {intervals}.\n\n{artifact.paper}\n"
