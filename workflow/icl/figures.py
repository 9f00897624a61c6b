"""The study's figures, one function per artifact, each drawn from tidy metrics tables.

Conventions: a line and its band are the statistic and 95% interval of icl.stats over seeds, the
same numbers the tables print: for an MSE the geometric mean with a t-interval on log errors, for
an error % the mean with a plain t-interval. seaborn gets them as its estimator and errorbar
callables, and log axes are set *after* plotting so that seaborn hands these callables the raw
errors. Diverged values (+inf) are never plotted as numbers: a cross marks where a curve blew up.
The paper's stated values are drawn as grey reference marks, and every caption states the scale.
"""

import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import metrics, paper, stats, tables  # noqa: E402
from .files import atomic_path  # noqa: E402
from .names import BASELINE_LABELS, TEST_SET_TITLES  # noqa: E402

MASK_PALETTE = {"prefix": "#1f77b4", "causal": "#d62728", "causal2": "#ff7f0e"}
DEPTH_METRICS = {"query_mse": "query MSE", "ice_mse": "ICE MSE"}
REFERENCE = dict(color="0.45", linestyle=":", linewidth=1.2)
FIGURES = {}


def band(log: bool) -> dict:
    """seaborn's estimator and errorbar for errors over seeds: geometric (log, for MSEs) or arithmetic (error %)."""
    return dict(estimator=lambda values: stats.summarise(values, log)[0], errorbar=lambda values: stats.summarise(values, log)[1:])


MSE_BAND = band(log=True)
PCT_BAND = band(log=False)
BAND_NOTE = "Line and band: geometric mean and 95% t-interval on log errors over seeds (MSE); mean and 95% t-interval (error %)."


def task_band(task: str) -> dict:
    return MSE_BAND if tables.is_mse(task) else PCT_BAND


def _share_y(axes) -> None:
    """One y range for panels drawn apart: sharing before plotting would make a log axis set on one
    panel apply to the next before it is drawn, and seaborn would then aggregate logs."""
    low, high = min(ax.get_ylim()[0] for ax in axes), max(ax.get_ylim()[1] for ax in axes)
    for ax in axes[1:]:
        ax.sharey(axes[0])
    axes[0].set_ylim(low, high)


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
        f"per seed, {t['seeds']} seeds; line: geometric mean, band: 95% t-interval on log MSE over seeds."
    )


def _draw_depth(ax, rows, mask):
    """ICE and query MSE of one mask against depth; returns where a curve diverged."""
    rows = rows[rows["mask"] == mask].assign(error=lambda f: f["metric"].map(DEPTH_METRICS))
    palette = {label: MASK_PALETTE[mask] for label in DEPTH_METRICS.values()}
    sns.lineplot(rows[np.isfinite(rows["value"])], x="layer", y="value", style="error", style_order=list(DEPTH_METRICS.values()),
                 color=MASK_PALETTE[mask], ax=ax, **MSE_BAND)
    ax.set_yscale("log")
    ax.set(xlabel="number of layers", ylabel="MSE")
    return [f"{mask} {error} diverges at layer {layer}" for error, layer in _mark_divergence(ax, rows, "layer", "error", palette)]


def _draw_stationary(ax, rows, mask, compare_with=None):
    """Query MSE of a mask's stationary point against the number of ICEs, one curve per mu_x."""
    with_mu = rows.assign(mu_x=rows["x_shift"].map("{:g}".format))
    order = sorted(with_mu["mu_x"].unique(), key=float)
    palette = dict(zip(order, sns.color_palette("viridis", len(order))))
    sns.lineplot(with_mu[with_mu["mask"] == mask], x="n_context", y="value", hue="mu_x", hue_order=order, palette=palette,
                 marker="o", ax=ax, **MSE_BAND)
    if compare_with:
        sns.lineplot(with_mu[with_mu["mask"] == compare_with], x="n_context", y="value", hue="mu_x", hue_order=order,
                     palette=palette, ax=ax, linestyle="--", legend=False, alpha=0.6, **MSE_BAND)
    ax.set_yscale("log")
    ax.axhline(paper.STATIONARY_THRESHOLD, **REFERENCE)
    ax.axvline(paper.STATIONARY_ICES, **REFERENCE)
    ax.text(paper.STATIONARY_ICES, paper.STATIONARY_THRESHOLD,
            f" paper: at mu_x=0 causal needs\n over {paper.STATIONARY_ICES} ICEs to reach {paper.STATIONARY_THRESHOLD:g}",
            fontsize=7, color="0.35", va="bottom")
    ax.set(xlabel="number of ICEs n", ylabel="query MSE at the stationary point")


