"""Report captions (reStructuredText): what an artifact shows, the scale it ran at, and the paper's value."""

from . import paper
from .artifacts import get

PAPER_SAYS = {
    "fig2_ice_depth": "The paper: ICE MSE of prefixLM and causalLM both fall with depth.",
    "fig2_query_depth": (
        f"The paper: causalLM's query MSE stays above {paper.CAUSAL_QUERY_FLOOR:g} while prefixLM's falls below "
        f"{paper.PREFIX_QUERY_AT_50:g} by depth 50 (grey lines)."
    ),
    "fig2_stationary": (
        f"The paper: at mu_x = 0 causalLM's stationary point needs over {paper.STATIONARY_ICES} ICEs to fall below "
        f"{paper.STATIONARY_THRESHOLD:g}, and it is worse for each larger mu_x (grey lines)."
    ),
    "fig4_causal2_stationary": "The paper: causalLM2 converges even more slowly than causalLM.",
    "theory_eta_sweep": "The paper picked eta = 1.6 as the fastest step without divergence from this set.",
    "fig3_probe_layers": "The paper: prefixLM's probe error falls below causalLM's in the later layers, on every task.",
    "fig6_train_size": "The paper: prefixLM is better at every size; the gap is largest at 30 (LR), 100 (NLR) and 10 (MC) batches.",
    "ext_distribution_shift": "Not in the paper: its theory (Fig. 2 right) predicts the causal model degrades most under a shift of x.",
    "ext_ice_count": "Not in the paper, whose Tables 4-6 test fewer ICEs only; its theory ties causalLM's error to the ICE count.",
    "ext_model_size": "Not in the paper at this scale: its T5 and PaLM results show the gap growing with model size.",
    "ext_trained_lsa": (
        "Not in the paper: the theory says an L-layer LSA can compute L steps of gradient descent, whose limits are least "
        "squares (prefix) and online GD (causal)."
    ),
    "ext_real_data": "Not in the paper, which tests real data only with large pretrained models (T5, PaLM).",
    "ext_real_data_table": "Not in the paper, which tests real data only with large pretrained models (T5, PaLM).",
    "paired_comparison": "The paper reports no seeds or intervals; this table is ours alone.",
}


def theory_scale(theory: dict) -> str:
    return (
        f"d = {theory['d']}, {theory['n_context']} ICEs for the depth curves, {theory['sequences']} prompts x "
        f"{theory['queries']} queries per seed, {theory['seeds']} seeds, eta = {theory['eta']}"
    )


def trained_scale(config: dict) -> str:
    d, m, t = config["data"], config["model"], config["train"]
    return (
        f"{m['n_layers']} layers, width {m['width']}, {m['heads']} heads, FFN {m['ffn_width']}; x in R^{d['x_dim']}, "
        f"{d['n_context']} ICEs + {d['n_queries']} queries, {d['train_batches']} training batches of {t['batch_size']}; "
        f"{t['steps']} steps at learning rate {t['learning_rate']:g}; {config['seeds']} seeds "
        "(sweeps may override these; the table's own note gives each run's scale)"
    )


def caption(name: str, config: dict) -> str:
    artifact = get(name)
    theory = artifact.inputs[0].startswith("theory")
    scale = theory_scale(config["theory"]) if theory else trained_scale(config)
    paper_text = PAPER_SAYS.get(name, "The paper's values are in the table's paper column, beside ours.")
    return (
        f"**{artifact.title}.**\n\n"
        f"Scale: {scale}. Errors are mean and 95% interval over seeds (log axes: geometric mean).\n\n"
        f"{paper_text}\n"
    )
