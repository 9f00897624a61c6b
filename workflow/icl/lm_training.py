"""Pretrain a group of language models on the GINC corpus, and measure their few-shot accuracy.

Training: at each step each model reads batch_size windows of `context` tokens at random offsets of
random documents, with a prefix split per window drawn uniformly from 1..context-1 (used by the prefix
objectives only). The draws are a function of the model's seed and the step, so the runs of one seed
read the same windows whatever their objective. AdamW with linear warm-up and cosine decay.

Evaluation: on every prompt set, the greedy next token after the test x over the whole vocabulary,
against the test label. A causal model reads the prompt with the causal mask; a prefix model reads the
whole prompt as its prefix (every prompt token sees every other), and is also reported under the causal mask.
"""

import json
import time

import pandas as pd
import torch
from tqdm import tqdm

from . import checked, ginc, lm, masks, metrics
from .files import write_text
from .lm_plan import Group
from .runs import resolve_device, set_cpu_execution
from .training import learning_rate

REBUILD = "To rebuild it, delete it and rerun the same snakemake command."
EVALUATION_MASKS = {"causal": ("causal",), "prefix": ("prefix", "causal"), "prefix_full": ("prefix", "causal")}
EVALUATION_BATCH = 64  # prompts per forward pass


def windows(seed: int, step: int, documents: int, document_length: int, batch_size: int, context: int):
    """(document [B], offset [B], split [B]) of one model's batch at one step."""
    generator = torch.Generator().manual_seed((seed + 1_000_003 * (step + 1)) % 2**63)
    document = torch.randint(documents, (batch_size,), generator=generator)
    offset = torch.randint(document_length - context + 1, (batch_size,), generator=generator)
    split = torch.randint(1, context, (batch_size,), generator=generator)
    return document, offset, split


def build(group: Group, models: int) -> lm.LanguageModel:
    return lm.LanguageModel(models, lm.LMConfig(**group.spec["model"]))