def _exact_prefix(rows) -> str:
    return f"prefixLM's stationary point (least squares) is exact: largest query MSE {rows[rows['mask'] == 'prefix']['value'].max():.1e}."


@figure("fig2")
def fig2(frames, configs, pdf_path):
    """The paper's three panels: prefixLM and causalLM against depth, and causalLM's stationary point against n."""
    t = configs["theory_depth"]["theory"]
    depth = frames["theory_depth"]
    depth = depth[depth["metric"].isin(list(DEPTH_METRICS)) & np.isclose(depth["eta"], t["eta"])]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    notes = []
    for ax, mask, title in ((axes[0], "prefix", "prefixLM (Fig. 2 left)"), (axes[1], "causal", "causalLM (Fig. 2 middle)")):
        notes += _draw_depth(ax, depth, mask)
        ax.set_title(title)
    _share_y(axes[:2])
    axes[1].axhline(paper.CAUSAL_QUERY_FLOOR, **REFERENCE)
    axes[1].text(1, paper.CAUSAL_QUERY_FLOOR, f"paper: causal query MSE stays above {paper.CAUSAL_QUERY_FLOOR:g}",
                 fontsize=7, color="0.35", va="bottom")
    stationary = frames["theory_stationary"]
    _draw_stationary(axes[2], stationary, "causal")
    axes[2].set_title("causalLM's stationary point (Fig. 2 right)")
    s = configs["theory_stationary"]["theory"]
    caption = (
        f"{_theory_scale(t)} Left, middle: n={t['n_context']} ICEs, eta={t['eta']}. "
        f"Right: {s['sequences']} prompts x {s['queries']} queries, x~U(mu_x-1, mu_x+1)^d; {_exact_prefix(stationary)}"
    )
    if notes:
        caption += " Cross: " + "; ".join(notes) + " (shown from there on as diverged, not plotted)."
    save(fig, pdf_path, caption)


@figure("fig4_causal2_stationary")
def fig4_causal2_stationary(frames, configs, pdf_path):
    rows = frames["theory_stationary"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    _draw_stationary(ax, rows, "causal2", compare_with="causal")
    ax.set_title("causalLM2 stationary point (Fig. 4)")
    caption = (
        f"{_theory_scale(configs['theory_stationary']['theory'])} x~U(mu_x-1, mu_x+1)^d. {_exact_prefix(rows)} "
        "Dashed: causal for comparison."
    )
    save(fig, pdf_path, caption)


@figure("theory_eta_sweep")
def theory_eta_sweep(frames, configs, pdf_path):
    t = configs["theory_depth"]["theory"]
    rows = frames["theory_depth"]
    rows = rows[(rows["metric"] == "query_mse") & rows["eta"].isin(t["eta_sweep"])].assign(eta=lambda f: f["eta"].map("{:g}".format))
    masks = [m for m in MASK_PALETTE if m in set(rows["mask"])]
    fig, axes = plt.subplots(1, len(masks), figsize=(4 * len(masks), 3.8), squeeze=False)
    palette = dict(zip(sorted(rows["eta"].unique(), key=float), sns.color_palette("viridis", rows["eta"].nunique())))
    notes = []
    for ax, mask in zip(axes[0], masks):
        shown = rows[rows["mask"] == mask]
        sns.lineplot(shown[np.isfinite(shown["value"])], x="layer", y="value", hue="eta", palette=palette, ax=ax, legend=ax is axes[0][-1], **MSE_BAND)
        ax.set_yscale("log")
        ax.set(title=mask, xlabel="number of layers", ylabel="query MSE")
        notes += [f"{mask} eta={eta} from layer {layer}" for eta, layer in _mark_divergence(ax, shown, "layer", "eta", palette)]
    _share_y(axes[0])
    caption = f"{_theory_scale(t)} n={t['n_context']} ICEs."
    if notes:
        caption += "\nDiverged (cross, not plotted): " + "; ".join(notes) + "."
    save(fig, pdf_path, caption)


BASELINE_STYLE = dict(zip(BASELINE_LABELS, [":", "-.", "--", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))], strict=True))


