"""The study's tables: our value and 95% CI over seeds beside the paper's, as CSV and Markdown.

Errors are the test query error of the final read-out: MSE for lr and nlr, error % for mc and real.
MSEs are summarised by their geometric mean and error % by its mean (icl.stats), as in the figures.
"""

import numpy as np
import pandas as pd

from . import metrics, paper, scale, stats
from .files import write_text
from .names import BASELINE_LABELS, BASELINES_FOR_TASK, HEADLINE_METRIC, TEST_SET_TITLES
from .runs import architecture

TASKS = ("lr", "nlr", "mc")
TRAINED_MODELS = ("softmax", "lsa")
TABLES = {}
# The columns that describe a setting in a table. Runs are paired on the setting column itself, the
# hash of the whole config but mask and seed, so settings that these columns do not tell apart
# (a sweep over the learning rate, say) are still compared each on its own, never averaged together.
DESCRIBED = ["task", "model", "attention", "variant", "n_layers", "width", "heads", "shared", "l2", "permute", "train_batches", "train_n_context"]


def table(name):
    def register(build):
        TABLES[name] = build
        return build

    return register


def headline_metric(task: str) -> str:
    return HEADLINE_METRIC[task]


def is_mse(task: str) -> bool:
    """Whether a task's headline error is an MSE (positive, skewed: summarised on the log scale)."""
    return headline_metric(task) != "query_error_pct"


def read_out_errors(frame: pd.DataFrame, x_shift: float = 0.0) -> pd.DataFrame:
    """The test error of the final read-out, one row per run, test set and number of visible ICEs."""
    test = frame[(frame["split"] == "test") & (frame["layer"] == frame["n_layers"]) & np.isclose(frame["x_shift"], x_shift)]
    return test[test["metric"] == test["task"].map(headline_metric)]


def final_errors(frame: pd.DataFrame, n_context=None, x_shift: float = 0.0) -> pd.DataFrame:
    """One row per run and test set: the test error of the final read-out (with n_context visible ICEs)."""
    test = read_out_errors(frame, x_shift)
    full = test.groupby("run_key")["n_context"].transform("max")
    return test[test["n_context"] == (full if n_context is None else n_context)]


def row_name(mask: str, shared: bool, suffix: str = "") -> str:
    return f"{'PrefixLM' if mask == 'prefix' else 'CausalLM'}-{'SL' if shared else 'UL'}{suffix}"


def _fmt(value: float, task: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.1f}" if headline_metric(task) == "query_error_pct" else f"{value:.2g}"


def summarise(errors: pd.DataFrame, rows: dict, paper_values: dict) -> pd.DataFrame:
    """Value and 95% CI over seeds for each named row (a filter on the run columns) and task.

    `mean` is a geometric mean for MSEs and an arithmetic one for error % (column `average`).
    """
    records = []
    for name, selection in rows.items():
        for task in TASKS:
            chosen = errors[errors["task"] == task]
            for column, wanted in selection.items():
                chosen = chosen[chosen[column] == wanted]
            mean, low, high = stats.summarise(chosen["value"], log=is_mse(task)) if len(chosen) else (np.nan,) * 3
            records.append(dict(
                row=name, task=task, metric=headline_metric(task), average="geometric" if is_mse(task) else "arithmetic",
                mean=mean, ci_low=low, ci_high=high, seeds=len(chosen), paper=paper_values.get(name, {}).get(task, np.nan),
            ))
    return pd.DataFrame(records)


def markdown(summary: pd.DataFrame, title: str, note: str) -> str:
    """A table with 'ours: mean [95% CI] (seeds)' and 'paper' per task."""
    header = "| | " + " | ".join(f"{t.upper()} ours | {t.upper()} paper" for t in TASKS) + " |"
    lines = [f"# {title}", "", header, "|---" * (1 + 2 * len(TASKS)) + "|"]
    for name, rows in summary.groupby("row", sort=False):
        cells = []
        for task in TASKS:
            r = rows[rows["task"] == task].iloc[0]
            ci = f" [{_fmt(r['ci_low'], task)}, {_fmt(r['ci_high'], task)}]" if np.isfinite(r["ci_low"]) else ""
            cells += [f"{_fmt(r['mean'], task)}{ci} (n={r['seeds']})" if r["seeds"] else "not run", _fmt(r["paper"], task)]
        if name == next(iter(BASELINE_ROWS)):
            lines.append("| *baselines on the same prompts* |" + " |" * (2 * len(TASKS)))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", note, ""])


