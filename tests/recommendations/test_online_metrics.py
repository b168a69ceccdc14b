"""Online metrics (recommendations.online and GET /api/v1/metrics/online) on hand-built impressions and
events whose counts and rates are known."""
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from profiles.services import interaction_record
from recommendations.models import Experiment, Impression
from recommendations.online import online_metrics
from tests.factories import DeveloperFactory, FounderFactory, PositionFactory

URL = "/api/v1/metrics/online"
DAY_ONE = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
DAY_TWO = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
SINCE, UNTIL = datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
def traffic(db):
    """Three answers and the events on them:

    day one, a developer, no experiment: p1, p2, p3 shown; p1 viewed and liked, p2 applied to, p3 dismissed
    day one, a founder, experiment "weights" variant "a": p1 shown, viewed twice
    day two, the developer, no experiment: p2, p1 shown, nothing done
    """
    p1, p2, p3 = (PositionFactory() for _ in range(3))
    developer, founder = DeveloperFactory().user, FounderFactory().user
    experiment = Experiment.objects.create(name="weights", status="running",
                                           variants=[{"name": "a", "share": 0.5, "weights": {"ease": 1.0}}])
    first = _impression(developer, "developer", DAY_ONE, [p1, p2, p3])
    shared = _impression(founder, "founder", DAY_ONE, [p1], experiment=experiment, variant="a")
    _impression(developer, "developer", DAY_TWO, [p2, p1])
    for kind, position in [("view", p1), ("like", p1), ("apply", p2), ("dismiss", p3)]:
        interaction_record(user=developer, item_type="position", item_id=position.pk, kind=kind,
                           impression_id=first.pk)
    for _ in range(2):
        interaction_record(user=founder, item_type="position", item_id=p1.pk, kind="view", impression_id=shared.pk)
    return first


def _impression(user, role, at, positions, **fields) -> Impression:
    return Impression.objects.create(user=user, user_type=role, created_at=at, fallback="none",
                                     items=[f"position:{p.pk}" for p in positions], **fields)


def _by_key(groups) -> dict:
    return {group["key"]: group for group in groups}


def _counts(group) -> tuple:
    return tuple(group[name] for name in ("impressions", "items_shown", "clicks", "positives", "conversions",
                                          "dismissals"))


def test_by_day_counts_each_clicked_pair_once_and_positives_and_conversions_as_clicks(traffic):
    groups = _by_key(online_metrics(since=SINCE, until=UNTIL, group_by=["day"]))
    assert list(groups) == ["2026-11-28", "2026-11-29"]
    day_one = groups["2026-11-28"]
    # Clicks: (first, p1) viewed and liked, (first, p2) applied to, (shared, p1) viewed twice.
    assert _counts(day_one) == (2, 4, 3, 1, 1, 1)
    assert day_one["click_rate"] == pytest.approx(3 / 4)
    assert day_one["positive_rate"] == day_one["conversion_rate"] == day_one["dismissal_rate"] == pytest.approx(1 / 4)
    assert day_one["keys"] == {"day": "2026-11-28"}
    low, high = day_one["intervals"]["click_rate"]
    assert 0 <= low < 0.75 < high <= 1
    assert _counts(groups["2026-11-29"]) == (1, 2, 0, 0, 0, 0)
    assert groups["2026-11-29"]["click_rate"] == 0.0


def test_by_rank_counts_the_impressions_that_showed_an_item_there(traffic):
    groups = _by_key(online_metrics(since=SINCE, until=UNTIL, group_by=["rank"]))
    assert list(groups) == ["1", "2", "3"]
    assert _counts(groups["1"]) == (3, 3, 2, 1, 0, 0)  # (first, p1) and (shared, p1)
    assert _counts(groups["2"]) == (2, 2, 1, 0, 1, 0)  # (first, p2) applied to
    assert _counts(groups["3"]) == (1, 1, 0, 0, 0, 1)  # (first, p3) dismissed
    assert groups["2"]["keys"] == {"rank": 2}