def train(group: Group, corpus_path, execution: dict, progress: bool = True) -> None:
    """Train the group's models (one per seed) and write its model.pt and train.log."""
    set_cpu_execution(execution)
    device = resolve_device(execution)
    spec, seeds = group.spec, group.spec["seeds"]
    train_spec, context = spec["train"], spec["model"]["context"]
    corpus = ginc.load(corpus_path)["tokens"].long().to(device)
    documents, document_length = corpus.shape
    if document_length < context:
        raise ValueError(f"lm.context = {context} exceeds lm.corpus.document_length = {document_length}")
    model = build(group, len(seeds))
    lm.initialise(model, seeds)
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_spec["learning_rate"], betas=(train_spec["beta1"], train_spec["beta2"]),
        weight_decay=train_spec["weight_decay"],
    )
    offsets = torch.arange(context, device=device)
    curve, started = [], time.perf_counter()
    every = max(1, train_spec["steps"] // 50)
    for step in tqdm(range(train_spec["steps"]), disable=not progress, mininterval=5, desc=group.name):
        draws = [windows(seed, step, documents, document_length, train_spec["batch_size"], context) for seed in seeds]
        tokens = torch.stack([corpus[d.to(device)[:, None], o.to(device)[:, None] + offsets] for d, o, _ in draws])
        per_model = [lm.passes(spec["objective"], split, context) for _, _, split in draws]
        model_passes = [
            tuple(torch.stack([p[i][part] for p in per_model]).to(device) for part in (0, 1)) for i in range(len(per_model[0]))
        ]
        for param_group in optimizer.param_groups:
            param_group["lr"] = learning_rate(step, train_spec["steps"], train_spec["learning_rate"], train_spec["warmup_fraction"])
        losses = lm.loss(model, tokens, model_passes)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        if (step + 1) % every == 0 or step + 1 == train_spec["steps"]:
            losses = losses.detach().cpu()
            if not torch.isfinite(losses).all():
                raise FloatingPointError(f"{group.name}: loss is not finite at step {step + 1}: {losses.tolist()}")
            curve.append({"step": step + 1, "loss": losses.tolist()})
    seconds = time.perf_counter() - started
    state = {name: p.detach().cpu() for name, p in model.state_dict().items()}
    checked.save({"model": state, "spec": spec, "name": group.name, "curve": curve}, group.directory / "model.pt")
    write_text(
        group.directory / "train.log",
        f"group {group.name}\nspec {json.dumps(spec, sort_keys=True)}\n"
        f"trained {train_spec['steps']} steps, {len(seeds)} models, on {device} ({seconds:.1f} s)\n"
        f"final loss per seed {curve[-1]['loss']}\n",
    )


def load(group: Group, device) -> tuple[lm.LanguageModel, dict]:
    saved = checked.load(group.directory / "model.pt", remedy=REBUILD, weights_only=False)
    model = build(group, len(group.spec["seeds"]))
    model.load_state_dict(saved["model"])
    return model.to(device).eval(), saved


def identity(group: Group, seed: int) -> dict:
    size = group.spec["model"]
    return dict(
        run_key=f"{group.name}/seed{seed}", objective=group.spec["objective"], n_layers=size["n_layers"],
        width=size["width"], heads=size["heads"], parameters=lm.parameters(lm.LMConfig(**size)), seed=seed,
    )


@torch.no_grad()
def accuracy(model: lm.LanguageModel, tokens: torch.Tensor, labels: torch.Tensor, evaluation_mask: str) -> torch.Tensor:
    """Per-model greedy accuracy [K] of the next token after each prompt tokens [N, P] against labels [N]."""
    k = model.head.weight.shape[0]
    length = tokens.shape[1]
    split = length if evaluation_mask == "prefix" else 0
    correct = torch.zeros(k)
    for start in range(0, len(tokens), EVALUATION_BATCH):
        batch = tokens[start : start + EVALUATION_BATCH]
        mask = masks.prefix_lm(torch.full((len(batch),), split), length).expand(k, -1, -1, -1)
        logits = model(batch.expand(k, -1, -1), mask)[:, :, -1]
        correct += (logits.argmax(-1) == labels[start : start + EVALUATION_BATCH]).sum(-1).cpu()
    return correct / len(tokens)


def evaluate(group: Group, prompts_path, execution: dict) -> None:
    """The group's accuracy on every prompt set and training curve, as metrics rows in its metrics.parquet."""
    set_cpu_execution(execution)
    device = resolve_device(execution)
    model, saved = load(group, device)
    step = saved["curve"][-1]["step"]
    rows = []
    for prompt_set in ginc.load(prompts_path)["sets"]:
        tokens, labels = prompt_set["tokens"].long().to(device), prompt_set["label"].to(device)
        setting = dict(split=prompt_set["split"], k=prompt_set["k"], example_length=prompt_set["example_length"], step=step, metric="accuracy_pct")
        for evaluation_mask in EVALUATION_MASKS[group.spec["objective"]]:
            for seed, value in enumerate(accuracy(model, tokens, labels, evaluation_mask).tolist()):
                rows.append(identity(group, seed) | setting | dict(evaluation_mask=evaluation_mask, value=100 * value))
    for point in saved["curve"]:
        for seed, value in enumerate(point["loss"]):
            rows.append(identity(group, seed) | dict(
                split="train", k=0, example_length=0, step=point["step"], metric="train_loss", evaluation_mask="none", value=value,
            ))
    metrics.write(pd.DataFrame(rows), group.directory / "metrics.parquet", group.spec, schema=metrics.LM_SCHEMA)


def references(prompts_path) -> pd.DataFrame:
    """The Bayes-optimal accuracy and chance (a uniform guess over the vocabulary) of every prompt set."""
    content = ginc.load(prompts_path)
    vocab_size = content["spec"]["vocab_size"]
    rows = []
    for prompt_set in content["sets"]:
        setting = dict(split=prompt_set["split"], k=prompt_set["k"], example_length=prompt_set["example_length"], step=0,
                       metric="accuracy_pct", evaluation_mask="none", n_layers=0, width=0, heads=0, parameters=0, seed=0)
        bayes = 100 * (prompt_set["bayes"] == prompt_set["label"]).double().mean().item()
        rows.append(setting | dict(run_key="bayes", objective="bayes", value=bayes))
        rows.append(setting | dict(run_key="chance", objective="chance", value=100 / vocab_size))
    return pd.DataFrame(rows)