INTERVALS = (
    "Errors: test query MSE (lr, nlr) as geometric mean [95% t-interval on log errors] over seeds, "
    "error % (mc, real) as mean [95% t-interval] over seeds."
)


def scale_note(configs: dict) -> str:
    """The scale the runs were trained at, from the specs stored in the metrics tables."""
    specs = [s for c in configs.values() for s in c.get("specs", [])]
    if not specs:
        return ""
    return (
        f"Scale: {scale.describe(specs)}. {INTERVALS} "
        "The paper's values are at its own scale (24 layers, width 128, 40 ICEs, 100k steps)."
    )


TABLE1_ROWS = {
    row_name(mask, shared): dict(mask=mask, shared=shared, l2=shared, permute=False)
    for shared in (True, False) for mask in ("prefix", "causal")
}
# Classical learners on the same test prompts (icl.baselines), listed under the models.
BASELINE_ROWS = {BASELINE_LABELS[name]: dict(model=name) for name in BASELINES_FOR_TASK["lr"]}


@table("table1")
def table1(frames, configs):
    summary = summarise(final_errors(frames["table1"]), TABLE1_ROWS | BASELINE_ROWS, paper.TABLE1)
    return summary, markdown(summary, "Table 1: test query error (SL with L2, UL without)", scale_note(configs))


@table("table3")
def table3(frames, configs):
    errors = final_errors(pd.concat([frames["table1"], frames["table3"]]).drop_duplicates(metrics.ROW_KEY))
    rows = {
        row_name(mask, shared, "-L2" if l2 else "-no-L2"): dict(mask=mask, shared=shared, l2=l2, permute=False)
        for shared in (True, False) for l2 in (not shared, shared) for mask in ("prefix", "causal")
    }
    paper_values = paper.TABLE3 | {
        row_name(m, s, "-L2" if s else "-no-L2"): paper.TABLE1[row_name(m, s)] for m in ("prefix", "causal") for s in (True, False)
    }
    summary = summarise(errors, rows, paper_values)
    return summary, markdown(summary, "Table 3: with and without the L2 regulariser on ICE outputs", scale_note(configs))


@table("table4_6_fewer_ices")
def table4_6(frames, configs):
    frame = frames["table1"]
    full = int(frame["n_context"].max())
    parts, texts = [], []
    for n in sorted(set(configs["table1"]["evaluate"]["n_context"])):
        paper_n = round(n * 40 / full)  # the paper's prompt of 40 ICEs, at the same fraction
        summary = summarise(final_errors(frame, n_context=n), TABLE1_ROWS | BASELINE_ROWS, paper.FEWER_ICES.get(paper_n, {}))
        parts.append(summary.assign(n_context=n, paper_n_context=paper_n))
        texts.append(markdown(summary, f"Tables 4-6: {n} of {full} ICEs (paper: {paper_n} of 40)", ""))
    note = (
        "A shortened prompt keeps its first ICEs and the queries at their trained positions; the other ICEs are "
        "masked out. " + scale_note(configs)
    )
    return pd.concat(parts, ignore_index=True), "\n".join(texts) + "\n" + note + "\n"


@table("table7")
def table7(frames, configs):
    rows = {name: sel | {"permute": True} for name, sel in TABLE1_ROWS.items()} | BASELINE_ROWS
    summary = summarise(final_errors(frames["table7"]), rows, paper.TABLE7)
    return summary, markdown(summary, "Table 7: ICEs shuffled at every training step", scale_note(configs))


