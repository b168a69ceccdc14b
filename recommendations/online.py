"""Online metrics: what the answers showed and what their users did with it, counted in SQL.

Definitions (GET /api/v1/metrics/online; the staff page plots them):

* impressions: answers of POST /recommendations made in [since, until) (an Impression each).
* items_shown: the items those answers showed (the sum of their lengths). At rank r, the impressions that
  showed at least r items: each showed one item at that rank.
* clicks, positives, conversions, dismissals: distinct (impression, item) pairs with at least one attributed
  event of that outcome (profiles.models.OUTCOME_OF_KIND), however many events the pair had. A positive or
  a conversion is also a click: someone who liked or applied to an item opened it, whether or not a view
  was recorded. Positives, conversions and dismissals count only their own outcome.
* *_rate: the count per item shown; "intervals" gives each rate's 95% Wilson interval (items as trials:
  a description of the traffic, not a test between groups; recommendations.experiments tests those with
  the user as the unit).

Dimensions (``group_by``): day (the impression's UTC date), variant ("<experiment>/<variant>", "none"
outside experiments), role (the role the user was recommended as) and rank (the item's 1-based position,
stored on the interaction at attribution). Events count with the impression they answer, on its day.

An item's rank is not looked up in the impression's JSON at query time but stored on the interaction; the
number of items an impression showed is read with the databases' own JSON array length (SQLite
json_array_length, PostgreSQL jsonb_array_length): it needs no column kept in step with ``items`` by
every writer, and costs one function call per impression row inside the aggregate.
"""
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.db.models import CharField, Count, F, Func, IntegerField, Q, Sum, Value
from django.db.models.functions import Cast, Concat, TruncDate

from profiles.models import Interaction, Outcome

from .models import Impression
from .stats import wilson_interval

DIMENSIONS = ("day", "variant", "role", "rank")
NO_EXPERIMENT = "none"
# Count -> the outcomes that make a pair count (a positive or conversion is also a click).
COUNTED = {
    "clicks": (Outcome.CLICK, Outcome.POSITIVE, Outcome.CONVERSION),
    "positives": (Outcome.POSITIVE,),
    "conversions": (Outcome.CONVERSION,),
    "dismissals": (Outcome.DISMISSAL,),
}
RATE_OF = {"clicks": "click_rate", "positives": "positive_rate", "conversions": "conversion_rate",
           "dismissals": "dismissal_rate"}
RATES = tuple(RATE_OF.values())


class JSONArrayLength(Func):
    """The length of a JSON array column, on SQLite and PostgreSQL (Django has no portable one)."""

    function = "JSON_ARRAY_LENGTH"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="JSONB_ARRAY_LENGTH", **extra)


def items_count():
    return JSONArrayLength("items")


def shown_pair():
    """One value per (impression, item shown): the impression and the item's rank in it."""
    return Concat(Cast("impression_id", CharField()), Value(":"), Cast("rank", CharField()),
                  output_field=CharField())


def pair_counts() -> dict:
    """COUNT(DISTINCT pair) for each of COUNTED, over interactions."""
    return {name: Count(shown_pair(), distinct=True, filter=Q(outcome__in=outcomes))
            for name, outcomes in COUNTED.items()}


def online_metrics(*, since: dt.datetime, until: dt.datetime, group_by: Sequence[str],
                   experiment_id: int | None = None) -> list[dict]:
    """The groups of impressions made in [since, until) by ``group_by`` (DIMENSIONS), in key order; only
    those of ``experiment_id`` when given. Two aggregate queries: one over impressions, one over events."""
    unknown = [name for name in group_by if name not in DIMENSIONS]
    if unknown or not group_by:
        raise ValueError(f"group_by must name some of {DIMENSIONS}, got {list(group_by)}")
    impressions = Impression.objects.filter(created_at__gte=since, created_at__lt=until)
    events = Interaction.objects.filter(impression__created_at__gte=since, impression__created_at__lt=until,
                                        outcome__gt="")
    if experiment_id is not None:
        impressions = impressions.filter(experiment_id=experiment_id)
        events = events.filter(impression__experiment_id=experiment_id)

    shown: dict[tuple, dict[str, int]] = {}
    by_rank = "rank" in group_by
    impression_dims = _dimensions(group_by, prefix="", rank=F("shown_items"))
    # values(**dims) names its keys at run time: the plugin sees the annotations' only (a TypedDict of two)
    grouped = cast(Iterable[dict[str, Any]], impressions.annotate(shown_items=items_count()).values(
        **impression_dims).annotate(impressions=Count("id"), items_shown=Sum("shown_items")).order_by())
    for row in grouped:
        if by_rank:  # a group of impressions that showed ``size`` items: one shown at each rank up to it
            size = row.pop("item_rank") or 0
            for rank in range(1, size + 1):
                _add(shown, _key(group_by, {**row, "item_rank": rank}), impressions=row["impressions"],
                     items_shown=row["impressions"])
        else:
            _add(shown, _key(group_by, row), impressions=row["impressions"], items_shown=row["items_shown"] or 0)

    acted: dict[tuple, dict[str, int]] = {}
    event_dims = _dimensions(group_by, prefix="impression__", rank=F("rank"))
    for row in cast(Iterable[dict[str, Any]], events.values(**event_dims).annotate(**pair_counts()).order_by()):
        _add(acted, _key(group_by, row), **{name: row[name] for name in COUNTED})
    return [_group(group_by, key, shown[key], acted.get(key, {})) for key in sorted(shown)]


def _dimensions(group_by: Iterable[str], *, prefix: str, rank) -> dict:
    """Expressions for values(**...): the columns each dimension groups by, on impressions (prefix "") or
    on interactions (prefix "impression__")."""
    columns: dict = {}
    for name in group_by:
        if name == "day":
            columns["day"] = TruncDate(f"{prefix}created_at", tzinfo=dt.UTC)
        elif name == "variant":
            columns["experiment_name"] = F(f"{prefix}experiment__name")
            columns["variant_name"] = F(f"{prefix}variant")
        elif name == "role":
            columns["role"] = F(f"{prefix}user_type")
        elif name == "rank":  # "item_rank": "rank" is an interaction's own field
            columns["item_rank"] = rank
    return columns


def _key(group_by: Sequence[str], row: dict) -> tuple:
    values = []
    for name in group_by:
        if name == "day":
            day = row["day"]
            values.append(day.isoformat() if isinstance(day, dt.date) else str(day))
        elif name == "variant":
            experiment = row["experiment_name"]
            values.append(NO_EXPERIMENT if experiment is None else f"{experiment}/{row['variant_name']}")
        elif name == "role":
            values.append(row["role"])
        else:
            values.append(row["item_rank"])
    return tuple(values)


def _add(into: dict[tuple, dict[str, int]], key: tuple, **counts: int) -> None:
    totals = into.setdefault(key, {})
    for name, value in counts.items():
        totals[name] = totals.get(name, 0) + value


def _group(group_by: Sequence[str], key: tuple, shown: dict[str, int], acted: dict[str, int]) -> dict:
    items = shown["items_shown"]
    counts = {name: acted.get(name, 0) for name in COUNTED}
    return {
        "key": " / ".join(str(value) for value in key),
        "keys": dict(zip(group_by, key, strict=True)),
        "impressions": shown["impressions"],
        "items_shown": items,
        **counts,
        **{RATE_OF[name]: (count / items if items else 0.0) for name, count in counts.items()},
        "intervals": {RATE_OF[name]: list(wilson_interval(count, items)) for name, count in counts.items()},
    }
