"""PNG charts for the staff pages: a training run's loss curves, the metrics of model versions, a run's
set measured as served, the online rates per day and an experiment's rates per variant.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot: pyplot keeps global state
and picks a GUI backend, neither of which belongs in a web process serving concurrent requests.
``Figure.savefig`` renders PNG with the Agg backend, which needs no display.
"""
import datetime as dt
from io import BytesIO

from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ml.models import algorithm_label

TRAIN_COLOUR, VALIDATION_COLOUR, LR_COLOUR, BEST_COLOUR = "#2563eb", "#ea580c", "#64748b", "#15803d"
ALGORITHM_COLOURS = ("#2563eb", "#ea580c", "#15803d", "#9333ea", "#db2777", "#0891b2")
# Served beside its floor (popularity) and, on a demo world, its ceiling (the oracle).
SERVED_RANKINGS = (("metrics", "served", "#2563eb"), ("popularity", "popularity", "#94a3b8"),
                   ("oracle", "oracle", "#15803d"))
# The held-out metrics charted, each in a panel of its own scale; novelty (in bits) stays in the table.
CHARTED_METRICS = ["ndcg", "recall", "mutual", "precision", "map", "hit", "mrr", "coverage", "diversity", "gini"]
METRIC_TITLES = {"ndcg": "NDCG@10", "recall": "recall@10", "mutual": "mutual matches@10", "precision": "precision@10",
                 "map": "MAP@10", "hit": "hit rate@10", "mrr": "MRR@10", "coverage": "coverage",
                 "diversity": "diversity", "gini": "exposure Gini (lower: more even)"}
# The online rates plotted over time, each in its own panel: a conversion rate is a tenth of a click rate, and
# on one axis its changes would be invisible.
ONLINE_RATES = (("click_rate", "click rate"), ("positive_rate", "positive rate"),
                ("conversion_rate", "conversion rate"))
CONTROL_COLOUR, OUTSIDE_COLOUR = "#475569", "#a8b3c2"
# How recommendations.online and recommendations.experiments name the groups the plots colour apart (plots stay
# free of the models: they draw dicts).
NO_VARIANT, CONTROL = "none", "control"
VARIANT_COLOURS = ("#2563eb", "#ea580c", "#15803d", "#9333ea", "#db2777", "#0891b2", "#ca8a04")


def loss_curves_png(curves: dict[str, dict]) -> bytes:
    return _png(loss_curves_figure(curves))


def loss_curves_figure(curves: dict[str, dict]) -> Figure:
    """One panel per fit of its train and validation loss per epoch, the learning rate each epoch trained at
    (grey steps, right axis) and the best epoch (the one whose weights the fit kept) marked.

    ``curves`` maps a panel's title to ``{"train_loss": [...], "val_loss": [...], "lr": [...], "best_epoch"}``
    (a run's progress, ml.progress.loss_fits; lr and best_epoch may be missing in older runs).
    """
    columns = 2 if len(curves) > 1 else 1
    rows = -(-len(curves) // columns)
    figure = Figure(figsize=(6.4 * columns, 3.3 * rows), dpi=100, layout="constrained")
    panels = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, (title, losses) in zip(panels, curves.items(), strict=False):
        for key, label, colour in (("train_loss", "train", TRAIN_COLOUR),
                                   ("val_loss", "validation", VALIDATION_COLOUR)):
            points = [(epoch, loss) for epoch, loss in enumerate(losses.get(key) or [], start=1) if loss is not None]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label, color=colour)
        best = losses.get("best_epoch")
        validation = losses.get("val_loss") or []
        if best and best <= len(validation) and validation[best - 1] is not None:
            axes.axvline(best, color=BEST_COLOUR, linestyle=":", linewidth=1.2)
            axes.annotate(f"best epoch {best}\n{validation[best - 1]:.4f}", (best, validation[best - 1]),
                          xytext=(6, 10), textcoords="offset points", fontsize=8, color=BEST_COLOUR)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("loss")
        axes.grid(alpha=0.3)
        rates = [(epoch, lr) for epoch, lr in enumerate(losses.get("lr") or [], start=1) if lr]
        handles, labels = axes.get_legend_handles_labels()
        if rates:
            rate_axes = axes.twinx()
            line, = rate_axes.step(*zip(*rates, strict=True), where="mid", color=LR_COLOUR, linewidth=1.2,
                                   linestyle="--", label="learning rate")
            values = {lr for _, lr in rates}
            if max(values) > min(values) * 1.01:
                rate_axes.set_yscale("log")
            else:  # a constant rate: one tick, its value, and the line at mid-height
                rate_axes.set_ylim(0, 2 * max(values))
                rate_axes.set_yticks([max(values)])
            rate_axes.set_ylabel("learning rate", color=LR_COLOUR, fontsize=8)
            rate_axes.tick_params(axis="y", labelsize=7, colors=LR_COLOUR)
            handles, labels = [*handles, line], [*labels, "learning rate"]
        axes.legend(handles, labels, fontsize="small", loc="upper right")
    for axes in panels[len(curves):]:
        axes.set_visible(False)
    return figure


