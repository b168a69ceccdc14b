"""The hybrid weights in force: each training's tuned weights in tuned mode (the default), pinned ones in
manual mode, every change in the history."""
import pytest
from django.contrib.auth import get_user_model

from ml import selectors, services
from ml.models import BLENDED, HybridWeights, ModelVersion, TrainingRun, default_weights
from recsys_site.exceptions import DomainError

pytestmark = pytest.mark.django_db
COLLABORATIVE_ONLY = {**dict.fromkeys(BLENDED, 0.0), "collaborative": 1.0}


@pytest.fixture
def tuned_run(collaborative_artifact):
    """A succeeded run with tuned weights whose collaborative version ``version`` has status ``status``."""
    def make(version: int, weights: dict, status: str = "active") -> TrainingRun:
        run = TrainingRun.objects.create(algorithms=["collaborative"], status="succeeded", in_flight=None,
                                         tuned={"weights": weights, "validation_ndcg": 0.25, "k": 20,
                                                "settings": {}, "failed": {}})
        ModelVersion.objects.create(algorithm="collaborative", version=version, status=status, training_run=run,
                                    artifact_path=collaborative_artifact)
        return run
    return make


def test_before_any_training_tuned_mode_serves_the_default_weights():
    assert selectors.current_weights() == default_weights()
    assert selectors.weights_state() == {"mode": "tuned", "weights": default_weights(), "tuned": None, "history": []}


def test_tuned_mode_serves_the_weights_of_the_run_whose_versions_are_active(tuned_run):
    serving = tuned_run(1, {"collaborative": 2.0})  # a run's weights cover what it trained; the rest weigh 0
    tuned_run(2, {"content_based": 1.0}, status="ready")  # newer, kept ready: not in force
    assert selectors.current_weights() == COLLABORATIVE_ONLY
    assert selectors.weights_state()["tuned"] == {"weights": COLLABORATIVE_ONLY, "by_role": {},
                                                  "validation_ndcg": 0.25, "training_run_id": serving.pk}


def test_manual_weights_stay_pinned_through_trainings_until_tuned_mode_returns(tuned_run):
    staff = get_user_model().objects.create_user("pinner", is_staff=True)
    tuned_run(1, {"collaborative": 1.0})
    services.hybrid_weights_set(weights={"content_based": 3, "ease": 1}, changed_by=staff)
    pinned = {**dict.fromkeys(BLENDED, 0.0), "content_based": 0.75, "ease": 0.25}
    assert selectors.current_weights() == pinned
    tuned_run(2, {"collaborative": 0.0, "rp3beta": 1.0}, status="ready")
    services.model_version_activate(algorithm="collaborative", version=2)
    assert selectors.current_weights() == pinned  # a new training does not move pinned weights
    services.hybrid_weights_mode_set(mode="tuned")
    assert selectors.current_weights() == {**dict.fromkeys(BLENDED, 0.0), "rp3beta": 1.0}
    state = selectors.weights_state()
    assert state["mode"] == "tuned"
    assert [(row["mode"], row["changed_by"], row["weights"]) for row in state["history"]] == [
        ("tuned", None, state["weights"]), ("manual", "pinner", pinned)]
    assert state["history"][0]["changed_at"] >= state["history"][1]["changed_at"]


def test_pinning_without_weights_pins_those_in_force(tuned_run):
    tuned_run(1, {"collaborative": 1.0})
    services.hybrid_weights_mode_set(mode="manual")
    tuned_run(2, {"rp3beta": 1.0}, status="ready")
    services.model_version_activate(algorithm="collaborative", version=2)
    assert selectors.current_weights() == COLLABORATIVE_ONLY


def test_an_unknown_mode_is_refused():
    with pytest.raises(DomainError, match="mode must be one of"):
        services.hybrid_weights_mode_set(mode="auto")
    assert not HybridWeights.objects.exists()
