"""The study's figures, one function per artifact, each drawn from tidy metrics tables.

Conventions: errors that span decades go on a log axis set *before* plotting, so seaborn's
seed statistic is a geometric mean, and bands are bootstrap 95% CIs over seeds with a fixed
seed. Diverged values (+inf) are never plotted as numbers: a cross marks where a curve blew up.
The paper's stated values are drawn as grey reference marks, and every caption states the scale.
"""

import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import baselines, episodes, metrics, paper, tables  # noqa: E402
from .files import atomic_path  # noqa: E402

MASK_PALETTE = {"prefix": "#1f77b4", "causal": "#d62728", "causal2": "#ff7f0e"}
BAND = dict(errorbar=("ci", 95), n_boot=1000, seed=0)
REFERENCE = dict(color="0.45", linestyle=":", linewidth=1.2)
FIGURES = {}


def figure(name):
    def register(draw):
        FIGURES[name] = draw
        return draw

    return register


def save(fig, pdf_path, caption: str) -> None:
    """Write the figure as PDF and PNG (beside it), with the caption wrapped under the axes."""
    width, height = fig.get_size_inches()
    lines = [line for paragraph in caption.split("\n") for line in textwrap.wrap(paragraph, int(width * 17))]
    fig.set_size_inches(width, height + 0.13 * len(lines))
    fig.text(0.01, 0.005, "\n".join(lines), ha="left", va="bottom", fontsize=7, color="0.25")
    fig.tight_layout(rect=(0, (0.13 * len(lines) + 0.1) / (height + 0.13 * len(lines)), 1, 1))
    # No creation date in the PDF, so a rerun writes the same bytes (the PNG holds none).
    for path, metadata in ((pdf_path, {"CreationDate": None}), (pdf_path.with_suffix(".png"), {})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], dpi=150, metadata=metadata)
    plt.close(fig)


def _mark_divergence(ax, frame, x, hue, palette):
    """Cross at the first x where each curve (per hue) is +inf for some seed; return (level, x) pairs.

    Curves on their way to overflow leave the axes at the top: the y range is fixed by the
    curves that stay finite, so a blow-up does not squash them.
    """
    diverging = []
    for level, rows in frame.groupby(hue):
        diverged = rows[~np.isfinite(rows["value"])]
        if len(diverged):
            diverging.append((level, diverged[x].min()))
    if diverging:
        stable = frame.groupby(hue).filter(lambda rows: np.isfinite(rows["value"]).all())
        top = 10 * stable["value"].max() if len(stable) else 1e3
        ax.set_ylim(top=top)
        for level, first in diverging:
            ax.plot([first], [top], marker="x", color=palette.get(level, "k"), markersize=9, clip_on=False)
    return diverging


def _theory_scale(config: dict) -> str:
    t = config
    return (
        f"Constructed LSA, d={t['d']}, x~U(-1,1)^d, w~N(0,I), noiseless; {t['sequences']} prompts x {t['queries']} queries "
        f"per seed, {t['seeds']} seeds; line: geometric mean, band: bootstrap 95% CI over seeds."
    )


def _depth_plot(frames, config, metric, pdf_path, title, references):
    depth = frames["theory_depth"]
    rows = depth[(depth["metric"] == metric) & np.isclose(depth["eta"], config["eta"])]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.set_yscale("log")
    finite = rows[np.isfinite(rows["value"])]
    sns.lineplot(finite, x="layer", y="value", hue="mask", palette=MASK_PALETTE, ax=ax, **BAND)
    for y, label in references:
        ax.axhline(y, **REFERENCE)
        ax.text(1, y, label, fontsize=7, color="0.35", va="bottom")
    notes = [f"{mask} diverges at layer {layer}" for mask, layer in _mark_divergence(ax, rows, "layer", "mask", MASK_PALETTE)]
    ax.set(xlabel="number of layers", ylabel=metric.replace("_", " ").replace("mse", "MSE"), title=title)
    caption = f"{_theory_scale(config)} n={config['n_context']} ICEs, eta={config['eta']}."
    if notes:
        caption += " Cross: " + "; ".join(notes) + " (shown from there on as diverged, not plotted)."
    save(fig, pdf_path, caption)


