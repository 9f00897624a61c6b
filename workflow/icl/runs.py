"""What a run is: one trained model, its identity, its files, and how its rows are labelled.

A run is a flat, fully resolved config (the data, model and train sections with a sweep's
overrides) plus a seed. Its key is a hash of that config, so the same model is the same run
whatever sweep, group or target asks for it, and its files live in a directory named by the key.
A run's setting is the same hash without the mask and the seed: the prefix and causal runs of
one setting, seed by seed, differ only in the mask and are compared pairwise.

Every other module can import this one: it imports no other module of the package at its top
(icl.gpus only when a job claims a device), and torch only where a tensor is made, so the light
steps (aggregate, figure, table) stay light.
"""

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path("results")

# Keys that a group's models must share: everything that fixes the shape of the batched
# computation or its optimiser schedule.
GROUP_KEYS = (
    "model", "variant", "n_layers", "width", "heads", "ffn_width", "attention", "shared", "x_dim", "n_context",
    "n_queries", "steps", "batch_size", "learning_rate", "warmup_fraction", "beta1", "beta2", "adam_eps",
    "weight_decay", "precision",
)
# Keys that fix the distribution of prompts; with the seed, the random stream they are drawn from.
PROMPT_KEYS = ("task", "x_dim", "x_distribution", "x_scale", "x_shift", "n_context", "n_queries", "noise")
# Keys that fix a training set; train_batches only says how much of it is used (sets are nested).
DATA_KEYS = PROMPT_KEYS + ("batch_size",)
TEST_KEYS = PROMPT_KEYS + ("test_sequences",)
# What pairs two runs: everything but these.
PAIRED_OVER = ("mask", "seed")


def has_ice_term(spec: dict) -> bool:
    """Whether a run's loss reads the outputs at its ICE positions (the L2 regulariser). Without it the
    last layer computes only the queries, a different computation, so it is part of a group's shape."""
    return bool(spec["l2"]) and spec["l2_weight"] != 0


def stable_hash(value, length: int = 8) -> str:
    """A short hex digest of a JSON-serialisable value, the same on every machine and run."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:length]


def setting(spec: dict) -> str:
    """The hash of a spec without its mask and seed: what a prefix run and a causal run share."""
    return stable_hash({k: v for k, v in spec.items() if k not in PAIRED_OVER})


def draw_seed(spec: dict) -> int:
    """The seed of a run's random draws (initial weights, batch order, ICE order): a hash of its
    config without the mask, so the prefix and causal runs of one setting and seed start from the
    same weights and see the same batches, paired in everything but the mask."""
    return int(stable_hash({k: v for k, v in spec.items() if k != "mask"}, length=15), 16)


def architecture(spec: dict) -> str:
    """Readable name of a run's model, e.g. softmax-rel-rbf-SL-24x128h2 for the released softmax
    model with rbf logits, softmax-UL-24x128h2 for the standard one with dot logits, lsa-SL-24x128h2."""
    softmax = spec["model"] == "softmax"
    released = "-rel" if softmax and spec["variant"] == "released" else ""
    logit = f"-{spec['attention']}" if softmax and spec["attention"] != "dot" else ""
    layers = "SL" if spec["shared"] else "UL"
    return f"{spec['model']}{released}{logit}-{layers}-{spec['n_layers']}x{spec['width']}h{spec['heads']}"


@dataclass(frozen=True)
class Run:
    """One run and where its files are: under `root`/runs (the store of trained runs, see
    icl.store) and its datasets under `root`/data."""

    spec: dict
    key: str
    root: Path = RESULTS

    @classmethod
    def of(cls, spec: dict, root: Path = RESULTS) -> "Run":
        return cls(spec=spec, key=stable_hash(spec), root=Path(root))

    def __hash__(self):
        return hash((self.key, self.root))

    @property
    def seed(self) -> int:
        """The seed of the run's random draws (see draw_seed)."""
        return draw_seed(self.spec)

    @property
    def directory(self) -> Path:
        s = self.spec
        return self.root / "runs" / s["task"] / architecture(s) / s["mask"] / f"seed{s['seed']}-{self.key}"

    def file(self, name: str) -> Path:
        """One of the run's files: model.pt, curve.parquet, train.log, resume.pt."""
        return self.directory / name

    @property
    def train_data(self) -> Path:
        identity = {k: self.spec[k] for k in DATA_KEYS} | {"seed": self.spec["seed"]}
        return self.root / "data" / self.spec["task"] / f"seed{self.spec['seed']}-{stable_hash(identity)}" / f"train-b{self.spec['train_batches']}.pt"

    def _test_identity(self, x_shifts) -> str:
        identity = {k: self.spec[k] for k in TEST_KEYS} | {"seed": self.spec["seed"], "x_shifts": sorted(x_shifts)}
        return stable_hash(identity)

    def test_data(self, x_shifts) -> Path:
        return self.train_data.parent / f"test-{self._test_identity(x_shifts)}.pt"

    def metrics(self, x_shifts) -> Path:
        """The run's test metrics on the test file of these shifts, in its directory."""
        return self.directory / f"metrics-{self._test_identity(x_shifts)}.parquet"

    def baselines(self, x_shifts) -> Path:
        """The baselines scored on the run's test file, beside it."""
        return self.train_data.parent / f"baselines-{self._test_identity(x_shifts)}.parquet"

    def constructed_lsa(self, x_shifts) -> Path:
        """The constructed LSA scored on the run's test file (lr), beside it."""
        return self.train_data.parent / f"lsa-constructed-{self._test_identity(x_shifts)}.parquet"

    def train_data_spec(self) -> dict:
        """What the training-set file is drawn from."""
        return {k: self.spec[k] for k in DATA_KEYS + ("seed", "train_batches")}

    def test_data_spec(self) -> dict:
        return {k: self.spec[k] for k in TEST_KEYS + ("seed",)}


