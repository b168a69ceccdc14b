"""Staff manage the registry from Django admin: activate, roll back, retrain now, weights with history."""
import shutil
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.utils import timezone

from ml import evaluation, selectors, services, training
from ml.models import HybridWeights, ModelVersion, TrainingRun
from ml.templatetags.what_if import percent_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(user)
    return client


def run_action(admin_client, model: str, action: str, pks) -> None:
    response = admin_client.post(f"/admin/ml/{model}/", {"action": action, "_selected_action": [str(p) for p in pks]})
    assert response.status_code == 302


def test_activate_action_swaps_the_active_version(admin_client, collaborative_artifact):
    ModelVersion.objects.create(algorithm="collaborative", version=1, status="active")
    newer = ModelVersion.objects.create(algorithm="collaborative", version=2, status="ready",
                                        artifact_path=collaborative_artifact)
    run_action(admin_client, "modelversion", "activate", [newer.pk])
    assert dict(ModelVersion.objects.values_list("version", "status")) == {1: "ready", 2: "active"}


def test_the_versions_list_shows_why_a_version_failed(admin_client):
    ModelVersion.objects.create(algorithm="content_based", version=3, status="failed",
                                failure_reason="Could not be loaded to serve: arrays.npz is damaged")
    page = admin_client.get("/admin/ml/modelversion/").content.decode()
    assert "Could not be loaded to serve: arrays.npz is damaged" in page


def test_a_damaged_version_is_refused_by_the_admin_action_naming_the_file(admin_client, collaborative_artifact,
                                                                           tmp_path):
    ModelVersion.objects.create(algorithm="collaborative", version=1, status="active")
    damaged = shutil.copytree(collaborative_artifact, tmp_path / "damaged")
    (damaged / "meta.json").write_text((damaged / "meta.json").read_text().replace('"collaborative"', '"ease"', 1))
    version = ModelVersion.objects.create(algorithm="collaborative", version=2, status="ready",
                                          artifact_path=str(damaged))
    response = admin_client.post("/admin/ml/modelversion/", {"action": "activate", "_selected_action": [version.pk]})
    [message] = get_messages(response.wsgi_request)
    assert "meta.json is damaged" in str(message)
    assert dict(ModelVersion.objects.values_list("version", "status")) == {1: "active", 2: "ready"}


def test_activating_a_version_whose_files_are_gone_says_why_and_keeps_the_active_one(admin_client, tmp_path):
    ModelVersion.objects.create(algorithm="content_based", version=1, status="active")
    lost = ModelVersion.objects.create(algorithm="content_based", version=2, status="ready",
                                       artifact_path=str(tmp_path / "gone"))
    response = admin_client.post("/admin/ml/modelversion/", {"action": "activate", "_selected_action": [lost.pk]})
    [message] = get_messages(response.wsgi_request)
    assert "content_based v2 was not activated: the content_based artifact is missing" in str(message)
    assert dict(ModelVersion.objects.values_list("version", "status")) == {1: "active", 2: "ready"}


def test_retrain_now_action_trains_the_selected_algorithm(admin_client, settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    # No broker configured: in-process, so the test sees the outcome; the broker path is covered by tests/integration.
    settings.CELERY_BROKER_URL = None
    call_command("seed_demo", users=40, startups=10, positions=20, interactions=300, seed=0, verbosity=0)
    version = ModelVersion.objects.create(algorithm="content_based", version=1, status="failed")
    run_action(admin_client, "modelversion", "retrain", [version.pk])
    run = TrainingRun.objects.get()
    assert (run.trigger, run.algorithms, run.status) == ("admin", ["content_based"], "succeeded")
    assert ModelVersion.objects.get(version=2).status == "active"


def test_weights_saved_in_admin_are_normalised_pinned_and_attributed(admin_client):
    response = admin_client.post("/admin/ml/hybridweights/add/", {
        "mode": "manual", "content_based": "2", "collaborative": "1", "two_tower": "1", "rp3beta": "", "note": "try"})
    assert response.status_code == 302
    saved = HybridWeights.objects.get()
    assert saved.mode == "manual"
    assert saved.as_dict() == {"content_based": 0.5, "collaborative": 0.25, "two_tower": 0.25, "ease": 0.0,
                               "rp3beta": 0.0, "popularity": 0.0}
    assert saved.changed_by.username == "boss"
    assert selectors.current_weights() == saved.as_dict()


def test_returning_to_tuned_mode_in_admin_ignores_the_numbers(admin_client):
    selectors_default = selectors.current_weights()
    services.hybrid_weights_set(weights={"ease": 1})
    response = admin_client.post("/admin/ml/hybridweights/add/", {"mode": "tuned", "content_based": "5"})
    assert response.status_code == 302
    assert HybridWeights.objects.latest().mode == "tuned"
    assert selectors.current_weights() == selectors_default


def test_all_zero_weights_are_refused_in_admin_with_a_message(admin_client):
    response = admin_client.post("/admin/ml/hybridweights/add/",
                                 {"mode": "manual", "content_based": "0", "collaborative": "0", "two_tower": "0"})
    assert response.status_code == 200
    assert b"At least one weight must be greater than 0" in response.content
    assert not HybridWeights.objects.exists()


def test_the_runs_list_shows_a_run_whose_worker_died_as_failed(admin_client, settings):
    dead = TrainingRun.objects.create(algorithms=["collaborative"], status="running", heartbeat_at=timezone.now()
                                      - timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS + 5))
    assert admin_client.get("/admin/ml/trainingrun/").status_code == 200
    dead.refresh_from_db()
    assert (dead.status, dead.in_flight) == ("failed", None)