@figure("fig2_ice_depth")
def fig2_ice_depth(frames, configs, pdf_path):
    _depth_plot(frames, configs["theory_depth"]["theory"], "ice_mse", pdf_path, "ICE MSE against depth (Fig. 2 left)", [])


@figure("fig2_query_depth")
def fig2_query_depth(frames, configs, pdf_path):
    references = [
        (paper.CAUSAL_QUERY_FLOOR, "paper: causal stays above 1e-1"),
        (paper.PREFIX_QUERY_AT_50, "paper: prefix below 1e-3 by depth 50"),
    ]
    _depth_plot(frames, configs["theory_depth"]["theory"], "query_mse", pdf_path, "Query MSE against depth (Fig. 2 middle)", references)


def _stationary_plot(frames, configs, mask, pdf_path, title, compare_with=None):
    rows = frames["theory_stationary"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.set_yscale("log")
    shown = rows[rows["mask"] == mask].assign(mu_x=lambda f: f["x_shift"].map("{:g}".format))
    sns.lineplot(shown, x="n_context", y="value", hue="mu_x", marker="o", ax=ax, **BAND)
    if compare_with:
        other = rows[rows["mask"] == compare_with].assign(mu_x=lambda f: f["x_shift"].map("{:g}".format))
        sns.lineplot(other, x="n_context", y="value", hue="mu_x", ax=ax, linestyle="--", legend=False, alpha=0.6, **BAND)
    ax.axhline(paper.STATIONARY_THRESHOLD, **REFERENCE)
    ax.axvline(paper.STATIONARY_ICES, **REFERENCE)
    ax.text(paper.STATIONARY_ICES, paper.STATIONARY_THRESHOLD, " paper: at mu_x=0 causal needs\n over 100 ICEs to reach 1e-2", fontsize=7, color="0.35", va="bottom")
    ax.set(xlabel="number of ICEs n", ylabel="query MSE at the stationary point", title=title)
    t = configs["theory_stationary"]["theory"]
    prefix = rows[rows["mask"] == "prefix"]["value"].max()
    caption = (
        f"{_theory_scale(t)} x~U(mu_x-1, mu_x+1)^d. prefixLM's stationary point (least squares) is exact: "
        f"largest query MSE {prefix:.1e}."
    )
    if compare_with:
        caption += f" Dashed: {compare_with} for comparison."
    save(fig, pdf_path, caption)


@figure("fig2_stationary")
def fig2_stationary(frames, configs, pdf_path):
    _stationary_plot(frames, configs, "causal", pdf_path, "causalLM stationary point (Fig. 2 right)")


@figure("fig4_causal2_stationary")
def fig4_causal2_stationary(frames, configs, pdf_path):
    _stationary_plot(frames, configs, "causal2", pdf_path, "causalLM2 stationary point (Fig. 4)", compare_with="causal")


@figure("theory_eta_sweep")
def theory_eta_sweep(frames, configs, pdf_path):
    t = configs["theory_depth"]["theory"]
    rows = frames["theory_depth"]
    rows = rows[(rows["metric"] == "query_mse") & rows["eta"].isin(t["eta_sweep"])].assign(eta=lambda f: f["eta"].map("{:g}".format))
    masks = [m for m in MASK_PALETTE if m in set(rows["mask"])]
    fig, axes = plt.subplots(1, len(masks), figsize=(4 * len(masks), 3.8), sharey=True, squeeze=False)
    palette = dict(zip(sorted(rows["eta"].unique(), key=float), sns.color_palette("viridis", rows["eta"].nunique())))
    notes = []
    for ax, mask in zip(axes[0], masks):
        ax.set_yscale("log")
        shown = rows[rows["mask"] == mask]
        sns.lineplot(shown[np.isfinite(shown["value"])], x="layer", y="value", hue="eta", palette=palette, ax=ax, legend=ax is axes[0][-1], **BAND)
        ax.set(title=mask, xlabel="number of layers", ylabel="query MSE")
        notes += [f"{mask} eta={eta} from layer {layer}" for eta, layer in _mark_divergence(ax, shown, "layer", "eta", palette)]
    caption = f"{_theory_scale(t)} n={t['n_context']} ICEs."
    if notes:
        caption += "\nDiverged (cross, not plotted): " + "; ".join(notes) + "."
    save(fig, pdf_path, caption)


BASELINE_STYLE = dict(zip(baselines.BASELINES, [":", "-.", "--", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))], strict=True))


