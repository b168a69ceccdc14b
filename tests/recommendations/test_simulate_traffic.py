"""The online loop end to end (issue 12, point 6): simulated demo users ask for recommendations through the real
API and answer them as the demo world's hidden tastes say; their impressions and attributed events are the
online metrics by day, and an experiment's results tell a better weight set from a poor one, and an A/A test
from either.

On the package's trained demo world (conftest: seed_demo --users 70 ... --seed 5, whose oracle needs seed 5).
The split of users between an experiment's variants is tested by tests/recommendations/test_experiments.py.
"""
from datetime import UTC, timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ml.models import ModelVersion
from ml.platform_data import item_key
from ml.services import hybrid_weights_set
from profiles.models import Interaction
from recommendations.experiments import CONTROL, clean_variants, experiment_results
from recommendations.models import Experiment, Impression
from recommendations.online import online_metrics
from recommendations.simulation import (
    VARIANT_NAME,
    VARIANT_SHARE,
    channel_of,
    demo_world,
    item_answer,
    traffic_simulate,
)

DEMO_SEED = 5  # tests/recommendations/conftest.py seeds the world with it
# On this world's hidden tastes (profiles.demo.oracle: the mean match of each weight set's top 10), content
# alone is the best of the world's three components and two_tower alone the poorest. Measured through the
# simulation: content alone beats two_tower alone at p < 0.001 after 4 days on each of four splits of the
# users (experiment ids 1000-1003), and an A/A test of content alone has p from 0.33 to 0.94 on them.
GOOD, POOR = {"content_based": 1.0}, {"two_tower": 1.0}
EXPERIMENT_DAYS = 4
# A user's variant hangs on (experiment id, user id). The world's user ids are the same on every run (the
# demo store numbers them from the table's largest id, and the package's world is seeded into empty tables),
# but an experiment's id is not: rolled-back tests advance PostgreSQL's sequence. A fixed id gives the same
# split on every run, so an A/A test is one fixed draw, not a 5% chance of a false winner on each run.
EXPERIMENT_ID = 1000


def simulate(**options):
    return traffic_simulate(**{"demo_seed": DEMO_SEED, "users": 70, **options})


def started(weights: dict) -> Experiment:
    """What simulate_traffic --experiment-weights starts (``weights`` at VARIANT_SHARE beside the control),
    with the fixed id; the simulation then uses it, as it uses any running experiment."""
    now = timezone.now()
    variants = clean_variants([{"name": VARIANT_NAME, "share": VARIANT_SHARE, "weights": weights}])
    return Experiment.objects.create(pk=EXPERIMENT_ID, name=f"fixed split: {weights}", variants=variants,
                                     status=Experiment.Status.RUNNING, starts_at=now, started_at=now)


def test_simulated_days_are_impressions_and_attributed_events_in_the_online_metrics_by_day(world, capsys):
    seeded = Interaction.objects.aggregate(last=Max("id"))["last"]
    call_command("simulate_traffic", days=3, users=40, seed=2, demo_seed=DEMO_SEED)
    out = capsys.readouterr().out

    # the simulation's last day is the day it ran: read from its answers, as a run can cross midnight
    last_day = Impression.objects.latest("created_at").created_at.astimezone(UTC).date()
    assert timezone.now().astimezone(UTC).date() - last_day <= timedelta(days=1)
    days = [(last_day - timedelta(days=back)).isoformat() for back in (2, 1, 0)]
    since = timezone.now() - timedelta(days=4)
    by_day = online_metrics(since=since, until=timezone.now() + timedelta(seconds=1), group_by=["day"])
    assert [group["key"] for group in by_day] == days
    for group in by_day:
        assert group["impressions"] >= 40 and group["items_shown"] > 0 and group["click_rate"] > 0
        assert f"({group['key']}): 40 users, {group['impressions']} impressions" in out
    assert sum(g["positives"] for g in by_day) > 0 and sum(g["conversions"] for g in by_day) > 0
    assert sum(g["dismissals"] for g in by_day) > 0
    # Every event answers the impression it names, on that impression's day, seconds after it (but accepts,
    # which answer an application or contact: test_the_other_side_accepts_applications_and_contacts).
    events = Interaction.objects.filter(id__gt=seeded).exclude(kind="accept")
    assert events.count() > 0 and not events.filter(impression__isnull=True).exists()
    for event in events.select_related("impression"):
        assert timedelta(0) <= event.created_at - event.impression.created_at < timedelta(minutes=5)
    impressions = Impression.objects.count()
    clicks = sum(g["clicks"] for g in by_day)
    assert f"Simulated 3 days of 40 users: {impressions} impressions" in out
    assert f"click rate {clicks / sum(g['items_shown'] for g in by_day):.2%}" in out
    accepts = Interaction.objects.filter(id__gt=seeded, kind="accept").count()
    assert f"Accepted by the other side: {accepts} of " in out


