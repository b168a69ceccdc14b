"""The staff model endpoints: train, training runs, algorithm status, load (activation) and weights."""
import json
import shutil
from datetime import UTC, datetime

import pytest
import redis
from django.conf import settings

from ml import training
from ml.models import Algorithm, HybridWeights, ModelVersion, TrainingRun
from ml.selectors import current_weights
from profiles.models import Developer, Interaction, Position
from recsys_site.celery import app as celery_app
from tests.recsys_site.test_health_and_services import dropping_broker, silent_broker  # noqa: F401

from .test_recommendations_api import recommend, user

TRAIN = "/api/v1/models/train"
RUNS = "/api/v1/models/training-runs"
STATUS = "/api/v1/algorithms/status"
LOAD = "/api/v1/models/load"
WEIGHTS = "/api/v1/models/weights"


@pytest.fixture
def staff(world, client_for, staff_user):
    return client_for(staff_user)


def every_algorithm(versions: dict[str, int]) -> dict[str, int | None]:
    """The active version of every algorithm, as the API names them: null for those the world did not train."""
    return {name: versions.get(name) for name in Algorithm.values}


# ---------------------------------------------------------------- staff only


@pytest.mark.parametrize(("method", "url"), [
    ("post", TRAIN), ("get", RUNS), ("get", f"{RUNS}/1"), ("get", STATUS), ("post", LOAD), ("put", WEIGHTS)])
def test_model_management_is_for_staff_only(world, api_client, client_for, method, url):
    assert getattr(api_client, method)(url, {}, format="json").status_code == 401
    response = getattr(client_for(user(Developer, world.developer_id)), method)(url, {}, format="json")
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]


# ---------------------------------------------------------------- train


@pytest.fixture
def broker_emptied_afterwards():
    """With a real broker the queued task outlives the test's rolled-back run: take it back off the queue."""
    yield
    if settings.CELERY_BROKER_URL:
        celery_app.control.purge()


