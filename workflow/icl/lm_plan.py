"""The language-model study's runs and files, from the config's `lm` section.

One GINC corpus (with its prompt sets) per config. A group is one model size and objective, with every
seed as one of its K stacked models; the runs of one size and seed share their initial weights and
their training windows whatever their objective, so prefix and causal are compared pairwise.
"""

from dataclasses import dataclass
from pathlib import Path

from .plan import stable_hash

RESULTS = Path("results")
CORPUS_KEYS = ("n_entities", "n_properties", "vocab_size", "n_concepts", "n_heldout_concepts", "documents", "document_length", "seed")


def ginc_spec(lm: dict) -> dict:
    """Everything the corpus and prompt files depend on."""
    return dict(lm["corpus"]) | dict(lm["prompts"])


def ginc_directory(lm: dict) -> Path:
    return RESULTS / "lm" / f"ginc-{stable_hash(ginc_spec(lm))}"


def size_name(size: dict) -> str:
    return f"l{size['n_layers']}w{size['width']}h{size['heads']}"


def model_spec(lm: dict, size: dict) -> dict:
    return dict(
        vocab_size=lm["corpus"]["vocab_size"], context=lm["context"], n_layers=size["n_layers"], width=size["width"],
        heads=size["heads"], ffn_width=size.get("ffn_width") or 4 * size["width"],
    )


@dataclass(frozen=True)
class Group:
    name: str
    spec: dict  # objective, model, train, context, ginc, seeds (one per model)

    @property
    def directory(self) -> Path:
        return RESULTS / "lm" / "runs" / self.name


def groups(lm: dict) -> list[Group]:
    found = []
    for size in lm["sizes"]:
        shared = dict(model=model_spec(lm, size), train=lm["train"], ginc=ginc_spec(lm))
        seeds = [int(stable_hash(shared | {"seed": seed}, length=15), 16) for seed in range(lm["seeds"])]
        for objective in lm["objectives"]:
            spec = shared | dict(objective=objective, seeds=seeds)
            found.append(Group(f"{objective}-{size_name(size)}-{stable_hash(spec)}", spec))
    return found


def group(lm: dict, name: str) -> Group:
    return next(g for g in groups(lm) if g.name == name)