@pytest.mark.parametrize("model", ["trainingrun", "hybridweights"])
def test_runs_and_weights_history_cannot_be_deleted(admin_client, model):
    row = (TrainingRun.objects.create(algorithms=["collaborative"]) if model == "trainingrun"
           else HybridWeights.objects.create())
    assert admin_client.get(f"/admin/ml/{model}/{row.pk}/delete/").status_code == 403
    admin_client.post(f"/admin/ml/{model}/", {"action": "delete_selected", "_selected_action": [str(row.pk)],
                                              "post": "yes"})
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("path", ["/admin/ml/trainingrun/", "/admin/ml/modelversion/", "/admin/ml/hybridweights/",
                                  "/admin/django_celery_beat/periodictask/", "/admin/profiles/startup/",
                                  "/admin/profiles/position/", "/admin/profiles/interaction/",
                                  "/admin/auth/user/"])
def test_admin_pages_render(admin_client, path):
    assert admin_client.get(path).status_code == 200


def test_the_runs_list_shows_each_runs_served_ndcg_beside_popularity_and_its_tuned_validation_ndcg(admin_client):
    group = {"ndcg": 0.1234, "recall": 0.2, "coverage": 0.3, "diversity": 0.4, "users": 10}
    TrainingRun.objects.create(algorithms=["content_based"], status="succeeded", in_flight=None,
                               tuned={"weights": {"content_based": 1.0}, "validation_ndcg": 0.4321},
                               served={"metrics": {"all": group}, "popularity": {"all": {**group, "ndcg": 0.05}}})
    page = admin_client.get("/admin/ml/trainingrun/").content.decode()
    assert "0.1234 (0.0500)" in page and "0.4321" in page



# ---------------------------------------------------------------- the what-if of the weights form


@pytest.fixture
def measured_run(settings, tmp_path) -> TrainingRun:
    """A small world trained with two algorithms: its run keeps the held-out split the what-if measures on."""
    settings.MODEL_DIR = tmp_path
    call_command("seed_demo", users=40, startups=10, positions=20, interactions=400, seed=0, verbosity=0)
    run = training.training_run_create(algorithms=["content_based", "collaborative"], force_retrain=True,
                                       trigger="command")
    run = training.training_run_execute(run_id=run.pk, algorithms=run.algorithms)
    assert run.status == "succeeded" and run.served, run.error
    return run


ADD_WEIGHTS = "/admin/ml/hybridweights/add/"
CONTENT_ONLY = {"mode": "manual", "content_based": "3", "collaborative": "0", "note": "content only?"}


def test_preview_measures_the_entered_weights_beside_those_in_force_and_saves_nothing(admin_client, measured_run):
    response = admin_client.post(ADD_WEIGHTS, {**CONTENT_ONLY, "_preview": "Preview"})
    assert response.status_code == 200
    assert not HybridWeights.objects.exists()
    measured = evaluation.evaluate_weights({"content_based": 1})
    assert response.context["what_if"]["measured"] == measured
    page = " ".join(response.content.decode().split())
    proposed, current = measured["proposed"]["all"], measured["current"]["all"]
    assert (f'<td>all users</td><td>{proposed["users"]}</td> <td class="first">{proposed["ndcg"]:.3f}</td> '
            f'<td>{current["ndcg"]:.3f}</td>') in page
    assert "Nothing has been saved" in page
    # the form comes back as it was filled in, ready to be saved
    form = response.context["adminform"].form
    assert (form["content_based"].value(), form["note"].value(), form["mode"].value()) == ("3", "content only?",
                                                                                            "manual")


def test_saving_after_a_preview_saves_the_weights(admin_client, measured_run):
    admin_client.post(ADD_WEIGHTS, {**CONTENT_ONLY, "_preview": "Preview"})
    response = admin_client.post(ADD_WEIGHTS, CONTENT_ONLY)
    assert response.status_code == 302
    assert HybridWeights.objects.get().as_dict()["content_based"] == 1.0


def test_preview_without_a_held_out_split_says_so_and_saves_nothing(admin_client):
    response = admin_client.post(ADD_WEIGHTS, {**CONTENT_ONLY, "_preview": "Preview"})
    assert response.status_code == 200
    assert "No what-if: No training run has a held-out split to evaluate weights on yet" in response.content.decode()
    assert not HybridWeights.objects.exists()


def test_preview_of_bad_weights_shows_the_error_and_measures_nothing(admin_client):
    response = admin_client.post(ADD_WEIGHTS, {"mode": "manual", "content_based": "0", "_preview": "Preview"})
    assert response.status_code == 200
    assert b"At least one weight must be greater than 0" in response.content
    assert response.context.get("what_if") is None
    assert not HybridWeights.objects.exists()


@pytest.mark.parametrize(("change", "shown"), [(0.12, "+12%"), (-0.034, "−3%"), (0.004, "+0.4%"), (0.0001, "±0%"),
                                               (None, "—")])
def test_changes_are_shown_as_signed_percentages(change, shown):
    assert percent_change(change) == shown
