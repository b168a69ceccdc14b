"""The staff pages of the online loop: the online metrics (rates per day and variant plotted, tables by variant,
role and rank, a window of UTC days) and the experiments (their definition, results, winner and plot), on
impressions and attributed events written directly, so that every count the pages show is known."""
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from profiles.models import OUTCOME_OF_KIND, Interaction
from recommendations import plots
from recommendations.models import Experiment, Impression
from tests.factories import PositionFactory, UserFactory

pytestmark = pytest.mark.django_db

ONLINE = "/staff/online/"
ONLINE_PLOT = "/staff/online/rates.png"
EXPERIMENTS = "/staff/experiments/"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ITEMS = 10


def experiment_page(experiment_id) -> str:
    return f"/staff/experiments/{experiment_id}/"


def experiment_plot(experiment_id) -> str:
    return f"/staff/experiments/{experiment_id}/results.png"


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def positions():
    return PositionFactory.create_batch(ITEMS)


def show(user, positions, *, role="developer", ago=timedelta(hours=1), experiment=None, variant="") -> Impression:
    """An answer that showed ``positions`` to ``user``, ``ago`` before now."""
    return Impression.objects.create(user=user, user_type=role, created_at=timezone.now() - ago,
                                     experiment=experiment, variant=variant, fallback="none",
                                     items=[f"position:{position.pk}" for position in positions])


def act(impression: Impression, rank: int, kind: str = "view") -> Interaction:
    """``kind`` on the item at ``rank`` of ``impression``, attributed to it as the service attributes."""
    position_id = int(impression.items[rank - 1].split(":")[1])
    return Interaction.objects.create(user_id=impression.user_id, kind=kind, position_id=position_id,
                                      created_at=impression.created_at + timedelta(minutes=1),
                                      impression=impression, rank=rank, outcome=OUTCOME_OF_KIND[kind])


def squashed(response) -> str:
    return " ".join(response.content.decode().split())


# ---------------------------------------------------------------- staff only


def test_the_online_pages_are_for_staff_only(client, positions):
    experiment = Experiment.objects.create(name="ab", variants=[{"name": "b", "share": 0.5}])
    pages = [ONLINE, ONLINE_PLOT, EXPERIMENTS, experiment_page(experiment.pk), experiment_plot(experiment.pk)]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
    client.force_login(UserFactory())
    for url in pages:
        assert client.get(url).status_code == 302, url


def test_the_staff_navigation_links_both_pages(staff):
    page = staff.get(EXPERIMENTS).content.decode()
    assert f'href="{ONLINE}"' in page and f'href="{EXPERIMENTS}" class="here"' in page


# ---------------------------------------------------------------- online metrics


@pytest.fixture
def traffic(positions):
    """Two developers shown four items twice (16 items shown), a founder shown ten; events at known ranks, and
    one answer 40 days old, outside the default window."""
    developers = UserFactory.create_batch(2)
    founder = UserFactory()
    for user in developers:
        for _ in range(2):
            impression = show(user, positions[:4])
        act(impression, 1)  # a click
        act(impression, 2, "like")  # a positive, and so a click
    act(impression, 2, "view")  # the same pair again: counted once
    answer = show(founder, positions, role="founder")
    act(answer, 1, "apply")  # a conversion, and a click
    act(answer, 10, "dismiss")
    act(show(founder, positions, role="founder", ago=timedelta(days=40)), 1)
    return developers, founder


