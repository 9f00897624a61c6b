"""The study's artifacts (figures and tables): which metrics tables each reads, and where it is written.

Metrics tables are results/metrics/{name}.parquet: `theory_depth` and `theory_stationary` from the
constructed LSA, one per sweep of trained runs, and `lm` for the language-model study (config section
lm, schema metrics.LM_SCHEMA). An artifact is built only if the config has every sweep it reads.
"""

from dataclasses import dataclass
from pathlib import Path

from . import paper

RESULTS = Path("results")
THEORY_TABLES = ("theory_depth", "theory_stationary")
EVERY_SWEEP = "*"  # an input that stands for every sweep in the config
LM_TABLE = "lm"  # the language-model study's metrics, present when the config has an lm section
LM_ARTIFACTS = ("ext_lm_icl", "ext_lm_table", "ext_lm_size")
NOT_IN_PAPER_REAL = "Not in the paper, which tests real data only with large pretrained models (T5, PaLM)."


def _mmlu_gaps(family: str) -> str:
    """The paper's prefix - causal MMLU gap per model size, e.g. 'Base 0.8, Large 5.1, XL 9.0'."""
    return ", ".join(f"{size} {prefix - causal:.1f}" for size, (prefix, causal) in paper.LARGE_MODEL_MMLU[family].items())



LM_PAPER = (
    "Not in the paper, which compares prefix and causal pretraining of large models by re-pretraining T5 decoders on C4 and "
    "FLAN-finetuning them (5-shot MMLU, 3-shot BBH); this is a toy stand-in on the GINC corpus of Xie et al. (ICLR 2022). "
    f"The paper's T5 MMLU gap (prefix - causal, points) per size: {_mmlu_gaps('T5')}."
)

@dataclass(frozen=True)
class Artifact:
    name: str
    kind: str  # figure or table
    inputs: tuple  # metrics tables it reads
    title: str
    paper: str = "The paper's values are in the table's paper column, beside ours."  # what the paper says, for the caption

    @property
    def outputs(self) -> list[Path]:
        if self.kind == "figure":
            return [RESULTS / "figures" / f"{self.name}.{ext}" for ext in ("pdf", "png")]
        return [RESULTS / "tables" / f"{self.name}.{ext}" for ext in ("csv", "md")]