def test_the_same_seed_gives_the_same_traffic(world):
    def traffic() -> tuple:
        """Each day's counts, and what was shown to whom and what they did with it, and the other side's accepts."""
        seeded = Interaction.objects.aggregate(last=Max("id"))["last"]
        report = simulate(days=2, users=30, seed=3)
        days = [(day.tally.impressions, day.tally.items_shown, dict(day.tally.outcomes), day.tally.asked,
                 day.tally.accepted) for day in report.days]
        shown = sorted(Impression.objects.values_list("user_id", "items"), key=repr)
        events = sorted(Interaction.objects.filter(id__gt=seeded).values_list(
            "user_id", "kind", "position_id", "startup_id", "developer_id", "investor_id"), key=repr)
        return days, shown, events

    with transaction.atomic():  # the first run is rolled back: the second starts from the same world
        first = traffic()
        transaction.set_rollback(True)
    again = traffic()

    assert first == again
    days, shown, events = first
    assert len(shown) == sum(impressions for impressions, *_ in days) and len(events) > 0


def test_the_other_side_accepts_applications_and_contacts(world):
    """Each accept is posted by the target of a simulated application or contact, after it, on its day; as
    many as the tallies say, with about the chance the world's accept_chance gives."""
    seeded = Interaction.objects.aggregate(last=Max("id"))["last"]
    oracle = demo_world(demo_seed=DEMO_SEED)
    report = simulate(days=3, users=70, seed=4)

    made = Interaction.objects.filter(id__gt=seeded).order_by("id")
    asked = [(event, oracle.acceptance(event.user_id, event.kind, item_key(event.item_type, event.item_id)))
             for event in made.filter(kind__in=["apply", "contact"])]
    asked = [(event, acceptance) for event, acceptance in asked if acceptance is not None]
    accepts = list(made.filter(kind="accept"))
    assert report.total.asked == len(asked) > 10
    assert report.total.accepted == len(accepts) > 0
    unanswered = [(event, acceptance) for event, acceptance in asked]
    for accept in accepts:
        assert accept.impression_id is None and accept.outcome == ""
        # the application or contact it answers: the last one before it whose target accepts this
        answered = next((event, acceptance) for event, acceptance in reversed(unanswered) if event.id < accept.id
                        and acceptance.user_id == accept.user_id
                        and acceptance.item_key == item_key(accept.item_type, accept.item_id))
        unanswered.remove(answered)
        assert timedelta(0) <= accept.created_at - answered[0].created_at < timedelta(minutes=5)
    # which ones were accepted is drawn with the world's chances
    chances = np.array([acceptance.chance for _, acceptance in asked])
    assert abs(len(accepts) - chances.sum()) < 4 * np.sqrt((chances * (1 - chances)).sum()) + 1


