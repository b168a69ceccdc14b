"""Experiments: the assignment of users to variants, and the services that define, start, stop and promote."""
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from recommendations.experiments import CONTROL, RunningExperiment, Variant, running_experiment
from recommendations.models import Experiment

USERS = range(1, 2001)


def _split(experiment: RunningExperiment) -> Counter:
    return Counter(getattr(experiment.variant_for(user), "name", CONTROL) for user in USERS)


def _two_variants(pk: int = 1) -> RunningExperiment:
    return RunningExperiment(id=pk, name="e", variants=(
        Variant(name="a", share=0.2, weights={"content_based": 1.0}, model_versions=None),
        Variant(name="b", share=0.3, weights=None, model_versions={"two_tower": 2})))


# ---------------------------------------------------------------- assignment


def test_users_split_within_three_percent_of_the_shares():
    counts = _split(_two_variants())
    for name, share in {"a": 0.2, "b": 0.3, CONTROL: 0.5}.items():
        assert abs(counts[name] / len(USERS) - share) <= 0.03, counts


def test_a_user_is_always_in_the_same_variant():
    first, again = _two_variants(), _two_variants()
    assert [first.variant_for(user) for user in USERS] == [again.variant_for(user) for user in USERS]


def test_different_experiments_split_users_independently():
    one, other = _two_variants(pk=1), _two_variants(pk=2)
    both = Counter((getattr(one.variant_for(u), "name", CONTROL), getattr(other.variant_for(u), "name", CONTROL))
                   for u in USERS)
    # Independent: the users in "a" of one are split like everyone in the other (0.2 * 0.3 of all in a and b).
    assert abs(both["a", "b"] / len(USERS) - 0.2 * 0.3) <= 0.03, both
    assert abs(both["a", "a"] / len(USERS) - 0.2 * 0.2) <= 0.03, both


def test_shares_summing_to_one_leave_no_control():
    full = RunningExperiment(id=3, name="e", variants=(Variant("a", 0.5, None, None), Variant("b", 0.5, None, None)))
    assert _split(full)[CONTROL] == 0


# ---------------------------------------------------------------- the running experiment


@pytest.mark.django_db
def test_the_running_experiment_is_read_with_its_variants(django_assert_num_queries):
    now = timezone.now()
    stored = Experiment.objects.create(name="weights", status="running", starts_at=now - timedelta(hours=1),
                                       variants=[{"name": "content", "share": 0.5, "weights": {"content_based": 1.0}}])
    Experiment.objects.create(name="draft", variants=[{"name": "x", "share": 1.0, "weights": {"ease": 1.0}}])
    with django_assert_num_queries(1):
        running = running_experiment()
    assert running == RunningExperiment(id=stored.pk, name="weights", variants=(
        Variant(name="content", share=0.5, weights={"content_based": 1.0}, model_versions=None),))


@pytest.mark.django_db
def test_no_experiment_runs_outside_its_window():
    now = timezone.now()
    Experiment.objects.create(name="later", status="running", starts_at=now + timedelta(hours=1),
                              ends_at=now + timedelta(hours=2), variants=[{"name": "a", "share": 0.5}])
    assert running_experiment(now=now) is None
    assert running_experiment(now=now + timedelta(minutes=90)).name == "later"
    assert running_experiment(now=now + timedelta(hours=2)) is None  # ends_at is excluded


@pytest.mark.django_db
def test_none_runs_without_a_running_experiment():
    Experiment.objects.create(name="stopped", status="stopped", variants=[{"name": "a", "share": 0.5}])
    assert running_experiment() is None