def _task_grid(rows, x, pdf_path, title, xlabel, caption, log_x=False, references=None, baseline_rows=None, baseline_x=None):
    """One panel per task: error against x, prefix vs causal, mean and bootstrap 95% CI over seeds;
    baselines (mean over seeds, on the same prompts) in black: horizontal lines, or curves over
    `baseline_x` when they vary with it."""
    task_names = [t for t in tables.TASKS if t in set(rows["task"])]
    fig, axes = plt.subplots(1, len(task_names), figsize=(max(6.5, 4.2 * len(task_names)), 3.8), squeeze=False)
    for ax, task in zip(axes[0], task_names):
        if task != "mc":
            ax.set_yscale("log")
        if log_x:
            ax.set_xscale("log")
            ax.minorticks_off()
        ticks = sorted(rows[x].unique())
        if len(ticks) <= 12:  # few settings (layers, sizes, shifts): mark exactly those
            ax.set_xticks(ticks, labels=[f"{v:g}" for v in ticks])
        shown = rows[rows["task"] == task]
        sns.lineplot(shown, x=x, y="value", hue="mask", style="layers", palette=MASK_PALETTE, marker="o", ax=ax, **BAND)
        if baseline_rows is not None:
            # On a log axis an exact baseline (least squares on noiseless LR) would squash the models'
            # curves into a line: it is drawn at the floor and labelled as below it.
            floor = shown["value"].min() / 30 if task != "mc" else -np.inf
            for name, values in baseline_rows[baseline_rows["task"] == task].groupby("model"):
                curve = values.groupby(baseline_x)["value"].mean() if baseline_x else values["value"].mean()
                below = np.all(np.asarray(curve) < floor)
                style = dict(color="k", linewidth=0.9, linestyle=BASELINE_STYLE[name],
                             label=f"{baselines.LABELS[name]} (< {floor:.0e})" if below else baselines.LABELS[name])
                if baseline_x:
                    ax.plot(curve.index, np.maximum(curve.values, floor), **style)
                else:
                    ax.axhline(max(curve, floor), **style)
            ax.legend(fontsize=6)
        if references and task in references and shown[x].min() <= references[task] <= shown[x].max():
            ax.axvline(references[task], **REFERENCE)
            ax.text(references[task], ax.get_ylim()[1], " paper: largest gap", fontsize=7, color="0.35", va="top")
        ax.set(title=task.upper(), xlabel=xlabel, ylabel="test error %" if task == "mc" else "test query MSE")
    fig.suptitle(title)
    save(fig, pdf_path, caption)


def _baselines(frame):
    """Each baseline's full-prompt test error per task and seed."""
    errors = tables.final_errors(frame)
    return errors[errors["model"].isin(list(baselines.BASELINES))]


