"""What the metrics tables call things, and how the figures and tables title them: the classical
baselines, the real-data test sets and the headline metric of each task (a run's architecture is
named by icl.runs, which is as light).

The modules that compute these things (icl.baselines, icl.episodes, icl.tasks) take their
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

# The width of a task's label (its one-hot classes for classification), which planning needs without torch.
OUTPUT_DIM = {"lr": 1, "nlr": 1, "mc": 3, "real": 2}  # real: breast cancer has only two classes

# The error a task is judged by: MSE for regression, error % for classification (icl.tasks.Classification).
HEADLINE_METRIC = {"lr": "query_mse", "nlr": "query_mse", "mc": "query_error_pct", "real": "query_error_pct"}