@pytest.mark.usefixtures("broker_emptied_afterwards")
def test_train_queues_a_run_and_answers_202_with_where_to_follow_it(staff, staff_user):
    response = staff.post(TRAIN, {"training_data": {}, "force_retrain": True, "algorithms": ["content_based"]},
                          format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {"training_run_id", "task_id", "status", "status_url"}
    assert body["task_id"]
    if settings.CELERY_BROKER_URL:  # queued until a worker takes it; without a broker a thread trains at once
        assert body["status"] == "queued"  # (tests/ml/test_background_training.py), and may be done already
    assert body["status_url"].endswith(f"/api/v1/models/training-runs/{body['training_run_id']}")
    run = TrainingRun.objects.get(pk=body["training_run_id"])
    assert run.algorithms == ["content_based"] and run.requested_by == staff_user and run.trigger == "api"
    assert run.celery_task_id == body["task_id"]
    assert staff.get(body["status_url"]).status_code == 200
    if settings.CELERY_BROKER_URL:  # CI: the task really is on Redis, waiting for a worker of queue default
        assert body["task_id"] in task_ids_queued_on_redis("default")


def task_ids_queued_on_redis(queue: str) -> set[str]:
    """The ids of the task messages waiting in ``queue`` (kombu keeps a Redis queue as a list of JSON messages)."""
    with redis.Redis.from_url(settings.CELERY_BROKER_URL) as client:
        return {json.loads(raw)["headers"]["id"] for raw in client.lrange(queue, 0, -1)}


def test_train_answers_up_to_date_when_nothing_changed(world, staff):
    response = staff.post(TRAIN, {"training_data": {}, "force_retrain": False, "algorithms": sorted(world.versions)},
                          format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "up_to_date"
    assert response.json()["model_versions"] == world.versions
    assert not TrainingRun.objects.exclude(pk=world.run.pk).exists()


def test_train_while_a_run_is_in_flight_is_409_with_its_id(staff):
    running = TrainingRun.objects.create(algorithms=["collaborative"], status="running")
    response = staff.post(TRAIN, {"force_retrain": True}, format="json")
    assert response.status_code == 409
    assert response.json()["training_run_id"] == running.pk


@pytest.mark.usefixtures("broker_emptied_afterwards")
def test_training_data_interactions_are_stored_before_training(world, staff):
    position = Position.objects.order_by("pk").first()
    events = [{"user_id": world.developer_id, "item_type": "position", "item_id": position.pk, "kind": "apply",
               "created_at": "2026-01-02T03:04:05Z"},
              {"user_id": world.founder_id, "item_type": "developer", "item_id": world.developer_id,
               "kind": "contact"}]
    before = Interaction.objects.count()
    response = staff.post(TRAIN, {"training_data": {"interactions": events}, "algorithms": ["content_based"]},
                          format="json")
    assert response.status_code == 202, response.content
    assert Interaction.objects.count() == before + 2
    stored = Interaction.objects.get(user_id=world.developer_id, position=position, kind="apply",
                                     created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert stored.item_type == "position"


@pytest.mark.parametrize(("event", "field"), [
    ({"user_id": 999999}, "user_id"),
    ({"item_id": 999999}, "item_id"),
    ({"item_type": "developer"}, "item_type"),  # only founders interact with people
    ({"kind": "stare"}, "kind"),
    ({"created_at": "yesterday"}, "created_at"),
])
def test_bad_training_interactions_are_refused_all_or_nothing(world, staff, event, field):
    position = Position.objects.order_by("pk").first()
    good = {"user_id": world.developer_id, "item_type": "position", "item_id": position.pk, "kind": "view"}
    bad = {**good, **event}
    if event.get("item_type") == "developer":
        bad["item_id"] = world.developer_id
    before = Interaction.objects.count()
    response = staff.post(TRAIN, {"training_data": {"interactions": [good, bad]}, "force_retrain": True},
                          format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["training_data"]["interactions"]
    assert list(errors) == ["1"] and field in errors["1"]
    assert Interaction.objects.count() == before
    assert not TrainingRun.objects.exclude(pk=world.run.pk).exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"algorithms": ["popularity"]}, "algorithms"),
    ({"algorithms": []}, "algorithms"),
    ({"algorithms": "two_tower"}, "algorithms"),
    ({"force_retrain": "sometimes"}, "force_retrain"),
    ({"training_data": []}, "training_data"),
    ({"training_data": {"users": []}}, "training_data"),
    ({"retrain": True}, "retrain"),
])
def test_bad_train_requests_name_the_field(staff, body, field):
    response = staff.post(TRAIN, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_train_with_the_broker_down_is_503_and_nothing_is_left_queued(world, staff, broker_down):
    position = Position.objects.order_by("pk").first()
    event = {"user_id": world.developer_id, "item_type": "position", "item_id": position.pk, "kind": "save"}
    before = Interaction.objects.count()
    response = staff.post(TRAIN, {"training_data": {"interactions": [event]}, "force_retrain": True},
                          format="json")
    assert response.status_code == 503, response.content
    assert "broker" in response.json()["detail"]
    assert not TrainingRun.objects.filter(status__in=["queued", "running"]).exists()
    refused = TrainingRun.objects.exclude(pk=world.run.pk).get()
    assert refused.status == "failed" and "Broker unreachable" in refused.error
    assert Interaction.objects.count() == before


@pytest.mark.parametrize("broker", ["silent_broker", "dropping_broker"])
def test_train_gives_up_at_once_on_a_broker_that_never_answers(world, staff, broker, request):
    """A broker that accepts and never replies, or whose connections are never established: 503, the run
    failed with the timeout, and the broker dialled once (no retry loop holds the request)."""
    connections_made = request.getfixturevalue(broker)
    response = staff.post(TRAIN, {"force_retrain": True}, format="json")
    assert response.status_code == 503, response.content
    refused = TrainingRun.objects.exclude(pk=world.run.pk).get()
    assert refused.status == "failed" and "Timeout" in refused.error
    if broker == "silent_broker":
        assert connections_made() == 1


# ---------------------------------------------------------------- training runs


def test_a_training_run_shows_every_field_of_the_contract(world, staff):
    body = staff.get(f"{RUNS}/{world.run.pk}").json()
    assert {"id", "status", "algorithms", "progress", "metrics", "model_versions", "error", "started_at",
            "finished_at"} <= set(body)
    assert body["status"] == "succeeded" and body["error"] == ""
    assert body["model_versions"] == world.versions
    assert set(body["progress"]) == {"phase", "phase_label", "phases", "algorithm", "epoch", "epochs", "train_loss",
                                     "val_loss", "lr", "best_epoch", "loss_phase"}
    progress = body["progress"]
    # the last fit in epochs: the held-out measurement's, after the final one
    assert progress["algorithm"] == "two_tower" and progress["loss_phase"] == "holdout_fit"
    assert len(progress["train_loss"]) == len(progress["val_loss"]) == len(progress["lr"]) == progress["epoch"]
    assert 1 <= progress["best_epoch"] <= progress["epoch"]
    assert [phase["name"] for phase in progress["phases"]] == [
        "reading", "validation", "final_fit", "holdout_fit", "measuring"]
    final = progress["phases"][2]["algorithms"]
    assert set(final) == set(world.versions)
    assert all(entry["finished"] and entry["fraction"] == 1 and entry["seconds"] >= 0 for entry in final.values())
    assert set(body["metrics"]) == set(world.versions)
    assert body["started_at"] and body["finished_at"]


def test_a_queued_run_shows_empty_progress_with_the_same_keys(staff):
    run = TrainingRun.objects.create(algorithms=["two_tower"])
    body = staff.get(f"{RUNS}/{run.pk}").json()
    assert body["status"] == "queued" and body["started_at"] is None
    assert body["progress"] == {"phase": None, "phase_label": None, "phases": [], "algorithm": None, "epoch": None,
                                "epochs": None, "train_loss": [], "val_loss": [], "lr": [], "best_epoch": None,
                                "loss_phase": None}
    assert body["model_versions"] == {}


def test_training_runs_are_listed_newest_first_and_paginated(world, staff):
    for status in ("failed", "skipped"):
        TrainingRun.objects.create(algorithms=["content_based"], status=status, in_flight=None)
    body = staff.get(RUNS, {"page_size": 2}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    ids = [run["id"] for run in body["results"]] + [run["id"] for run in staff.get(body["next"]).json()["results"]]
    assert ids == sorted(ids, reverse=True) and ids[-1] == world.run.pk


def test_a_run_whose_worker_stopped_beating_is_shown_failed(staff, settings):
    settings.TRAINING_STALE_AFTER_SECONDS = 60
    dead = TrainingRun.objects.create(algorithms=["two_tower"], status="running",
                                      heartbeat_at=datetime(2026, 1, 1, tzinfo=UTC))
    body = staff.get(f"{RUNS}/{dead.pk}").json()
    assert body["status"] == "failed" and "heartbeat" in body["error"]
    assert not TrainingRun.objects.filter(in_flight=True).exists()  # the lock is free again


@pytest.mark.parametrize("run_id", ["987654", "abc", str(2**70)])
def test_an_unknown_training_run_is_a_json_404(staff, run_id):
    response = staff.get(f"{RUNS}/{run_id}")
    assert response.status_code == 404
    assert response.json()["detail"]


# ---------------------------------------------------------------- algorithm status


def test_algorithm_status_describes_each_algorithm_the_weights_and_the_data(world, staff):
    body = staff.get(STATUS).json()
    assert set(body) == {"algorithms", "weights", "data", "latest_training_run", "served"}
    assert set(body["algorithms"]) == set(Algorithm.values)
    for name, state in body["algorithms"].items():
        assert set(state) == {"available", "active_version", "trained_at", "metrics", "device", "reason",
                              "failed_version", "failure_reason"}
        assert state["failed_version"] is None and state["failure_reason"] is None  # nothing failed over
        if name not in world.versions:  # the world trains three of the five
            assert state["available"] is False and state["active_version"] is None and state["reason"]
            continue
        assert state["available"] is True and state["reason"] is None
        assert state["active_version"] == world.versions[name]
        assert state["trained_at"] and state["device"] == "cpu" and "ndcg" in state["metrics"]
    assert body["weights"] == pytest.approx(current_weights())
    assert body["data"]["interactions"] == Interaction.objects.count()
    assert body["data"]["users"] == 70 and body["data"]["items"] > 0
    assert body["latest_training_run"]["id"] == world.run.pk


def test_algorithm_status_says_why_an_algorithm_does_not_serve(staff, tmp_path):
    ModelVersion.objects.filter(algorithm="two_tower", status="active").update(artifact_path=str(tmp_path / "x"))
    state = staff.get(STATUS).json()["algorithms"]["two_tower"]
    assert state["available"] is False and "missing" in state["reason"]


# ---------------------------------------------------------------- load (activation)


def copy_as_new_version(algorithm: str, tmp_path, corrupt: bool = False) -> ModelVersion:
    """A ready version of ``algorithm`` whose artifact is a copy of the active one's (or a broken copy)."""
    active = ModelVersion.objects.get(algorithm=algorithm, status="active")
    path = shutil.copytree(active.artifact_path, tmp_path / f"{algorithm}-copy")
    if corrupt:  # one byte of its weights flipped: the file still parses, its digest no longer matches
        weights = bytearray((path / "arrays.npz").read_bytes())
        weights[len(weights) // 2] ^= 0x01
        (path / "arrays.npz").write_bytes(bytes(weights))
    return ModelVersion.objects.create(algorithm=algorithm, version=active.version + 1, status="ready",
                                       artifact_path=str(path), metrics=active.metrics)


def test_loading_a_version_activates_it_and_the_next_request_is_served_by_it(world, staff, client_for, tmp_path):
    copy = copy_as_new_version("collaborative", tmp_path)
    response = staff.post(LOAD, {"algorithm": "collaborative", "version": copy.version}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"activated": {"collaborative": copy.version},
                               "model_versions": every_algorithm({**world.versions, "collaborative": copy.version})}
    copy.refresh_from_db()
    assert copy.status == "active" and copy.activated_at
    answer = recommend(client_for(user(Developer, world.developer_id)), world.developer_id, "developer")
    assert answer["model_versions"]["collaborative"] == copy.version


def test_loading_nothing_in_particular_activates_the_newest_ready_versions(world, staff, tmp_path):
    copy = copy_as_new_version("content_based", tmp_path)
    response = staff.post(LOAD, {}, format="json")
    assert response.status_code == 200
    assert response.json()["activated"] == {"content_based": copy.version}
    assert staff.post(LOAD, {}, format="json").json()["activated"] == {}


def test_a_corrupt_artifact_is_refused_and_the_active_version_keeps_serving(world, staff, client_for, tmp_path):
    broken = copy_as_new_version("collaborative", tmp_path, corrupt=True)
    response = staff.post(LOAD, {"algorithm": "collaborative", "version": broken.version}, format="json")
    assert response.status_code == 409
    assert "arrays.npz is damaged" in response.json()["detail"]
    assert ModelVersion.objects.get(algorithm="collaborative", status="active").version == \
        world.versions["collaborative"]
    answer = recommend(client_for(user(Developer, world.developer_id)), world.developer_id, "developer")
    assert answer["model_versions"]["collaborative"] == world.versions["collaborative"]


def test_a_missing_artifact_is_refused(world, staff, tmp_path):
    gone = copy_as_new_version("two_tower", tmp_path)
    shutil.rmtree(gone.artifact_path)
    response = staff.post(LOAD, {"algorithm": "two_tower", "version": gone.version}, format="json")
    assert response.status_code == 409 and "missing" in response.json()["detail"]


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"algorithm": "collaborative", "version": 99}, 404, "detail"),
    ({"algorithm": "collaborative"}, 400, "version"),
    ({"version": 1}, 400, "algorithm"),
    ({"algorithm": "popularity", "version": 1}, 400, "algorithm"),
    ({"algorithm": "collaborative", "version": 0}, 400, "version"),
    ({"algorithm": "collaborative", "version": 1, "force": True}, 400, "force"),
])
def test_bad_load_requests(world, staff, body, code, field):
    response = staff.post(LOAD, body, format="json")
    assert response.status_code == code, response.content
    assert field in response.json()