@figure("fig3_probe_layers")
def fig3_probe_layers(frames, configs, pdf_path):
    frame = frames["table1"]
    rows = frame[
        (frame["split"] == "test") & frame["shared"] & frame["l2"] & ~frame["permute"] & (frame["x_shift"] == 0)
        & (frame["metric"] == "probe_" + frame["task"].map(tables.headline_metric))
    ].assign(layers="SL")
    caption = (
        "Linear probe on each layer's hidden state (trained on stop-gradient states), SL models with L2, full prompt; "
        "black: least squares, ridge and online GD on the same prompts. "
        "Line: mean (log axes: geometric mean), band: bootstrap 95% CI over seeds.\n" + tables.scale_note(configs)
    )
    _task_grid(rows, "layer", pdf_path, "Fig. 3: probe error per layer", "layer", caption, baseline_rows=_baselines(frame))


@figure("fig6_train_size")
def fig6_train_size(frames, configs, pdf_path):
    rows = _trained(tables.final_errors(frames["fig6"]))
    caption = (
        "Test error against the size of the fixed training set (batches of the training batch size); the training sets "
        "are nested. Grey: where the paper's gap is largest; black: baselines on the same prompts. Line: mean, band: bootstrap 95% CI over seeds.\n"
        + tables.scale_note(configs)
    )
    _task_grid(rows, "train_batches", pdf_path, "Fig. 6: training-set size", "training batches", caption,
               log_x=True, references=paper.FIG6_LARGEST_GAP, baseline_rows=_baselines(frames["fig6"]))


@figure("ext_distribution_shift")
def ext_distribution_shift(frames, configs, pdf_path):
    frame = frames["table1"]
    shifts = sorted(frame["x_shift"].unique())
    errors = pd.concat([tables.final_errors(frame, x_shift=shift) for shift in shifts])
    rows = _trained(errors)
    baseline_rows = errors[errors["model"].isin(list(baselines.BASELINES))]
    caption = (
        "Table 1's models (trained on x ~ U(-1, 1)^d) tested on x shifted by mu_x, full prompt. The theory predicts that "
        "causalLM suffers most as mu_x grows (Fig. 2 right). Line: mean, band: bootstrap 95% CI over seeds; black: "
        "baselines on the same shifted prompts (least squares, ridge, online GD).\n" + tables.scale_note(configs)
    )
    _task_grid(rows, "x_shift", pdf_path, "Distribution shift at test time", "mu_x", caption, baseline_rows=baseline_rows, baseline_x="x_shift")


def _trained(errors):
    """The trained models' rows, with their layer type (SL or UL) as a column."""
    return errors[errors["model"].isin(tables.TRAINED_MODELS)].assign(layers=lambda f: np.where(f["shared"], "SL", "UL"))


@figure("ext_ice_count")
def ext_ice_count(frames, configs, pdf_path):
    frame = pd.concat([frames["table1"], frames["ice_count"]]).drop_duplicates(metrics.ROW_KEY)
    test = _trained(tables.read_out_errors(frame))
    test = test.assign(trained_with=test["train_n_context"].map("{} ICEs".format))
    task_names = [t for t in tables.TASKS if t in set(test["task"])]
    layer_types = [t for t in ("SL", "UL") if t in set(test["layers"])]
    fig, axes = plt.subplots(len(layer_types), len(task_names), figsize=(4.2 * len(task_names), 3.4 * len(layer_types)), squeeze=False)
    for row, layers in enumerate(layer_types):
        for column, task in enumerate(task_names):
            ax = axes[row][column]
            if task != "mc":
                ax.set_yscale("log")
            shown = test[(test["task"] == task) & (test["layers"] == layers)]
            sns.lineplot(shown, x="n_context", y="value", hue="mask", style="trained_with", palette=MASK_PALETTE,
                         marker="o", markersize=4, ax=ax, legend=row == column == 0, **BAND)
            for trained in sorted(shown["train_n_context"].unique())[:-1]:
                ax.axvline(trained, **REFERENCE)
            ax.set(title=f"{task.upper()}, {layers}", xlabel="ICEs at test", ylabel="test error %" if task == "mc" else "test query MSE")
    caption = (
        "Models trained with all ICEs of the prompt visible, or with only the first few (grey line), tested with 1 to all ICEs "
        "visible: left of the line fewer ICEs than in training, right of it more. Line: mean (log axes: geometric mean), "
        "band: bootstrap 95% CI over seeds.\n" + tables.scale_note(configs)
    )
    save(fig, pdf_path, caption)