def _task_grid(rows, x, pdf_path, title, xlabel, caption, log_x=False, references=None, baseline_rows=None, baseline_x=None):
    """One panel per task: error against x, prefix vs causal, with the interval over seeds of icl.stats;
    baselines (the same statistic over seeds, on the same prompts) in black: horizontal lines, or
    curves over `baseline_x` when they vary with it."""
    task_names = [t for t in tables.TASKS if t in set(rows["task"])]
    fig, axes = plt.subplots(1, len(task_names), figsize=(max(6.5, 4.2 * len(task_names)), 3.8), squeeze=False)
    for ax, task in zip(axes[0], task_names):
        if log_x:
            ax.set_xscale("log")
            ax.minorticks_off()
        ticks = sorted(rows[x].unique())
        if len(ticks) <= 12:  # few settings (layers, sizes, shifts): mark exactly those
            ax.set_xticks(ticks, labels=[f"{v:g}" for v in ticks])
        shown = rows[rows["task"] == task]
        sns.lineplot(shown, x=x, y="value", hue="mask", style="layers", palette=MASK_PALETTE, marker="o", ax=ax, **task_band(task))
        if tables.is_mse(task):
            ax.set_yscale("log")
        if baseline_rows is not None:
            # On a log axis an exact baseline (least squares on noiseless LR) would squash the models'
            # curves into a line: it is drawn at the floor and labelled as below it.
            floor = shown["value"].min() / 30 if tables.is_mse(task) else -np.inf
            centre = task_band(task)["estimator"]
            for name, values in baseline_rows[baseline_rows["task"] == task].groupby("model"):
                curve = values.groupby(baseline_x)["value"].agg(centre) if baseline_x else centre(values["value"])
                below = np.all(np.asarray(curve) < floor)
                style = dict(color="k", linewidth=0.9, linestyle=BASELINE_STYLE[name],
                             label=f"{BASELINE_LABELS[name]} (< {floor:.0e})" if below else BASELINE_LABELS[name])
                if baseline_x:
                    ax.plot(curve.index, np.maximum(curve.values, floor), **style)
                else:
                    ax.axhline(max(curve, floor), **style)
            ax.legend(fontsize=6)
        if references and task in references and shown[x].min() <= references[task] <= shown[x].max():
            ax.axvline(references[task], **REFERENCE)
            ax.text(references[task], ax.get_ylim()[1], " paper: largest gap", fontsize=7, color="0.35", va="top")
        ax.set(title=task.upper(), xlabel=xlabel, ylabel="test query MSE" if tables.is_mse(task) else "test error %")
    fig.suptitle(title)
    save(fig, pdf_path, caption)


def _baselines(frame):
    """Each baseline's full-prompt test error per task and seed."""
    errors = tables.final_errors(frame)
    return errors[errors["model"].isin(list(BASELINE_LABELS))]


@figure("fig3_probe_layers")
def fig3_probe_layers(frames, configs, pdf_path):
    frame = frames["table1"]
    rows = frame[
        (frame["split"] == "test") & frame["shared"] & frame["l2"] & ~frame["permute"] & (frame["x_shift"] == 0)
        & (frame["metric"] == "probe_" + frame["task"].map(tables.headline_metric))
    ].assign(layers="SL")
    caption = (
        "Linear probe on each layer's hidden state (trained on stop-gradient states), SL models with L2, full prompt; "
        f"black: least squares, ridge and online GD on the same prompts. {BAND_NOTE}\n" + tables.scale_note(configs)
    )
    _task_grid(rows, "layer", pdf_path, "Fig. 3: probe error per layer", "layer", caption, baseline_rows=_baselines(frame))