def metrics_png(versions: list[tuple[str, int, dict]], highlight: tuple[str, int] | None = None) -> bytes:
    return _png(metrics_figure(versions, highlight))


def metrics_figure(versions: list[tuple[str, int, dict]], highlight: tuple[str, int] | None = None) -> Figure:
    """One panel per held-out metric, each scaled to its own values: a bar per version, coloured by algorithm,
    its value written beside it (NDCG of 0.12 and 0.13 read apart, where one 0-1 axis for every metric
    would squash them). ``highlight`` (algorithm, version) is drawn darker and named in bold.

    ``versions`` holds ``(algorithm, version, metrics)``, in the order the bars should appear (top first).
    """
    names = [m for m in CHARTED_METRICS if any(_number(metrics.get(m)) is not None for *_, metrics in versions)]
    columns = min(len(names), 3) or 1
    rows = -(-len(names) // columns) or 1
    height = 0.22 * len(versions) + 0.9
    figure = Figure(figsize=(3.4 * columns + 1.5, height * rows + 0.3), dpi=100, layout="constrained")
    panels = figure.subplots(rows, columns, squeeze=False)
    colours = {algorithm: ALGORITHM_COLOURS[n % len(ALGORITHM_COLOURS)]
               for n, algorithm in enumerate(dict.fromkeys(a for a, *_ in versions))}
    labels = [f"{algorithm_label(algorithm)} v{version}" for algorithm, version, _ in versions]
    positions = list(range(len(versions)))[::-1]  # the first version on top
    for index, axes in enumerate(panels.ravel()):
        if index >= len(names):
            axes.set_visible(False)
            continue
        name = names[index]
        values = [_number(metrics.get(name)) for *_, metrics in versions]
        shown = [v for v in values if v is not None]
        top = max(shown, default=0.0) or 1.0
        bar_colours = [colours[algorithm] for algorithm, *_ in versions]
        alphas = [1.0 if highlight in (None, (a, v)) else 0.45 for a, v, _ in versions]
        bars = axes.barh(positions, [v or 0.0 for v in values], color=bar_colours, height=0.7)
        for bar, alpha in zip(bars, alphas, strict=True):
            bar.set_alpha(alpha)
        axes.bar_label(bars, labels=["—" if v is None else f"{v:.3f}" for v in values], padding=2, fontsize=8)
        axes.set_xlim(0, top * 1.3)  # room for the values written beside the bars
        axes.set_title(METRIC_TITLES.get(name, name), fontsize=10)
        axes.grid(axis="x", alpha=0.3)
        axes.tick_params(axis="x", labelsize=7)
        axes.set_yticks(positions, labels if index % columns == 0 else [""] * len(labels), fontsize=8)
        if highlight is not None and index % columns == 0:
            for tick, (algorithm, version, _) in zip(axes.get_yticklabels(), versions, strict=True):
                if (algorithm, version) == highlight:
                    tick.set_fontweight("bold")
    figure.suptitle("Held-out metrics @10 of each version served alone (each panel on its own scale)", fontsize=10)
    return figure


def served_png(served: dict) -> bytes:
    return _png(served_figure(served))


def served_figure(served: dict) -> Figure:
    """NDCG@10 of the served ranking, popularity and the oracle side by side: one panel for all users and
    each role, one for each segment (cold, light, heavy), every group labelled with its users.

    ``served`` is a run's served evaluation (``TrainingRun.served``); a ranking that is null (no oracle off
    the demo world) or a group without users has no bar.
    """
    figure = Figure(figsize=(11, 3.6), dpi=100, layout="constrained")
    by_role, by_segment = figure.subplots(1, 2, width_ratios=[4, 3])
    _served_panel(by_role, served, [("all", "all")] + [("by_role", r) for r in served["metrics"].get("by_role", {})],
                  "by role")
    _served_panel(by_segment, served, [("by_segment", s) for s in served["metrics"].get("by_segment", {})],
                  "by segment")
    return figure


def _served_panel(axes, served: dict, groups: list[tuple[str, str]], title: str) -> None:
    """Grouped bars on ``axes``: for each (part, name) of ``groups``, each ranking's NDCG@10 in that group."""
    rankings = [(key, label, colour) for key, label, colour in SERVED_RANKINGS if served.get(key)]
    width = 0.8 / len(rankings)
    for n, (key, label, colour) in enumerate(rankings):
        heights = [_ndcg(served[key], part, name) for part, name in groups]
        bars = axes.bar([i + n * width for i in range(len(groups))], [h or 0.0 for h in heights], width,
                        label=label, color=colour)
        axes.bar_label(bars, labels=["" if h is None else f"{h:.3f}" for h in heights], fontsize=7, padding=1)
    users = [_group(served["metrics"], part, name).get("users", 0) for part, name in groups]
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))],
                    [f"{name}\n{count} users" for (_, name), count in zip(groups, users, strict=True)])
    axes.set_title(f"NDCG@10 as served, {title}")
    axes.grid(axis="y", alpha=0.3)
    tallest = max((_ndcg(served[key], part, name) or 0.0 for key, *_ in rankings for part, name in groups),
                  default=0.0)
    axes.set_ylim(0, (tallest or 1.0) * 1.25)  # scaled to the bars, with room for their values and the legend
    axes.legend(fontsize="small", loc="upper left", ncols=len(rankings))


