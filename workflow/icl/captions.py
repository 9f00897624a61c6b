"""Report captions (reStructuredText): what an artifact shows, the scale it ran at, and what the paper says."""

from . import lm_plan, paper, plan, scale
from .artifacts import LM_ARTIFACTS, get, inputs


def _mmlu_gaps(family: str) -> str:
    """The paper's prefix - causal MMLU gap per model size, e.g. 'Base 0.8, Large 5.1, XL 9.0'."""
    return ", ".join(f"{size} {prefix - causal:.1f}" for size, (prefix, causal) in paper.LARGE_MODEL_MMLU[family].items())


PAPER_SAYS = {
    "fig2": (
        f"The paper: causalLM's query MSE stays above {paper.CAUSAL_QUERY_FLOOR:g} over depth (grey line, middle), while "
        "prefixLM's query MSE falls at the same linear rate as its ICE MSE. At mu_x = 0 causalLM's stationary point needs over "
        f"{paper.STATIONARY_ICES} ICEs to fall below {paper.STATIONARY_THRESHOLD:g}, and it is worse for each larger mu_x "
        f"(grey lines, right); the paper draws n every {paper.STATIONARY_N_STEP} ICEs, so where its curve crosses "
        f"{paper.STATIONARY_THRESHOLD:g} is known to no better than {paper.STATIONARY_N_STEP} ICEs."
    ),
    "fig4_causal2_stationary": "The paper: causalLM2 converges even more slowly than causalLM.",
    "theory_eta_sweep": "The paper picked eta = 1.6 as the fastest step without divergence from this set.",
    "fig3_probe_layers": "The paper draws the probe error of each layer for prefixLM and causalLM on each task.",
    "fig6_train_size": "The paper: the gap is largest at 30 (LR), 100 (NLR) and 10 (MC) batches.",
    "ext_distribution_shift": (
        "Not in the paper, which shifts x only for the constructed LSA's stationary points (Fig. 2 right); "
        "these are trained models."
    ),
    "ext_ice_count": "Not in the paper, whose Tables 4-6 test fewer ICEs only.",
    "ext_model_size": (
        "Not in the paper at this scale. Of its large models, only T5's MMLU gap (prefix - causal, points) grows with size: "
        f"{_mmlu_gaps('T5')}; PaLM2's does not: {_mmlu_gaps('PaLM2')}."
    ),
    "ext_trained_lsa": (
        "Not in the paper: the theory says an L-layer LSA can compute L steps of gradient descent, whose limits are least "
        "squares (prefix) and online GD (causal)."
    ),
    "ext_real_data": "Not in the paper, which tests real data only with large pretrained models (T5, PaLM).",
    "ext_real_data_table": "Not in the paper, which tests real data only with large pretrained models (T5, PaLM).",
    "paired_comparison": "The paper reports no seeds or intervals; this table is ours alone.",
    **dict.fromkeys(LM_ARTIFACTS, (
        "Not in the paper, which compares prefix and causal pretraining of large models by re-pretraining T5 decoders on C4 and "
        "FLAN-finetuning them (5-shot MMLU, 3-shot BBH); this is a toy stand-in on the GINC corpus of Xie et al. (ICLR 2022). "
        f"The paper's T5 MMLU gap (prefix - causal, points) per size: {_mmlu_gaps('T5')}."
    )),
}
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
    paper_text = PAPER_SAYS.get(name, "The paper's values are in the table's paper column, beside ours.")
    intervals = LM_INTERVALS if name in LM_ARTIFACTS else INTERVALS
    return f"**{artifact.title}.**\n\nScale: {scale_text}. {intervals}.\n\n{paper_text}\n"
