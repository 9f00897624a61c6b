"""The language-model study's runs and files, from the config's `lm` section.

One GINC corpus (with its prompt sets) per config. A group is one model size and objective, with every
seed as one of its K stacked models; the runs of one size and seed share their initial weights and
their training windows whatever their objective, so prefix and causal are compared pairwise.
"""

from dataclasses import dataclass
from pathlib import Path

from .runs import stable_hash

RESULTS = Path("results")


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


def describe(lm: dict) -> str:
    """The study's scale in words, for captions and table notes."""
    c, p, t = lm["corpus"], lm["prompts"], lm["train"]
    sizes = ", ".join(f"{s['n_layers']}x{s['width']}" for s in lm["sizes"])
    return (
        f"GINC corpus of {c['n_entities']} entities x {c['n_properties']} properties, vocabulary {c['vocab_size']}, "
        f"{c['n_concepts']} pretraining and {c['n_heldout_concepts']} held-out concepts, {c['documents']} documents of "
        f"{c['document_length']} tokens; decoder-only models (layers x width) {sizes}, context {lm['context']}; "
        f"{t['steps']} steps of {t['batch_size']} windows ({t['steps'] * t['batch_size'] * lm['context'] / 1e6:.2g}M tokens "
        f"per model), learning rate {t['learning_rate']:g}; {lm['seeds']} seeds; {p['prompts']} prompts per split, k and L"
    )