@table("ext_real_data_table")
def real_data(frames, configs):
    """Accuracy with the full prompt on each real-data test set, and the paired causal/prefix error ratio."""
    errors = final_errors(frames["real"])
    rows = {name: dict(mask=sel["mask"], shared=sel["shared"]) for name, sel in TABLE1_ROWS.items()}
    rows |= {BASELINE_LABELS[name]: dict(model=name) for name in BASELINES_FOR_TASK["real"]}
    records = []
    for test_set, chosen in errors.groupby("test_set", sort=False):
        for name, selection in rows.items():
            picked = chosen[chosen["model"].isin(TRAINED_MODELS)] if "mask" in selection else chosen
            for column, wanted in selection.items():
                picked = picked[picked[column] == wanted]
            accuracy = 100.0 - picked["value"]
            mean, low, high = stats.summarise(accuracy, log=False) if len(picked) else (np.nan,) * 3
            records.append(dict(row=name, test_set=test_set, accuracy=mean, ci_low=low, ci_high=high, seeds=len(picked)))
    summary = pd.DataFrame(records)
    sets = [s for s in TEST_SET_TITLES if s in set(summary["test_set"])]
    lines = ["# Real data: query accuracy % with the full prompt", "", "| | " + " | ".join(TEST_SET_TITLES[s] for s in sets) + " |",
             "|---" * (1 + len(sets)) + "|"]
    for name, by_set in summary.groupby("row", sort=False):
        cells = []
        for test_set in sets:
            r = by_set[by_set["test_set"] == test_set].iloc[0]
            ci = f" [{r['ci_low']:.1f}, {r['ci_high']:.1f}]" if np.isfinite(r["ci_low"]) else ""
            cells.append(f"{r['accuracy']:.1f}{ci} (n={r['seeds']})" if r["seeds"] else "not run")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ratios = paired(errors)
    lines += ["", "Causal / prefix error ratio over paired seeds [95% CI], causal worse in k of n seeds, paired t-test p "
              "(raw, and Holm-corrected over the settings listed here):", ""]
    for _, r in ratios.iterrows():
        lines.append(
            f"- {'SL' if r['shared'] else 'UL'}, {TEST_SET_TITLES.get(r['test_set'], r['test_set'])}: {r['ratio']:.2f} "
            f"[{r['ratio_ci_low']:.2f}, {r['ratio_ci_high']:.2f}], {r['causal_worse_seeds']}/{r['seeds']}, p = {r['p_value']:.2g} (Holm {r['p_holm']:.2g})"
        )
    note = "Accuracy: mean [95% t-interval] over seeds; chance is 50%. " + scale_note(configs)
    return summary, "\n".join(lines + ["", note, ""])


def _centre(values, task: str) -> float:
    return stats.summarise(values, log=is_mse(task))[0]


def paired(errors: pd.DataFrame) -> pd.DataFrame:
    """Per setting and test set: causal/prefix error ratio over paired seeds, its 95% CI and a paired t-test on
    logs; `p_holm` corrects the p-values for testing every setting given here (Holm)."""
    index = ["setting", "test_set", "seed"]
    trained = errors[errors["model"].isin(TRAINED_MODELS)]
    described = trained.drop_duplicates("setting").set_index("setting")[DESCRIBED]
    wide = trained.pivot_table(index=index, columns="mask", values="value").dropna(subset=["prefix", "causal"])
    records = []
    for (setting, test_set), rows in wide.groupby(level=index[:-1], sort=False):
        task = described.loc[setting, "task"]
        records.append({"setting": setting, **described.loc[setting].to_dict(), "test_set": test_set})
        ratio, low, high, p_value = stats.paired_log_ratio(rows["causal"], rows["prefix"])
        records[-1] |= dict(
            seeds=len(rows), prefix_mean=_centre(rows["prefix"], task), causal_mean=_centre(rows["causal"], task),
            ratio=ratio, ratio_ci_low=low, ratio_ci_high=high, causal_worse_seeds=int((rows["causal"] > rows["prefix"]).sum()),
            p_value=p_value,
        )
    if not records:
        return pd.DataFrame(records)
    summary = pd.DataFrame(records).sort_values(DESCRIBED + ["test_set", "setting"], ignore_index=True)
    return summary.assign(p_holm=stats.holm(summary["p_value"]))


