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

TRAIN_COLOUR, VALIDATION_COLOUR = "#2563eb", "#ea580c"
# Served beside its floor (popularity) and, on a demo world, its ceiling (the oracle).
SERVED_RANKINGS = (("metrics", "served", "#2563eb"), ("popularity", "popularity", "#94a3b8"),
                   ("oracle", "oracle", "#15803d"))
# Metrics on a 0-1 scale share one axis; novelty is in bits (often 5 or more) and would flatten the rest,
# so it stays in the table beside the chart.
CHARTED_METRICS = ["ndcg", "precision", "recall", "map", "hit", "mrr", "coverage", "diversity"]
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
    """One panel per algorithm of its train and validation loss per epoch.

    ``curves`` maps an algorithm to ``{"train_loss": [...], "val_loss": [...]}`` (a run's progress).
    """
    figure = Figure(figsize=(6.4, 3.2 * len(curves)), dpi=100, layout="constrained")
    for axes, (algorithm, losses) in zip(figure.subplots(len(curves), 1, squeeze=False)[:, 0], curves.items(),
                                         strict=True):
        for key, label, colour in (("train_loss", "train", TRAIN_COLOUR),
                                   ("val_loss", "validation", VALIDATION_COLOUR)):
            points = [(epoch, loss) for epoch, loss in enumerate(losses.get(key) or [], start=1) if loss is not None]
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label, color=colour)
        axes.set_title(f"{algorithm}: loss per epoch")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("loss")
        axes.grid(alpha=0.3)
        axes.legend()
    return _png(figure)


def metrics_png(versions: list[tuple[str, int, dict]]) -> bytes:
    """Grouped bars, one panel per algorithm: each 0-1 held-out metric for each of its versions.

    ``versions`` holds ``(algorithm, version, metrics)``, in the order the bars should appear.
    """
    by_algorithm: dict[str, list[tuple[int, dict]]] = {}
    for algorithm, version, metrics in versions:
        by_algorithm.setdefault(algorithm, []).append((version, metrics))
    figure = Figure(figsize=(11, 2.9 * len(by_algorithm)), dpi=100, layout="constrained")
    for axes, (algorithm, rows) in zip(figure.subplots(len(by_algorithm), 1, squeeze=False)[:, 0],
                                       by_algorithm.items(), strict=True):
        names = [m for m in CHARTED_METRICS if any(_number(metrics.get(m)) is not None for _, metrics in rows)]
        width = 0.8 / len(rows)
        for n, (version, metrics) in enumerate(rows):
            heights = [_number(metrics.get(name)) or 0.0 for name in names]
            axes.bar([i + n * width for i in range(len(names))], heights, width, label=f"v{version}")
        axes.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names)
        axes.set_title(f"{algorithm}: held-out metrics @10 by version")
        axes.grid(axis="y", alpha=0.3)
        axes.set_ylim(0, 1)
        axes.legend(title="version", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(figure)


def served_png(served: dict) -> bytes:
    """NDCG@10 of the served ranking, popularity and the oracle side by side: one panel for all users and
    each role, one for each segment (cold, light, heavy), every group labelled with its users.

    ``served`` is a run's served evaluation (``TrainingRun.served``); a ranking that is null (no oracle off
    the demo world) or a group without users has no bar.
    """
    figure = Figure(figsize=(11, 3.6), dpi=100, layout="constrained")
    by_role, by_segment = figure.subplots(1, 2, width_ratios=[4, 3])
    _served_panel(by_role, served, [("all", "all")] + [("by_role", r) for r in served["metrics"]["by_role"]],
                  "by role")
    _served_panel(by_segment, served, [("by_segment", s) for s in served["metrics"]["by_segment"]], "by segment")
    return _png(figure)


def _served_panel(axes, served: dict, groups: list[tuple[str, str]], title: str) -> None:
    """Grouped bars on ``axes``: for each (part, name) of ``groups``, each ranking's NDCG@10 in that group."""
    rankings = [(key, label, colour) for key, label, colour in SERVED_RANKINGS if served.get(key)]
    width = 0.8 / len(rankings)
    for n, (key, label, colour) in enumerate(rankings):
        heights = [_ndcg(served[key], part, name) for part, name in groups]
        bars = axes.bar([i + n * width for i in range(len(groups))], [h or 0.0 for h in heights], width,
                        label=label, color=colour)
        axes.bar_label(bars, labels=["" if h is None else f"{h:.2f}" for h in heights], fontsize=7, padding=1)
    users = [_group(served["metrics"], part, name).get("users", 0) for part, name in groups]
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(groups))],
                    [f"{name}\n{count} users" for (_, name), count in zip(groups, users, strict=True)])
    axes.set_title(f"NDCG@10 as served, {title}")
    axes.grid(axis="y", alpha=0.3)
    axes.set_ylim(0, 1)
    axes.legend(fontsize="small", loc="upper left")


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
    return metrics["all"] if part == "all" else metrics[part].get(name, {})


def _ndcg(metrics: dict, part: str, name: str) -> float | None:
    return _number(_group(metrics, part, name).get("ndcg"))


def _number(value) -> float | None:
    # Metrics are JSON written by the trainer; an "error" entry or a missing metric is not a bar.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _png(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
