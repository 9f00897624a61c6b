"""The scale a set of trained runs ran at, in words, read from their specs.

Captions read the specs the plan will train, and table notes the specs stored in the metrics
tables, so both name what ran, sweep overrides included.
"""


def _values(specs, key) -> str:
    """One value, or the range the runs cover."""
    values = sorted({s[key] for s in specs})
    return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}-{values[-1]:g}"


def _models(specs) -> str:
    """E.g. 'softmax (released variant, rbf attention)': which trained model, and for softmax which variant and logit."""
    kinds = sorted({
        f"softmax ({s['variant']} variant, {s['attention']} attention)" if s["model"] == "softmax" else s["model"] for s in specs
    })
    return " and ".join(kinds)


def describe(specs) -> str:
    """E.g. 'softmax (released variant, rbf attention) models, 3 layers, width 32, 2 heads, FFN 64; x in R^4 (uniform), 10 ICEs + 5 queries; ...'."""
    if not specs:
        raise ValueError("no run specs to describe the scale of")
    s = specs[0]
    return (
        f"{_models(specs)} models, {_values(specs, 'n_layers')} layers, "
        f"width {_values(specs, 'width')}, {_values(specs, 'heads')} heads, FFN {_values(specs, 'ffn_width')}; "
        f"x in R^{s['x_dim']} ({s['x_distribution']}), {_values(specs, 'n_context')} ICEs + {s['n_queries']} queries, "
        f"{_values(specs, 'train_batches')} training batches; {_values(specs, 'steps')} steps of batch {s['batch_size']}, "
        f"learning rate {_values(specs, 'learning_rate')}; {len({x['seed'] for x in specs})} seeds"
    )
