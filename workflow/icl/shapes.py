"""A run's shapes and sizes from its spec, without torch: the model's config, its training FLOPs and
memory, and the bytes of its dataset files.

Planning reads these (the budgets of icl.plan), and the Snakefile imports no torch, so that a dry
run, and every job on a cluster (which evaluates the Snakefile again), starts without loading it.
"""

from dataclasses import dataclass

from .names import OUTPUT_DIM
from .runs import has_ice_term


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of one trained model, which icl.models builds."""

    model: str = "softmax"  # softmax or lsa
    n_layers: int = 24
    width: int = 128
    heads: int = 2
    ffn_width: int = 512
    attention: str = "dot"  # dot or rbf
    shared: bool = True
    input_dim: int = 17  # label dims + x dims
    output_dim: int = 1
    n_positions: int = 60
    variant: str = "released"  # released or standard; the softmax model only

    @property
    def released(self) -> bool:
        """Whether this is the released code's model (and so trained with its loss, schedule and permutation)."""
        return self.model == "softmax" and self.variant == "released"

    @classmethod
    def from_spec(cls, spec: dict) -> "ModelConfig":
        """The model of a run's spec; its label width is its task's (names.OUTPUT_DIM)."""
        output_dim = OUTPUT_DIM[spec["task"]]
        return cls(
            model=spec["model"], n_layers=spec["n_layers"], width=spec["width"], heads=spec["heads"],
            ffn_width=spec["ffn_width"], attention=spec["attention"], shared=spec["shared"],
            input_dim=output_dim + spec["x_dim"], output_dim=output_dim,
            n_positions=spec["n_context"] + spec["n_queries"], variant=spec["variant"],
        )


def dataset_bytes(spec: dict, sequences: int) -> float:
    """Size of `sequences` prompts of a run's shape in a dataset file: x and y in float32."""
    width = spec["x_dim"] + OUTPUT_DIM[spec["task"]]
    return 4.0 * sequences * (spec["n_context"] + spec["n_queries"]) * width


def run_training_bytes(spec: dict) -> float:
    """Device memory of one run in training: its weights, optimiser state and activations, and its training set."""
    config = ModelConfig.from_spec(spec)
    return training_bytes(config, spec["batch_size"]) + dataset_bytes(spec, spec["train_batches"] * spec["batch_size"])


def run_training_flops(spec: dict) -> float:
    """Matmul FLOPs of one training step of a run, as its group trains it: without the ICE term, the last
    layer computes only the queries."""
    outputs = None if has_ice_term(spec) else spec["n_queries"]
    return training_flops(ModelConfig.from_spec(spec), spec["batch_size"], outputs)


def training_flops(config: ModelConfig, batch_size: int, outputs: int | None = None) -> float:
    """Matmul FLOPs of one training step of one model: forward and backward (about 3x forward).

    Per token and layer, the softmax block does 4 W A (attention projections, A = W features for
    q, k and v, or W/H in the released model) + 2 W F (MLP) multiply-adds and 2 T A for the scores
    and the weighted sum; the probes and the input and output maps are added once per layer or once.
    With `outputs` (the query positions, for a loss without the ICE term) the last softmax layer
    projects q, k and v at every position and does the rest only at those, and the probes read
    only those. Used to report the fraction of a device's peak, and to order training jobs.
    """
    t, w, f, layers = config.n_positions, config.width, config.ffn_width, config.n_layers
    if config.model == "softmax":
        a = _attention_features(config)
        read = (t if outputs is None else outputs) / t  # the fraction of positions whose outputs are computed
        block = w * a + 2 * w * f + 2 * t * a  # all but the q, k and v projections
        per_token = (layers - 1) * (3 * w * a + block) + 3 * w * a + block * read
        per_token += config.input_dim * w + (layers + 1) * w * config.output_dim * read
    else:
        d = config.input_dim
        per_token = layers * (4 * d * d + 2 * t * d)
    return 3 * 2 * per_token * t * batch_size


def training_bytes(config: ModelConfig, batch_size: int) -> float:
    """Rough device memory of one model in training: weights with their gradient and two Adam moments,
    plus the activations autograd keeps (per token and layer: the block's inputs and projections,
    the MLP's hidden layer, the attention weights and the probe), in float32."""
    t, w, f, layers = config.n_positions, config.width, config.ffn_width, config.n_layers
    blocks = 1 if config.shared else layers
    if config.model == "softmax":
        a = _attention_features(config)
        parameters = blocks * (4 * w * a + 2 * w * f) + t * w + layers * 2 * w + (config.input_dim + 2) * w
        per_token_layer = 6 * w + 4 * a + 2 * f + 2 * config.heads * t
    else:
        parameters = blocks * 4 * config.input_dim**2
        per_token_layer = 6 * config.input_dim + 2 * t
    activations = batch_size * t * layers * per_token_layer
    return 4.0 * (4 * parameters + 1.5 * activations)


def _attention_features(config: ModelConfig) -> int:
    """Features of each of q, k and v, over all heads."""
    return config.width // config.heads if config.released else config.width