ARTIFACTS = {
    a.name: a
    for a in (
        Artifact("fig2", "figure", ("theory_depth", "theory_stationary"), (
            "Fig. 2: constructed LSA, ICE and query MSE against depth for prefixLM (left) and causalLM (middle), "
            "and causalLM's stationary point against the number of ICEs (right)"
        ), (
            f"The paper: causalLM's query MSE stays above {paper.CAUSAL_QUERY_FLOOR:g} over depth (grey line, middle), while "
            "prefixLM's query MSE falls at the same linear rate as its ICE MSE. At mu_x = 0 causalLM's stationary point needs over "
            f"{paper.STATIONARY_ICES} ICEs to fall below {paper.STATIONARY_THRESHOLD:g}, and it is worse for each larger mu_x "
            f"(grey lines, right); the paper draws n every {paper.STATIONARY_N_STEP} ICEs, so where its curve crosses "
            f"{paper.STATIONARY_THRESHOLD:g} is known to no better than {paper.STATIONARY_N_STEP} ICEs."
        )),
        Artifact("theory_values", "table", ("theory_depth", "theory_stationary"), "Sec. 5.1: the paper's statements about the constructed LSA beside our values"),
        Artifact("fig4_causal2_stationary", "figure", ("theory_stationary",), "Fig. 4: causalLM2's stationary point against the number of ICEs",
                 "The paper: causalLM2 converges even more slowly than causalLM."),
        Artifact("theory_eta_sweep", "figure", ("theory_depth",), "Constructed LSA: query MSE against depth for each step eta",
                 f"The paper picked eta = {paper.ETA:g} as the fastest step without divergence from this set."),
        Artifact("table1", "table", ("table1",), "Table 1: test query error of prefixLM and causalLM, SL and UL"),
        Artifact("table3", "table", ("table1", "table3"), "Table 3: with and without the L2 regulariser"),
        Artifact("table4_6_fewer_ices", "table", ("table1",), "Tables 4-6: the Table 1 models tested with fewer ICEs"),
        Artifact("table7", "table", ("table7",), "Table 7: ICEs permuted at every training step"),
        Artifact("fig3_probe_layers", "figure", ("table1",), "Fig. 3: per-layer probe error of the SL models",
                 "The paper draws the probe error of each layer for prefixLM and causalLM on each task."),
        Artifact("fig6_train_size", "figure", ("fig6",), "Fig. 6: test error against the number of training batches",
                 "The paper: the gap is largest at " + ", ".join(f"{n} ({task.upper()})" for task, n in paper.FIG6_LARGEST_GAP.items()) + " batches."),
        Artifact("ext_distribution_shift", "figure", ("table1",), "Beyond the paper: Table 1 models tested on x shifted by mu_x", (
            "Not in the paper, which shifts x only for the constructed LSA's stationary points (Fig. 2 right); these are trained models."
        )),
        Artifact("ext_ice_count", "figure", ("table1", "ice_count"), "Beyond the paper: tested with fewer or more ICEs than in training",
                 "Not in the paper, whose Tables 4-6 test fewer ICEs only."),
        Artifact("ext_model_size", "figure", ("model_size",), "Beyond the paper: test error and causal/prefix ratio against model size", (
            "Not in the paper at this scale. Of its large models, only T5's MMLU gap (prefix - causal, points) grows with size: "
            f"{_mmlu_gaps('T5')}; PaLM2's does not: {_mmlu_gaps('PaLM2')}."
        )),
        Artifact("ext_trained_lsa", "figure", ("lsa",), "Beyond the paper: trained linear self-attention against depth", (
            "Not in the paper: the theory says an L-layer LSA can compute L steps of gradient descent, whose limits are least "
            "squares (prefix) and online GD (causal)."
        )),
        Artifact("ext_real_data", "figure", ("real",), "Beyond the paper: in-context classification of real data against the number of ICEs", NOT_IN_PAPER_REAL),
        Artifact("ext_real_data_table", "table", ("real",), "Beyond the paper: real-data accuracy per test set, with paired comparisons", NOT_IN_PAPER_REAL),
        Artifact("paired_comparison", "table", (EVERY_SWEEP,), "causal / prefix error ratio per seed, with paired tests",
                 "The paper reports no seeds or intervals; this table is ours alone."),
        Artifact("ext_lm_icl", "figure", (LM_TABLE,), "Beyond the paper: few-shot accuracy of language models pretrained on a GINC corpus against the number of examples", LM_PAPER),
        Artifact("ext_lm_table", "table", (LM_TABLE,), "Beyond the paper: GINC few-shot accuracy of prefix and causal pretraining, with paired differences", LM_PAPER),
        Artifact("ext_lm_size", "figure", (LM_TABLE,), "Beyond the paper: the prefix - causal GINC accuracy gap against model size", LM_PAPER),
    )
}


def metrics_path(table: str) -> Path:
    return RESULTS / "metrics" / f"{table}.parquet"


def inputs(artifact: Artifact, config: dict) -> list[str]:
    """The metrics tables an artifact reads under this config."""
    return list(config["sweeps"]) if artifact.inputs == (EVERY_SWEEP,) else list(artifact.inputs)


def available(config: dict) -> list[Artifact]:
    """The artifacts whose every input exists for this config (theory tables always do; lm with an lm section)."""
    have = set(THEORY_TABLES) | set(config["sweeps"]) | ({LM_TABLE} if "lm" in config else set())
    return [a for a in ARTIFACTS.values() if inputs(a, config) and set(inputs(a, config)) <= have]


def get(name: str) -> Artifact:
    if name not in ARTIFACTS:
        raise ValueError(f"unknown artifact {name!r}; choose one of {', '.join(ARTIFACTS)}")
    return ARTIFACTS[name]