def test_a_failed_version_cannot_be_loaded(world, staff):
    ModelVersion.objects.create(algorithm="collaborative", version=7, status="failed")
    response = staff.post(LOAD, {"algorithm": "collaborative", "version": 7}, format="json")
    assert response.status_code == 409 and "failed" in response.json()["detail"]


# ---------------------------------------------------------------- a model from another snapshot


def test_components_trained_on_different_snapshots_serve_together(world, staff, client_for):
    position = Position.objects.filter(status="open").order_by("pk").first()
    developer = user(Developer, world.developer_id)
    Interaction.objects.create(user=developer, position=position, kind="apply", created_at=datetime.now(UTC))
    run = training.training_run_create(algorithms=["collaborative"], force_retrain=True, trigger="command")
    assert training.training_run_execute(run_id=run.pk, algorithms=run.algorithms).status == "succeeded"
    newer = ModelVersion.objects.get(training_run=run)
    staff.post(LOAD, {"algorithm": "collaborative", "version": newer.version}, format="json")

    answer = recommend(client_for(developer), world.developer_id, "developer")
    assert answer["model_versions"] == every_algorithm({**world.versions, "collaborative": newer.version})
    assert answer["fallback"] == "none" and answer["results"]


# ---------------------------------------------------------------- weights


def test_weights_are_normalised_kept_with_their_author_and_returned(staff, staff_user):
    response = staff.put(WEIGHTS, {"weights": {"content_based": 2, "collaborative": 1, "two_tower": 1}},
                         format="json")
    assert response.status_code == 200, response.content
    assert response.json()["mode"] == "manual"
    assert response.json()["weights"] == {"content_based": 0.5, "collaborative": 0.25, "two_tower": 0.25,
                                          "ease": 0.0, "rp3beta": 0.0, "popularity": 0.0}
    saved = HybridWeights.objects.latest()
    assert saved.changed_by == staff_user and saved.as_dict() == response.json()["weights"]
    assert staff.get(STATUS).json()["weights"] == response.json()["weights"]