@table("paired_comparison")
def paired_comparison(frames, configs):
    errors = final_errors(pd.concat(frames.values()).drop_duplicates(metrics.ROW_KEY))
    summary = paired(errors)
    lines = [
        "# Paired comparison: causalLM error / prefixLM error, same data and seed", "",
        "| setting | task | test set | model | L2 | permute | train batches | train ICEs | seeds | prefix | causal | ratio [95% CI] | causal worse | p | p (Holm) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        lines.append(
            f"| {r['setting']} | {r['task']} | {r['test_set']} | {architecture(r)} | {r['l2']} | {r['permute']} | {r['train_batches']} | {r['train_n_context']} | {r['seeds']} "
            f"| {_fmt(r['prefix_mean'], r['task'])} | {_fmt(r['causal_mean'], r['task'])} "
            f"| {r['ratio']:.2f} [{r['ratio_ci_low']:.2f}, {r['ratio_ci_high']:.2f}] | {r['causal_worse_seeds']}/{r['seeds']} "
            f"| {r['p_value']:.2g} | {r['p_holm']:.2g} |"
        )
    note = (
        "Setting: the hash of a run's whole config but its mask and seed; runs are paired within a setting. "
        "Ratio: geometric mean over seeds of causal/prefix test error (MSE for lr/nlr, error % for mc and real), with a "
        "95% t-interval on the log ratio; p: two-sided paired t-test of log errors across seeds; p (Holm): the same "
        f"corrected with Holm's step-down method for the {summary['p_value'].notna().sum()} settings tested in this table. "
        "prefix, causal: geometric mean (MSE) or mean (error %) over seeds. " + scale_note(configs)
    )
    return summary, "\n".join(lines + ["", note, ""])


def _theory_row(statement: str, quantity: str, per_seed: pd.Series) -> dict:
    mean, low, high = stats.geometric_mean_ci(per_seed)
    return dict(paper=statement, quantity=quantity, mean=mean, ci_low=low, ci_high=high,
                seed_min=per_seed.min(), seed_max=per_seed.max(), seeds=len(per_seed))


