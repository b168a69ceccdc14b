"""``{% what_if_table what_if %}``: proposed weights beside those in force, measured as served on the latest
held-out split (``ml.evaluation.evaluate_weights``), as one table shared by the staff weights trial and the
admin weights form. ``what_if`` is :func:`what_if` 's answer."""
import time
from dataclasses import dataclass

from django import template

from ml import evaluation
from recsys_site.exceptions import DomainError

register = template.Library()

# The metrics of M worth choosing weights by, in the order the table shows them.
METRICS = (("ndcg", "NDCG@10"), ("recall", "Recall@10"), ("coverage", "Coverage"), ("diversity", "Diversity"))


@dataclass
class Cell:
    proposed: float | None
    current: float | None
    change: float | None  # relative: 0.12 is +12%; None where in force is 0 or either is unmeasured


@dataclass
class Row:
    group: str
    kind: str  # "all", "role" or "segment": the table's sections
    users: int
    cells: list[Cell]  # in METRICS order


def what_if(weights: dict[str, float]) -> dict:
    """{"measured": {"proposed": M, "current": M} | None, "error": "", "seconds"}: a refusal (no held-out
    split yet, weights the registry refuses) is the error to show, never a 500."""
    started = time.perf_counter()
    try:
        measured = evaluation.evaluate_weights(weights)
    except DomainError as exc:
        return {"measured": None, "error": exc.detail, "seconds": None}
    return {"measured": measured, "error": "", "seconds": round(time.perf_counter() - started, 2)}


def what_if_rows(measured: dict) -> list[Row]:
    """All users, then each role, then each segment: each metric proposed, in force and the change."""
    proposed, current = measured["proposed"], measured["current"]
    groups = [("all users", "all", proposed["all"], current["all"])]
    groups += [(role, "role", group, current["by_role"].get(role, {})) for role, group in proposed["by_role"].items()]
    groups += [(segment, "segment", group, current["by_segment"].get(segment, {}))
               for segment, group in proposed["by_segment"].items()]
    return [Row(label, kind, new.get("users", 0), [_cell(new.get(name), old.get(name)) for name, _ in METRICS])
            for label, kind, new, old in groups]


def _cell(proposed: float | None, current: float | None) -> Cell:
    change = None if proposed is None or not current else (proposed - current) / current
    return Cell(proposed, current, change)


@register.inclusion_tag("ml/_what_if.html")
def what_if_table(what_if: dict | None) -> dict:
    if not what_if:
        return {"shown": False}
    measured = what_if["measured"]
    return {"shown": True, "error": what_if["error"], "seconds": what_if["seconds"], "metrics": METRICS,
            "columns": 2 + 3 * len(METRICS), "rows": what_if_rows(measured) if measured else []}


@register.filter
def percent_change(change: float | None) -> str:
    """+12%, −3%, ±0% (rounded to whole percent; tenths below 1%), or — where there is no change to give."""
    if change is None:
        return "—"
    percent = change * 100
    if round(percent, 1) == 0:
        return "±0%"
    text = f"{abs(percent):.0f}" if abs(percent) >= 1 else f"{abs(percent):.1f}"
    return f"{'+' if percent > 0 else '−'}{text}%"