def test_the_online_page_shows_rates_by_variant_role_and_rank_over_the_last_30_days(staff, traffic):
    response = staff.get(ONLINE)
    assert response.status_code == 200
    today = datetime.now(UTC).date()
    assert (response.context["since"], response.context["until"]) == (today - timedelta(days=29), today)
    [everyone] = response.context["by_variant"]
    assert (everyone.key, everyone.impressions, everyone.items_shown) == ("outside experiments", 5, 26)
    assert [cell.count for cell in everyone.outcomes] == [5, 2, 1, 1]  # clicks, positives, conversions, dismissals
    assert everyone.outcomes[0].rate == "19.23%"  # 5 of 26
    by_role = {row.key: row for row in response.context["by_role"]}
    assert (by_role["developer"].items_shown, by_role["developer"].outcomes[0].rate) == (16, "25.00%")
    assert (by_role["founder"].items_shown, by_role["founder"].outcomes[2].rate) == (10, "10.00%")
    by_rank = {row.key: row for row in response.context["by_rank"]}
    assert (by_rank["1"].items_shown, by_rank["1"].outcomes[0].count) == (5, 3)
    assert (by_rank["10"].items_shown, by_rank["10"].outcomes[3].count) == (1, 1)
    page = squashed(response)
    assert f'src="{ONLINE_PLOT}?since={today - timedelta(days=29)}&amp;until={today}"' in page
    assert "<strong>19.23%</strong>" in page and "By rank position" in page


def test_the_window_counts_whole_utc_days_both_ends_included(staff, traffic):
    day = Impression.objects.earliest("created_at").created_at.astimezone(UTC).date()  # the 40-day-old answer's
    response = staff.get(ONLINE, {"since": day.isoformat(), "until": day.isoformat()})
    [only] = response.context["by_variant"]
    assert (only.impressions, only.items_shown, only.outcomes[0].count) == (1, 10, 1)


def test_the_rates_plot_is_a_png_of_the_window(staff, traffic):
    response = staff.get(ONLINE_PLOT, {"since": "2000-01-01", "until": "2000-12-31"})
    assert response.status_code == 404  # nothing then
    # the day of the recent answers, not today's date: an hour before a run just after midnight is yesterday
    day = Impression.objects.latest("created_at").created_at.astimezone(UTC).date().isoformat()
    response = staff.get(ONLINE_PLOT, {"since": day, "until": day})
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)


def test_no_impressions_is_explained_not_plotted(staff):
    response = staff.get(ONLINE)
    assert response.status_code == 200
    page = squashed(response)
    assert "No impressions from" in page and "simulate_traffic" in page
    assert ONLINE_PLOT not in page


@pytest.mark.parametrize(("window", "error"), [
    ({"since": "2026-05-02", "until": "2026-05-01"}, "The window starts (2026-05-02) after it ends (2026-05-01)."),
    ({"since": "2024-01-01", "until": "2026-01-01"}, "Choose at most 366 days (got 732)."),
    ({"since": "yesterday"}, "Enter a valid date."),
    ({"until": "2026-02-30"}, "Enter a valid date."),
])
def test_a_bad_window_says_what_is_wrong(staff, window, error):
    response = staff.get(ONLINE, window)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert "by_variant" not in response.context
    assert staff.get(ONLINE_PLOT, window).status_code == 404


# ---------------------------------------------------------------- experiments


@pytest.fixture
def experiment(positions):
    """A running experiment on clicks: "better" shows items clicked three times as often as the control's,
    "same" as often; 20 users in each, each shown ten items, clicks varying by user."""
    experiment = Experiment.objects.create(
        name="tuned-vs-content", status="running", metric="click_rate", started_at=timezone.now() - timedelta(days=3),
        variants=[{"name": "better", "share": 0.3, "weights": {"content_based": 1.0}},
                  {"name": "same", "share": 0.2, "model_versions": {"collaborative": 4}}])
    for variant, extra in (("control", 0), ("better", 3), ("same", 0)):
        for n, user in enumerate(UserFactory.create_batch(20)):
            impression = show(user, positions, experiment=experiment, variant=variant)
            for rank in range(1, 1 + n % 3 + extra):
                act(impression, rank)
    return experiment


def test_the_experiments_list_shows_each_with_its_status_and_shares(staff, experiment):
    Experiment.objects.create(name="next-one", variants=[{"name": "x", "share": 0.1}])
    response = staff.get(EXPERIMENTS)
    assert response.status_code == 200
    page = squashed(response)
    assert f'<a href="{experiment_page(experiment.pk)}">tuned-vs-content</a>' in page
    assert '<span class="badge running">running</span>' in page and '<span class="badge draft">draft</span>' in page
    assert "control 50% · better 30% · same 20%" in page and "control 90% · x 10%" in page


def test_no_experiment_is_explained(staff):
    assert "No experiment yet" in staff.get(EXPERIMENTS).content.decode()