@table("theory_values")
def theory_values(frames, configs):
    """Each statement of Sec. 5.1 about the constructed LSA beside the numbers of ours that test it."""
    t = configs["theory_depth"]["theory"]
    depth = frames["theory_depth"]
    last, middle = t["max_depth"], t["max_depth"] // 2

    def at_depth(mask, metric, eta=t["eta"]):
        rows = depth[(depth["mask"] == mask) & (depth["metric"] == metric) & np.isclose(depth["eta"], eta)]
        return rows.pivot_table(index="seed", columns="layer", values="value")

    def rate(metric):  # the factor per layer by which prefixLM's error falls over the second half of the depths
        per_layer = at_depth("prefix", metric)
        return (per_layer[last] / per_layer[middle]) ** (1 / (last - middle))

    records = [
        _theory_row(f"causalLM's query MSE stays above {paper.CAUSAL_QUERY_FLOOR:g} over depth",
                    f"causal query MSE, lowest over depth 1-{last}", at_depth("causal", "query_mse").min(axis=1)),
        *(_theory_row("prefixLM's query MSE falls at the same linear rate as its ICE MSE",
                      f"prefix {name} MSE, factor per layer from depth {middle} to {last}", rate(metric))
          for name, metric in (("query", "query_mse"), ("ICE", "ice_mse"))),
    ]
    stationary = frames["theory_stationary"]
    grid = np.array(sorted(stationary["n_context"].unique()))
    near = grid[np.abs(grid - paper.STATIONARY_ICES) <= paper.STATIONARY_N_STEP]
    nearest = grid[np.abs(grid - paper.STATIONARY_ICES).argmin()]

    def stationary_point(mask, n, shift):
        rows = stationary[(stationary["mask"] == mask) & (stationary["n_context"] == n) & np.isclose(stationary["x_shift"], shift)]
        return rows.set_index("seed")["value"]

    threshold = f"at mu_x = 0 causalLM's stationary point needs over {paper.STATIONARY_ICES} ICEs to fall below {paper.STATIONARY_THRESHOLD:g}"
    records += [_theory_row(threshold, f"causal stationary point, mu_x = 0, {n} ICEs", stationary_point("causal", n, 0.0)) for n in near]
    records += [
        _theory_row("it is worse for each larger mu_x", f"causal stationary point, mu_x = {shift:g}, {nearest} ICEs",
                    stationary_point("causal", nearest, shift))
        for shift in sorted(stationary["x_shift"].unique())
    ]
    records.append(_theory_row("causalLM2 converges even more slowly", f"causal2 stationary point, mu_x = 0, {nearest} ICEs",
                               stationary_point("causal2", nearest, 0.0)))
    records += [
        _theory_row(f"eta = {paper.ETA:g} is the fastest step without divergence", f"{mask} query MSE at depth {last}, eta = {eta:g}",
                    at_depth(mask, "query_mse", eta)[last])
        for mask in ("prefix", "causal") for eta in t["eta_sweep"]
    ]
    summary = pd.DataFrame(records)
    lines = ["# Sec. 5.1: the paper's statements about the constructed LSA, beside our values", "",
             "| the paper says | quantity | ours: geometric mean [95% CI] | per seed | seeds |", "|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        ci = f" [{r['ci_low']:.2g}, {r['ci_high']:.2g}]" if np.isfinite(r["ci_low"]) else ""
        value = f"{r['mean']:.2g}{ci}" if np.isfinite(r["mean"]) else "diverged"
        lines.append(f"| {r['paper']} | {r['quantity']} | {value} | {r['seed_min']:.2g} to {r['seed_max']:.2g} | {r['seeds']} |")
    note = (
        f"Constructed LSA, d = {t['d']}, {t['n_context']} ICEs for the depth rows, eta = {t['eta']} unless stated, "
        f"{t['sequences']} prompts x {t['queries']} queries per seed. The paper draws the stationary point every "
        f"{paper.STATIONARY_N_STEP} ICEs, so the rows around {paper.STATIONARY_ICES} ICEs are as fine as its statement can be read."
    )
    return summary, "\n".join(lines + ["", note, ""])


# --- the language-model study (metrics.LM_SCHEMA) ---

LM_TABLE_K = (0, 4, 16)
# (objective, evaluation mask) -> column name; a prefix model reads the prompt as its prefix, or causally.
LM_READS = {
    ("causal", "causal"): "causal",
    ("prefix", "prefix"): "prefix",
    ("prefix", "causal"): "prefix, read causally",
    ("prefix_full", "prefix"): "prefix_full",
    ("prefix_full", "causal"): "prefix_full, read causally",
}
LM_SIZE = ["n_layers", "width", "heads", "parameters"]
LM_SETTING = ["split", "example_length", "k"]
LM_INTERVALS = "Accuracy %: mean [95% t-interval] over seeds; differences: mean [95% t-interval] of the per-seed paired difference, p from a paired t-test."


def lm_accuracy(frame: pd.DataFrame) -> pd.DataFrame:
    """Each trained model's few-shot accuracy rows, with a `reads` column naming the objective and evaluation mask."""
    rows = frame[(frame["metric"] == "accuracy_pct") & frame["objective"].isin({o for o, _ in LM_READS})]
    reads = [LM_READS.get(pair) for pair in zip(rows["objective"], rows["evaluation_mask"])]
    return rows.assign(reads=reads).dropna(subset=["reads"])


def lm_reference(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    """The Bayes-optimal or chance accuracy per (split, example_length, k)."""
    return frame[(frame["metric"] == "accuracy_pct") & (frame["objective"] == objective)].set_index(LM_SETTING)["value"]


def lm_paired(frame: pd.DataFrame) -> pd.DataFrame:
    """Per size and prompt setting, each prefix reading minus causal over paired seeds (same initial weights and windows)."""
    accuracy = lm_accuracy(frame)
    wide = accuracy.pivot_table(index=LM_SIZE + LM_SETTING + ["seed"], columns="reads", values="value")
    records = []
    for reads in [r for r in LM_READS.values() if r != "causal" and r in wide.columns]:
        pairs = wide[["causal", reads]].dropna() if "causal" in wide.columns else wide.iloc[:0]
        for setting, rows in pairs.groupby(level=LM_SIZE + LM_SETTING):
            mean, low, high, p_value = stats.paired_difference(rows[reads], rows["causal"])
            records.append(dict(zip(LM_SIZE + LM_SETTING, setting)) | dict(
                comparison=f"{reads} - causal", difference=mean, ci_low=low, ci_high=high, p_value=p_value, seeds=len(rows),
                better_seeds=int((rows[reads] > rows["causal"]).sum()),
            ))
    return pd.DataFrame(records)


def lm_note(configs: dict) -> str:
    from .lm_plan import describe

    lm = next(c["lm"] for c in configs.values() if "lm" in c)
    return f"Scale: {describe(lm)}. {LM_INTERVALS}"


def _cell(mean, low, high) -> str:
    ci = f" [{low:.1f}, {high:.1f}]" if np.isfinite(low) else ""
    return f"{mean:.1f}{ci}"


@table("ext_lm_table")
def ext_lm_table(frames, configs):
    frame = frames["lm"]
    accuracy = lm_accuracy(frame)
    bayes = lm_reference(frame, "bayes")
    shown_k = [k for k in LM_TABLE_K if k in set(accuracy["k"])] or sorted(set(accuracy["k"]))
    accuracy = accuracy[accuracy["k"].isin(shown_k)]
    differences = lm_paired(frame)
    differences = differences[differences["k"].isin(shown_k)] if len(differences) else differences
    reads = [r for r in LM_READS.values() if r in set(accuracy["reads"])]
    comparisons = [f"{r} - causal" for r in reads if r != "causal" and "causal" in reads]
    records, lines = [], []
    header = ["size", "split", "L", "k", *reads, "Bayes", *comparisons]
    lines += [f"# {'GINC few-shot accuracy %: prefix and causal pretraining'}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for setting, rows in accuracy.groupby(LM_SIZE + LM_SETTING):
        size = dict(zip(LM_SIZE, setting[:4]))
        split, length, k = setting[4:]
        name = f"{size['n_layers']}x{size['width']}"
        cells = [name, split.replace("_", " "), str(length), str(k)]
        for read in reads:
            values = rows[rows["reads"] == read]["value"]
            mean, low, high = stats.summarise(values, log=False)
            cells.append(_cell(mean, low, high))
            records.append(size | dict(split=split, example_length=length, k=k, column=read, value=mean, ci_low=low, ci_high=high, p_value=np.nan, seeds=len(values)))
        cells.append(f"{bayes.get((split, length, k), np.nan):.1f}")
        records.append(size | dict(split=split, example_length=length, k=k, column="Bayes", value=bayes.get((split, length, k), np.nan),
                                   ci_low=np.nan, ci_high=np.nan, p_value=np.nan, seeds=0))
        for comparison in comparisons:
            row = differences[(differences["comparison"] == comparison) & (differences["split"] == split) & (differences["example_length"] == length)
                              & (differences["k"] == k) & (differences["n_layers"] == size["n_layers"]) & (differences["width"] == size["width"])]
            if not len(row):
                cells.append("n/a")
                continue
            r = row.iloc[0]
            cells.append(f"{r['difference']:+.1f}{f' [{r.ci_low:+.1f}, {r.ci_high:+.1f}]' if np.isfinite(r.ci_low) else ''} (p {r['p_value']:.2g})")
            records.append(size | dict(split=split, example_length=length, k=k, column=comparison, value=r["difference"], ci_low=r["ci_low"],
                                       ci_high=r["ci_high"], p_value=r["p_value"], seeds=r["seeds"]))
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        "A prefix model reads the whole prompt as its prefix, and is also read with the causal mask. Bayes: the exact "
        "Bayes-optimal accuracy on the same prompts (out of distribution: a predictor that knows the held-out concepts). "
        f"Chance (a uniform guess over the vocabulary): {100 / lm_vocabulary(configs):.1f}%. " + lm_note(configs)
    )
    return pd.DataFrame(records), "\n".join(lines + ["", note, ""])


def lm_vocabulary(configs: dict) -> int:
    return next(c["lm"] for c in configs.values() if "lm" in c)["corpus"]["vocab_size"]


def write(name: str, frames: dict, configs: dict, csv_path) -> None:
    """Build table `name` and write it as CSV (tidy) and Markdown (beside it)."""
    if name not in TABLES:
        raise ValueError(f"no table named {name!r}; choose one of {', '.join(TABLES)}")
    summary, text = TABLES[name](frames, configs)
    write_text(csv_path, summary.to_csv(index=False))
    write_text(csv_path.with_suffix(".md"), text)