def test_by_variant_names_the_experiment_and_none_outside(traffic):
    groups = _by_key(online_metrics(since=SINCE, until=UNTIL, group_by=["variant"]))
    assert list(groups) == ["none", "weights/a"]
    assert _counts(groups["none"]) == (2, 5, 2, 1, 1, 1)
    assert _counts(groups["weights/a"]) == (1, 1, 1, 0, 0, 0)
    assert groups["weights/a"]["click_rate"] == 1.0


def test_by_role_and_day_together(traffic):
    groups = _by_key(online_metrics(since=SINCE, until=UNTIL, group_by=["role", "day"]))
    assert list(groups) == ["developer / 2026-11-28", "developer / 2026-11-29", "founder / 2026-11-28"]
    assert _counts(groups["developer / 2026-11-28"]) == (1, 3, 2, 1, 1, 1)
    assert groups["founder / 2026-11-28"]["keys"] == {"role": "founder", "day": "2026-11-28"}


def test_the_window_excludes_until_and_can_follow_one_experiment(traffic):
    assert list(_by_key(online_metrics(since=SINCE, until=DAY_TWO, group_by=["day"]))) == ["2026-11-28"]
    only = online_metrics(since=SINCE, until=UNTIL, group_by=["role"], experiment_id=Experiment.objects.get().pk)
    assert [(group["key"], group["impressions"]) for group in only] == [("founder", 1)]


def test_attribution_stores_the_items_rank(traffic):
    assert sorted(traffic.interactions.values_list("rank", flat=True)) == [1, 1, 2, 3]


# ---------------------------------------------------------------- the API


def test_staff_get_groups_by_several_dimensions(traffic, staff_user, client_for):
    response = client_for(staff_user).get(URL, {"since": "2026-11-28", "until": "2026-11-29",
                                                "group_by": "day,variant"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["group_by"] == ["day", "variant"]
    # A date as until includes its day.
    assert (body["since"], body["until"]) == ("2026-11-28T00:00:00Z", "2026-11-30T00:00:00Z")
    assert [group["key"] for group in body["groups"]] == ["2026-11-28 / none", "2026-11-28 / weights/a",
                                                          "2026-11-29 / none"]
    assert body["groups"][0]["clicks"] == 2


def test_default_window_is_the_last_30_days_by_day(staff_user, client_for):
    now = timezone.now()
    for days_ago in (1, 29, 31):
        _impression(staff_user, "developer", now - timedelta(days=days_ago), [PositionFactory()])
    body = client_for(staff_user).get(URL).json()
    assert body["group_by"] == ["day"]
    assert sum(group["impressions"] for group in body["groups"]) == 2


def test_non_staff_are_refused(developer, client_for):
    response = client_for(developer.user).get(URL)
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]


@pytest.mark.parametrize(("query", "field", "says"), [
    ({"group_by": "week"}, "group_by", "Unknown dimension(s) 'week'"),
    ({"group_by": "day,day"}, "group_by", "twice"),
    ({"since": "yesterday"}, "since", "not an ISO date"),
    ({"since": "2026-02-30"}, "since", "not an ISO date"),
    ({"since": "2026-11-30", "until": "2026-11-01"}, "until", "is before since"),
    ({"since": "2025-01-01", "until": "2026-11-30"}, "since", "at most 366"),
    ({"until": "9999-12-31"}, "until", "past the last day"),
    ({"since": "0001-01-01T00:00:00+05:00"}, "since", "out of range"),
    ({"colour": "red"}, "colour", "Unknown field"),
])
def test_bad_queries_are_400s_naming_the_parameter(staff_user, client_for, query, field, says):
    response = client_for(staff_user).get(URL, query)
    assert response.status_code == 400, response.content
    assert says in str(response.json()[field])
