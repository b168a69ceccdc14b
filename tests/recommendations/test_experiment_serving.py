"""A running experiment as served (issue 12, point 4): each user's answer comes from their variant's weights
and pinned versions, says which experiment and variant it is, and its impression records both."""
import pytest
from django.utils import timezone

from ml.models import ModelVersion
from profiles.models import Developer
from recommendations.experiments import CONTROL, assignment_point
from recommendations.models import Experiment, Impression
from recommendations.services import recommendations_for_user

URL = "/api/v1/recommendations"
CONTENT_ONLY = {"content_based": 1.0, "collaborative": 0.0, "two_tower": 0.0, "ease": 0.0, "rp3beta": 0.0,
                "popularity": 0.0}


def running(**fields) -> Experiment:
    return Experiment.objects.create(**{
        "status": Experiment.Status.RUNNING, "started_at": timezone.now(), "name": "content only",
        "variants": [{"name": "content", "share": 0.5, "weights": CONTENT_ONLY}], **fields})


def developers_by_side(experiment: Experiment) -> tuple[int, int]:
    """A developer in the first variant (of share 0.5) and one in the control, both with a history the
    models know (a newcomer is served content alone, whatever the weights)."""
    ids = (Developer.objects.filter(user__interactions__isnull=False).values_list("user_id", flat=True)
           .distinct().order_by("user_id"))
    side = {pk: assignment_point(experiment_id=experiment.pk, user_id=pk) < 0.5 for pk in ids}
    return next(pk for pk, inside in side.items() if inside), next(pk for pk, inside in side.items() if not inside)


def recommend(client, user_id: int, **options) -> dict:
    response = client.post(URL, {"user_id": user_id, "user_type": "developer", "limit": 5, **options}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def staff_client(staff_user, client_for):
    return client_for(staff_user)


def test_a_variants_users_get_its_weights_and_the_control_what_is_in_force(world, staff_client):
    experiment = running(status=Experiment.Status.DRAFT)
    inside, outside = developers_by_side(experiment)
    before = recommend(staff_client, outside)
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.RUNNING)

    variant, control = recommend(staff_client, inside), recommend(staff_client, outside)

    assert variant["experiment"] == {"id": experiment.pk, "name": "content only", "variant": "content"}
    assert variant["weights"]["content_based"] == 1.0 and variant["algorithms_used"] == ["content_based"]
    assert control["experiment"] == {"id": experiment.pk, "name": "content only", "variant": CONTROL}
    assert control["weights"] == before["weights"] and control["results"] == before["results"]
    recorded = {str(i.pk): (i.experiment_id, i.variant, i.weights) for i in Impression.objects.all()}
    assert recorded[variant["recommendation_id"]] == (experiment.pk, "content", variant["weights"])
    assert recorded[control["recommendation_id"]] == (experiment.pk, CONTROL, control["weights"])


def test_a_user_stays_in_their_variant(world, staff_client):
    experiment = running()
    inside, _ = developers_by_side(experiment)

    assert {recommend(staff_client, inside)["experiment"]["variant"] for _ in range(3)} == {"content"}


def test_a_variant_pinning_a_version_serves_it_to_its_users_only(world, staff_client):
    active = ModelVersion.objects.get(algorithm="content_based", status="active")
    # Another version of the same artifact: a pinned version must be loaded beside the active one.
    pinned = ModelVersion.objects.create(algorithm="content_based", version=active.version + 1, status="ready",
                                         artifact_path=active.artifact_path, training_run=active.training_run)
    experiment = running(variants=[{"name": "newer content", "share": 0.5,
                                    "model_versions": {"content_based": pinned.version}}])
    inside, outside = developers_by_side(experiment)

    variant, control = recommend(staff_client, inside), recommend(staff_client, outside)

    assert variant["model_versions"]["content_based"] == pinned.version
    assert control["model_versions"]["content_based"] == active.version
    assert Impression.objects.get(pk=variant["recommendation_id"]).model_versions == variant["model_versions"]


def test_a_staff_trial_of_weights_is_outside_the_experiment(world):
    """The staff pages try weights on a user (recommendations_for_user's ``weights``): no variant applies."""
    experiment = running()
    inside, _ = developers_by_side(experiment)

    trial = recommendations_for_user(user_id=inside, user_type="developer", weights={"collaborative": 1.0})

    assert trial.experiment is None


@pytest.mark.parametrize("window", [{"ends_at": -1}, {"starts_at": 1}])
def test_an_experiment_outside_its_window_serves_no_one(world, staff_client, window):
    now = timezone.now()
    experiment = running(**{field: now + timezone.timedelta(days=days) for field, days in window.items()},
                         **({"starts_at": now - timezone.timedelta(days=2)} if "ends_at" in window else {}))
    inside, _ = developers_by_side(experiment)

    assert recommend(staff_client, inside)["experiment"] is None


def test_a_stopped_experiment_serves_no_one(world, staff_client):
    experiment = running()
    inside, _ = developers_by_side(experiment)
    assert recommend(staff_client, inside)["experiment"]["variant"] == "content"
    Experiment.objects.filter(pk=experiment.pk).update(status=Experiment.Status.STOPPED)

    answer = recommend(staff_client, inside)
    assert answer["experiment"] is None and answer["weights"]["content_based"] < 1.0
