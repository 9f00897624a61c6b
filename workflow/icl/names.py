"""What the metrics tables call things, and how the figures and tables title them: the classical
baselines, the real-data test sets, the headline metric of each task and a run's architecture.

The modules that compute these things (icl.baselines, icl.episodes, icl.tasks, icl.plan) take their
names from here, and the figures and tables read only this module of them: it imports nothing, so
the light steps (aggregate, figure, table), which run where Snakemake runs, never load torch or
scikit-learn.
"""

RIDGE = 0.1  # the ridge baseline's penalty on the weights
KNN_K = 3  # the ICEs the nearest-neighbours baseline votes with

BASELINE_LABELS = {
    "least_squares": "Least squares",
    "ridge": f"Ridge (lambda {RIDGE:g})",
    "online_gd": "Online GD (causal limit)",
    "knn": f"{KNN_K}-nearest neighbours",
    "logistic_regression": "Logistic regression",
}
BASELINES_FOR_TASK = {"lr": ("least_squares", "ridge", "online_gd"), "real": ("knn", "logistic_regression", "least_squares")}
BASELINES_FOR_TASK |= {"nlr": BASELINES_FOR_TASK["lr"], "mc": BASELINES_FOR_TASK["lr"]}

TEST_SET_TITLES = {
    "seen_classes": "seen classes, held-out samples",
    "unseen_classes": "unseen classes (digits 7-9)",
    "iris": "unseen dataset: iris",
    "wine": "unseen dataset: wine",
}

# The error a task is judged by: MSE for regression, error % for classification (icl.tasks.Classification).
HEADLINE_METRIC = {"lr": "query_mse", "nlr": "query_mse", "mc": "query_error_pct", "real": "query_error_pct"}


def architecture(spec: dict) -> str:
    """Readable name of a run's model, e.g. softmax-rel-rbf-SL-24x128h2 for the released softmax
    model with rbf logits, softmax-UL-24x128h2 for the standard one with dot logits, lsa-SL-24x128h2."""
    softmax = spec["model"] == "softmax"
    released = "-rel" if softmax and spec["variant"] == "released" else ""
    logit = f"-{spec['attention']}" if softmax and spec["attention"] != "dot" else ""
    layers = "SL" if spec["shared"] else "UL"
    return f"{spec['model']}{released}{logit}-{layers}-{spec['n_layers']}x{spec['width']}h{spec['heads']}"