@figure("ext_model_size")
def ext_model_size(frames, configs, pdf_path):
    errors = tables.final_errors(frames["model_size"])
    models = _trained(errors).assign(
        size=lambda f: f["n_layers"].astype(str) + "x" + f["width"].astype(str), model=lambda f: f["mask"] + " " + f["layers"]
    )
    order = models.sort_values(["width", "n_layers"])["size"].unique()
    palette = {"prefix SL": "#1f77b4", "prefix UL": "#9ecae1", "causal SL": "#d62728", "causal UL": "#fc9272"}
    task_names = [t for t in tables.TASKS if t in set(models["task"])]
    fig, axes = plt.subplots(2, len(task_names), figsize=(max(6.5, 0.55 * len(order) * len(task_names) + 2), 6.5), squeeze=False)
    ratios = tables.paired(errors)
    ratios = ratios.assign(layers=np.where(ratios["shared"], "SL", "UL"), size=ratios["n_layers"].astype(str) + "x" + ratios["width"].astype(str))
    for column, task in enumerate(task_names):
        top, bottom = axes[0][column], axes[1][column]
        if task != "mc":
            top.set_yscale("log")
        shown = models[models["task"] == task]
        sns.pointplot(shown, x="size", y="value", hue="model", palette=palette, order=order,
                      hue_order=[h for h in palette if h in set(shown["model"])], linestyles="none", dodge=0.5, ax=top, **BAND)
        top.set(title=task.upper(), xlabel="", ylabel="test error %" if task == "mc" else "test query MSE")
        top.legend(fontsize=6)
        bottom.axhline(1.0, **REFERENCE)
        for offset, (layers, rows) in zip((-0.12, 0.12), ratios[ratios["task"] == task].groupby("layers")):
            rows = rows.set_index("size").reindex(order).dropna(subset=["ratio"])
            positions = [list(order).index(size) + offset for size in rows.index]
            bottom.errorbar(positions, rows["ratio"], yerr=[rows["ratio"] - rows["ratio_ci_low"], rows["ratio_ci_high"] - rows["ratio"]],
                            marker="o", capsize=3, linestyle="none", label=layers)
        bottom.set_xticks(range(len(order)), labels=order)
        bottom.set(yscale="log", xlabel="layers x width", ylabel="causal / prefix error")
        bottom.legend(fontsize=7)
    caption = (
        "Top: test error of prefix and causal models of each size, SL and UL (mean, bootstrap 95% CI over seeds). "
        "Bottom: geometric-mean causal/prefix error ratio over paired seeds with its 95% t-interval; above 1, causal is worse.\n"
        + tables.scale_note(configs)
    )
    save(fig, pdf_path, caption)


