"""Evaluate trained runs on their held-out test prompts.

For each run and each of its test sets (a shift of x, or a real-data split): the query error with every number of visible ICEs from 1 to
n_context (the per-position curve; Tables 4-6 read 16/24/32 of 40 from it), and the error of every
layer's probe with the full prompt (Fig. 3; metrics named probe_*). A prediction that overflows
(a linear-attention model far outside its training distribution) is recorded as +inf. A shortened prompt keeps its first ICEs and the
queries at their trained positions; the other ICEs are hidden by the mask.
"""

import math

import pandas as pd
import torch

from . import data, masks, metrics, models, runs, store, tasks
from .runs import resolve_device, set_cpu_execution, tokens
from .training import load_model


def load_group(members, device):
    """Stack the members' saved weights into one K-model module."""
    states = [load_model(m.file(store.MODEL)) for m in members]
    spec = members[0].spec
    config = models.ModelConfig.from_spec(spec)
    model = models.build(len(members), config)
    stacked = {name: torch.cat([s["model"][name] for s in states]) for name in states[0]["model"]}
    model.load_state_dict(stacked)
    return model.to(device).eval(), [s["step"] for s in states]


def _masks(members, n_visible, device):
    spec = members[0].spec
    return torch.stack(
        [masks.visibility(m.spec["mask"], spec["n_context"], spec["n_queries"], n_visible) for m in members]
    ).to(device)


def evaluate_group(members, x_shifts, execution: dict, manifest=None) -> None:
    """Score the group's runs that have no metrics on their test file yet (icl.store), then write the group's manifest if given."""
    missing = store.to_evaluate(members, x_shifts)
    print(f"{len(missing)} of the group's {len(members)} runs to evaluate{' (forced)' if store.forced('evaluate') else ''}")
    if missing:
        evaluate_runs(missing, x_shifts, execution)
    if manifest:
        store.write_manifest(manifest, members, lambda run: [run.file(store.CURVE), run.metrics(x_shifts)])


@torch.no_grad()
def evaluate_runs(members, x_shifts, execution: dict) -> None:
    """Each run's metrics on its test file, written beside its model."""
    set_cpu_execution(execution)
    device = resolve_device(execution)
    model, steps = load_group(members, device)
    spec = members[0].spec
    n, n_layers = spec["n_context"], spec["n_layers"]
    paths = [m.test_data(x_shifts) for m in members]
    loaded = {path: data.load(path)["sets"] for path in dict.fromkeys(paths)}  # a prefix and a causal run share one file
    test = [loaded[path] for path in paths]  # the same sets, in the same order, for every member
    rows = [[] for _ in members]
    for index, test_set in enumerate(test[0]):
        x = torch.stack([t[index]["x"] for t in test]).to(device)
        y = torch.stack([t[index]["y"] for t in test]).to(device)
        inputs = tokens(x, y, n)
        for n_visible in range(1, n + 1):
            output, probes = model(inputs, _masks(members, n_visible, device), n)  # the queries' outputs
            for k, member in enumerate(members):
                readouts = [("", n_layers, output[k])]
                if n_visible == n:
                    readouts += [("probe_", layer + 1, probes[layer, k]) for layer in range(n_layers)]
                task = tasks.get(member.spec["task"])
                for prefix, layer, prediction in readouts:
                    for metric, errors in task.errors(prediction, y[k, :, n:]).items():
                        value = errors.mean().item()
                        rows[k].append(dict(
                            split="test", test_set=test_set["test_set"], n_context=n_visible, x_shift=test_set["x_shift"], layer=layer, step=steps[k],
                            metric=prefix + metric, value=value if math.isfinite(value) else math.inf,  # overflowed: +inf
                        ))
    for k, member in enumerate(members):
        frame = pd.DataFrame(rows[k]).assign(**runs.identity(member.spec))
        metrics.write(frame, member.metrics(x_shifts), member.spec)