def test_an_experiments_page_shows_its_definition_results_and_winner(staff, experiment):
    response = staff.get(experiment_page(experiment.pk))
    assert response.status_code == 200
    page = squashed(response)
    assert "content_based 1.00" in page and "collaborative v4" in page  # the definition
    assert 'Winner on click rate: <span class="badge winner">better</span> (p &lt; 0.05)' in page
    arms = {arm.name: arm for arm in response.context["arms"]}
    assert list(arms) == ["control", "better", "same"]
    assert [(arm.users, arm.impressions, arm.items_shown) for arm in arms.values()] == [(20, 20, 200)] * 3
    # control: 0+1+2 clicks, repeating over 20 users = 19 of 200; better: 3 more each = 79 of 200
    assert arms["control"].primary[0] == "9.50%" and arms["better"].primary[0] == "39.50%"
    better, same = arms["better"].primary_difference, arms["same"].primary_difference
    assert (better["difference"], better["css"], better["p_text"]) == ("+30.00 pts", "up", "< 0.0001")
    assert (same["difference"], same["css"], same["p_value"]) == ("+0.00 pts", "", pytest.approx(1.0))
    assert arms["control"].primary_difference == {} and arms["control"].every_rate[0] == (arms["control"].primary, {})
    assert '<span class="up">+30.00 pts</span>, p &lt; 0.0001' in page  # every rate: clicks
    assert f'src="{experiment_plot(experiment.pk)}"' in page


def test_an_experiment_without_a_winner_says_no_significant_difference_yet(staff, experiment):
    Impression.objects.filter(variant="better").delete()
    response = staff.get(experiment_page(experiment.pk))
    assert "No significant difference yet on click rate (at p &lt; 0.05)." in squashed(response)
    better = response.context["arms"][1]
    assert (better.name, better.users, better.primary[0], better.primary_difference) == ("better", 0, "—", {})


def test_the_experiment_plot_is_a_png(staff, experiment):
    response = staff.get(experiment_plot(experiment.pk))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)


def test_a_draft_experiment_has_no_results_yet(staff):
    draft = Experiment.objects.create(name="later", variants=[{"name": "b", "share": 0.5}])
    response = staff.get(experiment_page(draft.pk))
    assert response.status_code == 200
    assert "Not started yet" in response.content.decode() and response.context["results"] is None
    assert staff.get(experiment_plot(draft.pk)).status_code == 404


@pytest.mark.parametrize("experiment_id", [987654, 2**63])
def test_unknown_experiments_are_404(staff, experiment_id):
    assert staff.get(experiment_page(experiment_id)).status_code == 404
    assert staff.get(experiment_plot(experiment_id)).status_code == 404


# ---------------------------------------------------------------- the plots on hand-made groups


def rates(click: float) -> dict:
    values = {"click_rate": click, "positive_rate": click / 3, "conversion_rate": click / 10, "dismissal_rate": 0}
    return {**values, "intervals": {name: [value * 0.8, value * 1.2] for name, value in values.items()}}


def test_the_rates_plot_draws_a_single_day_and_variants_with_gaps():
    groups = [{"keys": {"day": "2026-10-30", "variant": "none"}, **rates(0.1)},
              {"keys": {"day": "2026-10-30", "variant": "ab/b"}, **rates(0.2)},
              {"keys": {"day": "2026-11-02", "variant": "ab/b"}, **rates(0.25)}]
    assert plots.online_rates_png(groups[:1]).startswith(PNG_SIGNATURE)
    assert plots.online_rates_png(groups).startswith(PNG_SIGNATURE)


def test_the_experiment_plot_draws_a_variant_without_a_rate_yet():
    arm = {"name": "control", "users": 10, "rates": {"click_rate": 0.1}, "intervals": {"click_rate": [0.05, 0.15]}}
    empty = {"name": "b", "users": 0, "rates": {"click_rate": None}, "intervals": {"click_rate": None}}
    results = {"experiment": {"metric": "click_rate"}, "control": arm, "variants": [empty]}
    assert plots.experiment_png(results).startswith(PNG_SIGNATURE)