@figure("ext_trained_lsa")
def ext_trained_lsa(frames, configs, pdf_path):
    frame = frames["lsa"]
    errors = tables.final_errors(frame)
    trained = _trained(errors)
    depths = sorted(trained["n_layers"].unique())
    constructed = errors[(errors["model"] == "lsa_constructed") & errors["n_layers"].isin(depths)]
    etas = np.array(sorted(constructed["eta"].unique()))
    paper_eta = etas[np.abs(etas - paper.ETA).argmin()]  # the paper's step, or the nearest one computed
    at_eta = constructed[np.isclose(constructed["eta"], paper_eta)]
    best = constructed.groupby(["mask", "n_layers", "seed"], as_index=False)["value"].min()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.set_yscale("log")
    sns.lineplot(trained, x="n_layers", y="value", hue="mask", palette=MASK_PALETTE, marker="o", ax=ax, **BAND)
    for rows, dashes, label in ((at_eta, (4, 2), f"constructed, eta = {paper_eta:g}"), (best, (1, 1.5), "constructed, best eta")):
        for mask, curve in rows.groupby("mask"):
            mean = np.exp(np.log(curve["value"]).groupby(curve["n_layers"]).mean())  # geometric, like the bands
            ax.plot(mean.index, mean.values, color=MASK_PALETTE[mask], dashes=dashes, linewidth=1.2, label=f"{mask} {label}")
    floor = min(trained["value"].min(), constructed["value"].min()) / 30  # exact least squares would squash the curves
    for name, rows in _baselines(frame).groupby("model"):
        level = np.exp(np.log(rows["value"].clip(lower=1e-300)).mean())
        label = baselines.LABELS[name] + (f" (< {floor:.0e})" if level < floor else "")
        ax.axhline(max(level, floor), color="k", linewidth=0.9, linestyle=BASELINE_STYLE[name], label=label)
    ax.set_xticks(depths, labels=[str(d) for d in depths])
    ax.set(xlabel="layers", ylabel="test query MSE", title="Trained linear self-attention against the constructed LSA (LR)")
    ax.legend(fontsize=6, ncol=2)
    caption = (
        "Solid: trained LSA (no softmax, no MLP), mean and bootstrap 95% CI over seeds. Dashed: the constructed LSA of Sec. 4 "
        f"with the same number of layers on the same test prompts, at the paper's step eta = {paper_eta:g}; dotted: at the best "
        "step of the theory's eta grid for each depth. Black: the constructed LSA's limits, least squares (prefixLM) and online "
        "GD (causalLM), and ridge. Log axis: geometric means.\n" + tables.scale_note(configs)
    )
    save(fig, pdf_path, caption)


@figure("ext_real_data")
def ext_real_data(frames, configs, pdf_path):
    frame = frames["real"]
    test = tables.read_out_errors(frame)
    test = test.assign(accuracy=100.0 - test["value"])
    sets = [s for s in episodes.TEST_SET_TITLES if s in set(test["test_set"])]
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.8), squeeze=False, sharey=True)
    for ax, test_set in zip(axes[0], sets):
        shown = test[test["test_set"] == test_set]
        sns.lineplot(_trained(shown), x="n_context", y="accuracy", hue="mask", style="layers", palette=MASK_PALETTE,
                     marker="o", markersize=4, ax=ax, legend=ax is axes[0][0], **BAND)
        for name, rows in shown[shown["model"].isin(list(baselines.BASELINES))].groupby("model"):
            curve = rows.groupby("n_context")["accuracy"].mean()
            ax.plot(curve.index, curve.values, color="k", linewidth=0.9, linestyle=BASELINE_STYLE[name], label=baselines.LABELS[name])
        ax.axhline(50.0, **REFERENCE)
        ax.set(title=episodes.TEST_SET_TITLES[test_set], xlabel="ICEs", ylabel="query accuracy %")
    axes[0][0].legend(fontsize=6)
    for ax in axes[0][1:]:
        ax.legend().remove()
    caption = (
        "Two-way in-context classification on scikit-learn's real datasets: every episode picks two classes, projects x "
        "to the model's input size with a fresh random matrix and permutes the labels. Trained on episodes of digits 0-6 "
        "and breast cancer; tested on their held-out samples, on digits 7-9, and on iris and wine, never seen in "
        "training. Accuracy against the number of ICEs the queries see (mean, bootstrap 95% CI over seeds); black: "
        "classical learners fitted to the same ICEs; grey: chance.\n" + tables.scale_note(configs)
    )
    save(fig, pdf_path, caption)


def draw(name: str, frames: dict, configs: dict, pdf_path) -> None:
    """Draw artifact `name` from metrics tables (`frames`) and their stored configs, by table name."""
    if name not in FIGURES:
        raise ValueError(f"no figure named {name!r}; choose one of {', '.join(FIGURES)}")
    FIGURES[name](frames, configs, pdf_path)