def online_rates_png(groups: list[dict]) -> bytes:
    """One panel per rate of ONLINE_RATES: a line per variant over the days, its 95% interval a shaded band.

    ``groups`` are online metrics grouped by day and variant (``recommendations.online.online_metrics``
    with ``group_by=["day", "variant"]``); a day a variant showed nothing has no point.
    """
    by_variant: dict[str, list[dict]] = {}
    for group in sorted(groups, key=lambda g: g["keys"]["day"]):
        by_variant.setdefault(group["keys"]["variant"], []).append(group)
    colours = _variant_colours(sorted(by_variant))
    figure = Figure(figsize=(11, 8.4), dpi=100, layout="constrained")
    panels = figure.subplots(len(ONLINE_RATES), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (rate, label) in zip(panels, ONLINE_RATES, strict=True):
        for variant, rows in sorted(by_variant.items()):
            days = [dt.date.fromisoformat(row["keys"]["day"]) for row in rows]
            low, high = zip(*(row["intervals"][rate] for row in rows), strict=True)
            axes.fill_between(days, low, high, color=colours[variant], alpha=0.15, linewidth=0)
            axes.plot(days, [row[rate] for row in rows], marker="o", markersize=3, color=colours[variant],
                      label="outside experiments" if variant == NO_VARIANT else variant)
        axes.set_title(f"{label} per day (per item shown), 95% interval shaded", fontsize=11)
        axes.set_ylim(bottom=0)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        axes.grid(alpha=0.3)
    # A day's label says its month: a 30-day window spans two, and "05" alone would not say which.
    panels[-1].xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=12))
    panels[-1].xaxis.set_major_formatter(DateFormatter("%d %b"))
    if len({row["keys"]["day"] for row in groups}) == 1:  # one day: a day either side, not hours around it
        day = dt.date.fromisoformat(groups[0]["keys"]["day"])
        panels[-1].set_xlim(day - dt.timedelta(days=1), day + dt.timedelta(days=1))
    # Above the panels, in a row: variant names are long, and a legend beside them would narrow every panel.
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside upper center", ncols=min(4, len(by_variant)),
                  fontsize="small", frameon=False)
    return _png(figure)