def test_huge_weights_are_normalised_not_refused(staff):
    response = staff.put(WEIGHTS, {"weights": {"content_based": 1e308, "collaborative": 1e308}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["weights"] == {"content_based": 0.5, "collaborative": 0.5, "two_tower": 0.0, "ease": 0.0,
                                          "rp3beta": 0.0, "popularity": 0.0}


def test_weights_left_out_count_as_zero(staff):
    response = staff.put(WEIGHTS, {"weights": {"collaborative": 3}}, format="json")
    assert response.json()["weights"] == {"content_based": 0.0, "collaborative": 1.0, "two_tower": 0.0, "ease": 0.0,
                                          "rp3beta": 0.0, "popularity": 0.0}


@pytest.mark.parametrize(("weights", "message"), [
    ('{"content_based": 1, "random": 1}', "random"),
    ('{"content_based": -0.1, "collaborative": 1}', "content_based"),
    ('{"content_based": 0, "collaborative": 0}', "greater than 0"),
    ('{"content_based": "0.5"}', "content_based"),
    ('{"content_based": true}', "content_based"),
    ('{"content_based": 1e999}', "finite"),  # valid JSON that Python reads as infinity
])
def test_bad_weights_are_refused_and_nothing_is_saved(staff, weights, message):
    response = staff.put(WEIGHTS, f'{{"weights": {weights}}}', content_type="application/json")
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert not HybridWeights.objects.filter(changed_by__isnull=False).exists()  # none saved by a request


@pytest.mark.parametrize("body", [{}, {"weights": {}}, {"weights": [0.5, 0.5]}, {"weights": {"x": 1}, "note": 1}])
def test_malformed_weight_requests_are_400(staff, body):
    assert staff.put(WEIGHTS, body, format="json").status_code == 400


def test_the_model_dir_is_the_packages_own(world):
    # Guards the fixtures: training in these tests must never write into the real model directory.
    assert str(settings.MODEL_DIR) in ModelVersion.objects.get(algorithm="content_based", status="active").artifact_path
