"""Every algorithm's fit says it begins ("fit": the unit it counts and how many) and reports each step, so
that a console or a run's progress can show how far it is; a tuning of several settings says which one."""
import pytest

from ml.core.collaborative import ALSConfig, CollaborativeRecommender, EaseRecommender, RP3BetaRecommender
from ml.core.content import ContentRecommender
from ml.core.tuning import select_on_validation, validation_split


@pytest.mark.parametrize(("make", "unit", "total", "event"), [
    (ContentRecommender, "step", 3, "step"),
    (lambda: CollaborativeRecommender(ALSConfig(iterations=3)), "iteration", 3, "iteration"),
    (EaseRecommender, "step", 3, "step"),
    (RP3BetaRecommender, "step", 2, "step"),
])
def test_each_fit_reports_it_begins_then_each_step_in_order(world, make, unit, total, event):
    events = []
    model = make()
    model.fit(world, progress=lambda name, info: events.append((name, info)))
    assert events[0] == ("fit", {"algorithm": model.name, "unit": unit, "total": total})
    steps = [info for name, info in events[1:]]
    assert [name for name, _ in events[1:]] == [event] * total
    assert [info[event] for info in steps] == list(range(1, total + 1))
    assert all(info["algorithm"] == model.name and info[f"{event}s"] == total for info in steps)


def test_a_fit_without_a_listener_reports_nothing_and_still_fits(world):
    assert ContentRecommender().fit(world, progress=None).item_vectors is not None


def test_tuning_says_which_setting_of_how_many_each_fit_belongs_to(world):
    fold, heldout = validation_split(world, 0.2, 1)
    events = []
    makers = [ContentRecommender, ContentRecommender]
    select_on_validation(makers, fold, heldout, 10, lambda name, info: events.append((name, info)))
    names = [name for name, _ in events]
    assert names == ["fitting", "fit", "step", "step", "step", "setting"] * 2
    fitting = [info for name, info in events if name == "fitting"]
    assert [(info["setting"], info["settings"]) for info in fitting] == [(1, 2), (2, 2)]
    assert [info["setting"] for name, info in events if name == "setting"] == [1, 2]