# The run columns of what is not a trained model (a baseline, the constructed LSA, a stationary point).
NOT_TRAINED = dict(
    attention="none", variant="none", mask="none", n_layers=0, width=0, heads=0, shared=False, l2=False,
    permute=False, train_batches=0, train_n_context=0, eta=math.nan,
)


def identity(spec: dict, model: str | None = None, **columns) -> dict:
    """The run columns of a metrics row (icl.metrics.RUN_COLUMNS).

    A trained run's (model None) come from its resolved config. Anything else names its `model`,
    passes the spec it was computed from (a test file's, or the theory section's with a seed) and
    gives the columns that apply to it, e.g. mask and eta for the constructed LSA; the rest read
    as not trained. Its setting is then the hash of all of that but the mask and seed.
    """
    if model is None:
        s = spec
        return dict(
            run_key=stable_hash(s), setting=setting(s), task=s["task"], model=s["model"],
            attention="linear" if s["model"] == "lsa" else s["attention"],
            variant="none" if s["model"] == "lsa" else s["variant"], mask=s["mask"],
            n_layers=s["n_layers"], width=s["width"], heads=s["heads"], shared=s["shared"], l2=s["l2"],
            permute=s["permute"], train_batches=s["train_batches"],
            train_n_context=s.get("train_n_context", s["n_context"]), seed=s["seed"], eta=math.nan,
        )
    row = NOT_TRAINED | dict(task=spec.get("task", "lr"), model=model, seed=spec["seed"]) | columns
    row.setdefault("run_key", f"{model}-{stable_hash(spec | columns)}")
    described = spec | {k: v for k, v in row.items() if k not in ("run_key", "eta")} | {"eta": str(row["eta"])}
    return row | {"setting": setting(described)}


def tokens(x, y, n_context):
    """The prompt as tokens: ICE tokens [y; x] and query tokens [0; x], [..., T, k + d]."""
    import torch

    labels = y.clone()
    labels[..., n_context:, :] = 0
    return torch.cat([labels, x], dim=-1)


def set_cpu_execution(execution: dict) -> None:
    """This process's share of the execution settings: torch's CPU threads (0 keeps torch's choice)
    and whether the fused CPU kernels serve the models (icl.cpu_kernels); and it keeps freed memory."""
    import torch

    from . import cpu_kernels

    if execution["threads"]:
        torch.set_num_threads(execution["threads"])
    cpu_kernels.set_mode(execution["cpu_kernels"])
    keep_freed_memory()


def on_glibc() -> bool:
    """Whether this process's C library is glibc."""
    import os

    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # no such name (not glibc), or no value
        return False


# glibc's mallopt parameters
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> None:
    """Where the C library is glibc, keep the memory of freed tensors in the process rather than hand
    it back to the system. A training step allocates and frees tensors of a few MB, which glibc would
    otherwise map and unmap afresh, and every page mapped afresh costs a page fault on first touch
    (about 3 us on a VM): a few hundred per step at the default size. The numbers are the same."""
    import ctypes

    if not on_glibc():
        return
    mallopt = ctypes.CDLL(None).mallopt
    mallopt(M_MMAP_THRESHOLD, 32 << 20)  # blocks below 32 MB (glibc's largest) come from the heap...
    mallopt(M_TRIM_THRESHOLD, 256 << 20)  # ...which keeps up to 256 MB free at its top


def resolve_device(execution: dict):
    """The job's device: the CPU, or a GPU that the job claims for itself (icl.gpus).

    execution.device auto is CUDA where torch sees a GPU, else the CPU.
    """
    import torch

    from . import gpus

    name = execution["device"]
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("execution.device is cuda, but torch sees no CUDA device")
    return gpus.claim(execution) if name == "cuda" else torch.device(name)
