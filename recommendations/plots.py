"""PNG charts for the staff pages: a training run's loss curves and the metrics of model versions.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot: pyplot keeps global state
and picks a GUI backend, neither of which belongs in a web process serving concurrent requests.
``Figure.savefig`` renders PNG with the Agg backend, which needs no display.
"""
from io import BytesIO

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

TRAIN_COLOUR, VALIDATION_COLOUR = "#2563eb", "#ea580c"
# Metrics on a 0-1 scale share one axis; novelty is in bits (often 5 or more) and would flatten the rest,
# so it stays in the table beside the chart.
CHARTED_METRICS = ["ndcg", "precision", "recall", "map", "hit", "mrr", "coverage", "diversity"]


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


def _number(value) -> float | None:
    # Metrics are JSON written by the trainer; an "error" entry or a missing metric is not a bar.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _png(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
