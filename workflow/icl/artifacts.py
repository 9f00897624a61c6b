"""The study's artifacts (figures and tables): which metrics tables each reads, and where it is written.

Metrics tables are results/metrics/{name}.parquet: `theory_depth` and `theory_stationary` from the
constructed LSA, one per sweep of trained runs, and `lm` for the language-model study (config section
lm, schema metrics.LM_SCHEMA). An artifact is built only if the config has every sweep it reads.
"""

from dataclasses import dataclass
from pathlib import Path

RESULTS = Path("results")
THEORY_TABLES = ("theory_depth", "theory_stationary")
EVERY_SWEEP = "*"  # an input that stands for every sweep in the config
LM_TABLE = "lm"  # the language-model study's metrics, present when the config has an lm section
LM_ARTIFACTS = ("ext_lm_icl", "ext_lm_table", "ext_lm_size")


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: str  # figure or table
    inputs: tuple  # metrics tables it reads
    title: str

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
        )),
        Artifact("theory_values", "table", ("theory_depth", "theory_stationary"), "Sec. 5.1: the paper's statements about the constructed LSA beside our values"),
        Artifact("fig4_causal2_stationary", "figure", ("theory_stationary",), "Fig. 4: causalLM2's stationary point against the number of ICEs"),
        Artifact("theory_eta_sweep", "figure", ("theory_depth",), "Constructed LSA: query MSE against depth for each step eta"),
        Artifact("table1", "table", ("table1",), "Table 1: test query error of prefixLM and causalLM, SL and UL"),
        Artifact("table3", "table", ("table1", "table3"), "Table 3: with and without the L2 regulariser"),
        Artifact("table4_6_fewer_ices", "table", ("table1",), "Tables 4-6: the Table 1 models tested with fewer ICEs"),
        Artifact("table7", "table", ("table7",), "Table 7: ICEs permuted at every training step"),
        Artifact("fig3_probe_layers", "figure", ("table1",), "Fig. 3: per-layer probe error of the SL models"),
        Artifact("fig6_train_size", "figure", ("fig6",), "Fig. 6: test error against the number of training batches"),
        Artifact("ext_distribution_shift", "figure", ("table1",), "Beyond the paper: Table 1 models tested on x shifted by mu_x"),
        Artifact("ext_ice_count", "figure", ("table1", "ice_count"), "Beyond the paper: tested with fewer or more ICEs than in training"),
        Artifact("ext_model_size", "figure", ("model_size",), "Beyond the paper: test error and causal/prefix ratio against model size"),
        Artifact("ext_trained_lsa", "figure", ("lsa",), "Beyond the paper: trained linear self-attention against depth"),
        Artifact("ext_real_data", "figure", ("real",), "Beyond the paper: in-context classification of real data against the number of ICEs"),
        Artifact("ext_real_data_table", "table", ("real",), "Beyond the paper: real-data accuracy per test set, with paired comparisons"),
        Artifact("paired_comparison", "table", (EVERY_SWEEP,), "causal / prefix error ratio per seed, with paired tests"),
        Artifact("ext_lm_icl", "figure", (LM_TABLE,), "Beyond the paper: few-shot accuracy of language models pretrained on a GINC corpus against the number of examples"),
        Artifact("ext_lm_table", "table", (LM_TABLE,), "Beyond the paper: GINC few-shot accuracy of prefix and causal pretraining, with paired differences"),
        Artifact("ext_lm_size", "figure", (LM_TABLE,), "Beyond the paper: the prefix - causal GINC accuracy gap against model size"),
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