def _variant_colours(variants: list[str]) -> dict[str, str]:
    """Answers outside experiments light grey, an experiment's control as the experiment plot draws it, each
    other variant its own colour."""
    colours, others = {}, iter(VARIANT_COLOURS * len(variants))
    for variant in variants:
        if variant == NO_VARIANT:
            colours[variant] = OUTSIDE_COLOUR
        elif variant.endswith(f"/{CONTROL}"):
            colours[variant] = CONTROL_COLOUR
        else:
            colours[variant] = next(others)
    return colours


def experiment_png(results: dict) -> bytes:
    """Each variant's primary rate (the experiment's metric) with its 95% interval as error bars, control
    first, its rate a dashed line across; every point labelled with its value and users.

    ``results`` is ``recommendations.experiments.experiment_results``' answer; a variant without a rate
    yet (no items shown) has no point.
    """
    metric = results["experiment"]["metric"]
    arms = [(results["control"], CONTROL_COLOUR)] + [
        (variant, VARIANT_COLOURS[n % len(VARIANT_COLOURS)]) for n, variant in enumerate(results["variants"])]
    figure = Figure(figsize=(8, 3.8), dpi=100, layout="constrained")
    axes = figure.subplots()
    for x, (arm, colour) in enumerate(arms):
        value, interval = arm["rates"].get(metric), arm["intervals"].get(metric)
        if value is None:
            axes.annotate("no items shown yet", (x, 0), xytext=(0, 12), textcoords="offset points", ha="center",
                          fontsize=9, color=CONTROL_COLOUR)
            continue
        low, high = interval if interval else (value, value)
        axes.errorbar([x], [value], yerr=[[value - low], [high - value]], fmt="o", color=colour, capsize=8,
                      markersize=7, elinewidth=2)
        axes.annotate(f"{value:.2%}", (x, value), xytext=(12, 0), textcoords="offset points", va="center",
                      fontsize=9)
    control_rate = results["control"]["rates"].get(metric)
    if control_rate is not None:
        axes.axhline(control_rate, color=CONTROL_COLOUR, linestyle="--", linewidth=1, alpha=0.7)
    axes.set_xticks(range(len(arms)), [f"{arm['name']}\n{arm['users']} users" for arm, _ in arms])
    axes.set_xlim(-0.5, len(arms) - 0.5)
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    axes.set_title(f"{metric.replace('_', ' ')} by variant, 95% interval (dashed: the control's rate)", fontsize=11)
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def _group(metrics: dict, part: str, name: str) -> dict:
    return metrics["all"] if part == "all" else metrics.get(part, {}).get(name, {})


def _ndcg(metrics: dict, part: str, name: str) -> float | None:
    return _number(_group(metrics, part, name).get("ndcg"))


def _number(value) -> float | None:
    # Metrics are JSON written by the trainer; an "error" entry or a missing metric is not a bar.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _png(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