def test_results_name_the_better_weights_the_winner(world):
    hybrid_weights_set(weights=POOR)  # what is in force: the control
    experiment = started(GOOD)

    report = simulate(days=EXPERIMENT_DAYS, seed=1, experiment_weights=GOOD)

    assert report.experiment == experiment
    results = experiment_results(experiment=experiment)
    treatment, = results["variants"]
    assert results["winner"] == VARIANT_NAME
    assert treatment["p_value"] < 0.05
    assert treatment["rates"]["click_rate"] > results["control"]["rates"]["click_rate"]
    assert {CONTROL, VARIANT_NAME} == set(report.by_variant)
    # every member is in the experiment: its variants' accepts add up to all of them
    assert sum(tally.asked for tally in report.by_variant.values()) == report.total.asked > 0
    assert sum(tally.accepted for tally in report.by_variant.values()) == report.total.accepted


def test_an_a_a_test_has_no_winner(world):
    hybrid_weights_set(weights=GOOD)
    experiment = started(GOOD)

    simulate(days=EXPERIMENT_DAYS, seed=1, experiment_weights=GOOD)

    results = experiment_results(experiment=experiment)
    assert results["winner"] is None
    assert results["variants"][0]["p_value"] >= 0.05
    assert results["control"]["users"] > 20 and results["variants"][0]["users"] > 20


def test_a_running_experiment_is_used_rather_than_a_second_one_started(world):
    first = simulate(days=1, users=10, experiment_weights=GOOD)
    again = simulate(days=1, users=10, experiment_weights=POOR, experiment_name="another")

    assert again.experiment.pk == first.experiment.pk
    assert first.experiment.name == 'simulated: {"content_based": 1.0}'
    assert list(Experiment.objects.values_list("status", flat=True)) == [Experiment.Status.RUNNING]
    assert set(Impression.objects.values_list("experiment_id", flat=True)) == {first.experiment.pk}


def test_refuses_data_that_is_not_that_demo_world(world):
    with pytest.raises(CommandError, match="demo world only: not the demo world of seed 4"):
        call_command("simulate_traffic", days=1, users=5, demo_seed=4)
    assert not Impression.objects.exists()


def test_refuses_a_world_without_trained_models(world):
    ModelVersion.objects.update(status=ModelVersion.Status.READY)
    with pytest.raises(CommandError, match="No model is trained"):
        call_command("simulate_traffic", days=1, users=5, demo_seed=DEMO_SEED)


def test_refuses_weights_that_are_not_json(world):
    with pytest.raises(CommandError, match="not JSON"):
        call_command("simulate_traffic", "--experiment-weights", "{content", "--demo-seed", str(DEMO_SEED))


DEVELOPER_POSITION, FOUNDER_DEVELOPER = channel_of("developer", "position"), channel_of("founder", "developer")


@pytest.mark.parametrize("channel, match, rank, draws, kinds", [
    (DEVELOPER_POSITION, 0.9, 3, (0.51, 0.0, 0.0, 0.0), []),  # rank 3 is looked at with chance 1/log2(4) = 0.5
    (DEVELOPER_POSITION, 0.9, 1, (0.99, 0.79, 0.99, 0.0), ["view"]),  # 0.6 above typical: clicked 80%
    (DEVELOPER_POSITION, 0.9, 1, (0.0, 0.5, 0.05, 0.0), ["view", "like"]),  # like: 0.03 + 0.17 * 0.9
    (DEVELOPER_POSITION, 0.9, 1, (0.0, 0.5, 0.35, 0.0), ["view", "apply"]),  # after like 0.18, save 0.14
    (DEVELOPER_POSITION, 0.3, 1, (0.0, 0.11, 0.0, 0.0), []),  # at typical: clicked 10%
    (DEVELOPER_POSITION, 0.1, 1, (0.0, 0.5, 0.0, 0.09), ["dismiss"]),  # below typical, dismiss rate 0.10
    (DEVELOPER_POSITION, 0.1, 1, (0.0, 0.5, 0.0, 0.11), []),
    (FOUNDER_DEVELOPER, 0.1, 1, (0.0, 0.5, 0.0, 0.0), []),  # founders never dismiss people
])
def test_a_user_answers_a_shown_item_as_the_worlds_tastes_say(channel, match, rank, draws, kinds):
    assert item_answer(channel=channel, match=match, typical=0.3, rank=rank, draws=draws) == kinds