@figure("fig6_train_size")
def fig6_train_size(frames, configs, pdf_path):
    rows = _trained(tables.final_errors(frames["fig6"]))
    caption = (
        "Test error against the size of the fixed training set (batches of the training batch size); the training sets "
        f"are nested. Grey: where the paper's gap is largest; black: baselines on the same prompts. {BAND_NOTE}\n"
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
    baseline_rows = errors[errors["model"].isin(list(BASELINE_LABELS))]
    caption = (
        f"Table 1's models (trained on x ~ U(-1, 1)^d) tested on x shifted by mu_x, full prompt. {BAND_NOTE} Black: "
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
            shown = test[(test["task"] == task) & (test["layers"] == layers)]
            sns.lineplot(shown, x="n_context", y="value", hue="mask", style="trained_with", palette=MASK_PALETTE,
                         marker="o", markersize=4, ax=ax, legend=row == column == 0, **task_band(task))
            if tables.is_mse(task):
                ax.set_yscale("log")
            for trained in sorted(shown["train_n_context"].unique())[:-1]:
                ax.axvline(trained, **REFERENCE)
            ax.set(title=f"{task.upper()}, {layers}", xlabel="ICEs at test", ylabel="test query MSE" if tables.is_mse(task) else "test error %")
    caption = (
        "Models trained with all ICEs of the prompt visible, or with only the first few (grey line), tested with 1 to all ICEs "
        f"visible: left of the line fewer ICEs than in training, right of it more. {BAND_NOTE}\n" + tables.scale_note(configs)
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
        shown = models[models["task"] == task]
        sns.pointplot(shown, x="size", y="value", hue="model", palette=palette, order=order,
                      hue_order=[h for h in palette if h in set(shown["model"])], linestyles="none", dodge=0.5, ax=top, **task_band(task))
        if tables.is_mse(task):
            top.set_yscale("log")
        top.set(title=task.upper(), xlabel="", ylabel="test query MSE" if tables.is_mse(task) else "test error %")
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
        f"Top: test error of prefix and causal models of each size, SL and UL. {BAND_NOTE} "
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
    sns.lineplot(trained, x="n_layers", y="value", hue="mask", palette=MASK_PALETTE, marker="o", ax=ax, **MSE_BAND)
    ax.set_yscale("log")
    centre = MSE_BAND["estimator"]
    for rows, dashes, label in ((at_eta, (4, 2), f"constructed, eta = {paper_eta:g}"), (best, (1, 1.5), "constructed, best eta")):
        for mask, curve in rows.groupby("mask"):
            mean = curve.groupby("n_layers")["value"].agg(centre)
            ax.plot(mean.index, mean.values, color=MASK_PALETTE[mask], dashes=dashes, linewidth=1.2, label=f"{mask} {label}")
    floor = min(trained["value"].min(), constructed["value"].min()) / 30  # exact least squares would squash the curves
    for name, rows in _baselines(frame).groupby("model"):
        level = centre(rows["value"])
        label = BASELINE_LABELS[name] + (f" (< {floor:.0e})" if level < floor else "")
        ax.axhline(max(level, floor), color="k", linewidth=0.9, linestyle=BASELINE_STYLE[name], label=label)
    ax.set_xticks(depths, labels=[str(d) for d in depths])
    ax.set(xlabel="layers", ylabel="test query MSE", title="Trained linear self-attention against the constructed LSA (LR)")
    ax.legend(fontsize=6, ncol=2)
    caption = (
        "Solid: trained LSA (no softmax, no MLP), geometric mean and 95% t-interval on log errors over seeds. Dashed: the constructed LSA of Sec. 4 "
        f"with the same number of layers on the same test prompts, at the paper's step eta = {paper_eta:g}; dotted: at the best "
        "step of the theory's eta grid for each depth. Black: the constructed LSA's limits, least squares (prefixLM) and online "
        "GD (causalLM), and ridge. All lines: geometric means over seeds.\n" + tables.scale_note(configs)
    )
    save(fig, pdf_path, caption)


@figure("ext_real_data")
def ext_real_data(frames, configs, pdf_path):
    frame = frames["real"]
    test = tables.read_out_errors(frame)
    test = test.assign(accuracy=100.0 - test["value"])
    sets = [s for s in TEST_SET_TITLES if s in set(test["test_set"])]
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.8), squeeze=False, sharey=True)
    for ax, test_set in zip(axes[0], sets):
        shown = test[test["test_set"] == test_set]
        sns.lineplot(_trained(shown), x="n_context", y="accuracy", hue="mask", style="layers", palette=MASK_PALETTE,
                     marker="o", markersize=4, ax=ax, legend=ax is axes[0][0], **PCT_BAND)
        for name, rows in shown[shown["model"].isin(list(BASELINE_LABELS))].groupby("model"):
            curve = rows.groupby("n_context")["accuracy"].mean()
            ax.plot(curve.index, curve.values, color="k", linewidth=0.9, linestyle=BASELINE_STYLE[name], label=BASELINE_LABELS[name])
        ax.axhline(50.0, **REFERENCE)
        ax.set(title=TEST_SET_TITLES[test_set], xlabel="ICEs", ylabel="query accuracy %")
    axes[0][0].legend(fontsize=6)
    for ax in axes[0][1:]:
        ax.legend().remove()
    caption = (
        "Two-way in-context classification on scikit-learn's real datasets: every episode picks two classes, projects x "
        "to the model's input size with a fresh random matrix and permutes the labels. Trained on episodes of digits 0-6 "
        "and breast cancer; tested on their held-out samples, on digits 7-9, and on iris and wine, never seen in "
        "training. Accuracy against the number of ICEs the queries see (mean and 95% t-interval over seeds); black: "
        "classical learners fitted to the same ICEs; grey: chance.\n" + tables.scale_note(configs)
    )
    save(fig, pdf_path, caption)


# --- the language-model study ---

LM_STYLE = {
    "causal": dict(color="#d62728", linestyle="-", marker="o"),
    "prefix": dict(color="#1f77b4", linestyle="-", marker="s"),
    "prefix, read causally": dict(color="#1f77b4", linestyle="--", marker="s", markerfacecolor="none"),
    "prefix_full": dict(color="#2ca02c", linestyle="-", marker="^"),
    "prefix_full, read causally": dict(color="#2ca02c", linestyle="--", marker="^", markerfacecolor="none"),
}


def _lm_panels(frame):
    splits = [s for s in ("in_distribution", "out_of_distribution") if s in set(frame["split"])]
    lengths = sorted(set(frame["example_length"]))
    fig, axes = plt.subplots(len(splits), len(lengths), figsize=(3.4 * len(lengths) + 0.6, 3.0 * len(splits)), squeeze=False)
    return fig, axes, splits, lengths


@figure("ext_lm_icl")
def ext_lm_icl(frames, configs, pdf_path):
    frame = frames["lm"]
    accuracy = tables.lm_accuracy(frame)
    largest = accuracy["parameters"].max()
    accuracy = accuracy[accuracy["parameters"] == largest]
    bayes = tables.lm_reference(frame, "bayes")
    chance = 100 / tables.lm_vocabulary(configs)
    fig, axes, splits, lengths = _lm_panels(accuracy)
    ks = sorted(set(accuracy["k"]))
    for row, split in enumerate(splits):
        for column, length in enumerate(lengths):
            ax = axes[row][column]
            shown = accuracy[(accuracy["split"] == split) & (accuracy["example_length"] == length)]
            for reads, style in LM_STYLE.items():
                rows = shown[shown["reads"] == reads]
                if not len(rows):
                    continue
                summary = np.array([stats.summarise(rows[rows["k"] == k]["value"], log=False) for k in ks])
                positions = np.arange(len(ks))
                ax.plot(positions, summary[:, 0], label=reads, markersize=4, **style)
                if np.isfinite(summary[:, 1]).all():
                    ax.fill_between(positions, summary[:, 1], summary[:, 2], color=style["color"], alpha=0.12, linewidth=0)
            ax.plot(np.arange(len(ks)), [bayes.get((split, length, k), np.nan) for k in ks], color="0.3", linewidth=1.2, label="Bayes-optimal")
            ax.axhline(chance, **REFERENCE, label="chance")
            ax.set_xticks(np.arange(len(ks)), labels=[str(k) for k in ks])
            ax.set(title=f"{split.replace('_', ' ')}, L = {length}", xlabel="examples k", ylabel="accuracy %", ylim=(0, 102))
    axes[0][0].legend(fontsize=6, loc="lower right")
    size = accuracy.iloc[0]
    caption = (
        f"Few-shot accuracy of the {size['n_layers']}x{size['width']} models ({largest:,} parameters) against the number of "
        "examples k, per pretraining objective; a prefix model reads the whole prompt as its prefix (solid) or causally (dashed). "
        "Rows: prompts from the pretraining concepts (top) and from held-out concepts (bottom); columns: example length L. "
        "Dark grey: exact Bayes-optimal accuracy on the same prompts (out of distribution, of a predictor that knows the held-out "
        "concepts); dotted: chance. Line and band: mean and 95% t-interval over seeds.\n" + tables.lm_note(configs)
    )
    save(fig, pdf_path, caption)


@figure("ext_lm_size")
def ext_lm_size(frames, configs, pdf_path):
    differences = tables.lm_paired(frames["lm"])
    differences = differences[differences["comparison"].isin(["prefix - causal", "prefix_full - causal"])]
    shown_k = [k for k in tables.LM_TABLE_K if k in set(differences["k"])] or sorted(set(differences["k"]))
    palette = dict(zip(shown_k, ["#7f7f7f", "#9467bd", "#8c564b", "#e377c2"]))
    fig, axes, splits, lengths = _lm_panels(differences)
    for row, split in enumerate(splits):
        for column, length in enumerate(lengths):
            ax = axes[row][column]
            ax.axhline(0.0, **REFERENCE)
            for k in shown_k:
                for comparison, style in (("prefix - causal", dict(marker="o", linestyle="-")),
                                          ("prefix_full - causal", dict(marker="^", linestyle="--", markerfacecolor="none"))):
                    rows = differences[(differences["split"] == split) & (differences["example_length"] == length)
                                       & (differences["k"] == k) & (differences["comparison"] == comparison)].sort_values("parameters")
                    if not len(rows):
                        continue
                    error = [rows["difference"] - rows["ci_low"], rows["ci_high"] - rows["difference"]]
                    ax.errorbar(rows["parameters"], rows["difference"], yerr=np.nan_to_num(np.array(error, dtype=float)), capsize=3,
                                color=palette[k], label=f"{comparison}, k = {k}", markersize=4, **style)
            ax.set_xscale("log")
            sizes = differences.drop_duplicates("parameters").sort_values("parameters")
            ax.set_xticks(sizes["parameters"], labels=[f"{r.n_layers}x{r.width}\n{r.parameters / 1e3:.0f}k" for r in sizes.itertuples()])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set(title=f"{split.replace('_', ' ')}, L = {length}", xlabel="model (layers x width, parameters)", ylabel="accuracy difference (points)")
    axes[0][0].legend(fontsize=6)
    caption = (
        "Paired accuracy difference against model size at k examples: prefix minus causal (solid) and prefix_full minus causal "
        "(dashed), prefix models reading the prompt as their prefix; above 0, the prefix objective is better. Points: mean of the "
        "per-seed differences (same initial weights and training windows); bars: 95% t-interval.\n" + tables.lm_note(configs)
    )
    save(fig, pdf_path, caption)


def draw(name: str, frames: dict, configs: dict, pdf_path) -> None:
    """Draw artifact `name` from metrics tables (`frames`) and their stored configs, by table name."""
    if name not in FIGURES:
        raise ValueError(f"no figure named {name!r}; choose one of {', '.join(FIGURES)}")
    FIGURES[name](frames, configs, pdf_path)
