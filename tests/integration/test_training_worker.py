"""End to end with real parts: the API enqueues on Redis, a real worker trains on PostgreSQL."""
import os
import signal

import pytest
from django.core.management import call_command

from ml.models import Algorithm, ModelVersion, TrainingRun
from profiles.models import Interaction

from .conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    call_command("seed_demo", users=120, startups=30, positions=90, interactions=2500, seed=3, verbosity=0)


def run_status(client, run_id: int) -> dict:
    response = client.get(f"/api/v1/models/training-runs/{run_id}")
    assert response.status_code == 200
    return response.json()


def train_and_wait(client, body: dict) -> dict:
    """POST /models/train, then poll the run until it ends; returns its final body."""
    response = client.post("/api/v1/models/train", body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    run_id = response.json()["training_run_id"]

    def finished():
        current = run_status(client, run_id)
        return current if current["status"] in {"succeeded", "failed", "skipped"} else None

    return wait_for(finished, timeout=300, what=f"training run {run_id} to finish")


def recommend(client, user_id: int) -> dict:
    response = client.post("/api/v1/recommendations", {"user_id": user_id, "user_type": "developer"}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_a_worker_trains_what_the_api_queues_and_serving_follows_activation(celery_worker_process, world,
                                                                            staff_user, client_for):
    staff = client_for(staff_user)
    run = train_and_wait(staff, {"training_data": {}, "force_retrain": True})
    assert run["status"] == "succeeded", run["error"]
    assert run["started_at"] and run["finished_at"]  # what a run shows while it trains: the next test
    assert run["progress"]["algorithm"] == "two_tower"
    assert len(run["progress"]["train_loss"]) == len(run["progress"]["val_loss"]) > 0
    assert set(run["model_versions"]) == set(Algorithm.values)
    assert ModelVersion.objects.filter(status="active").count() == len(Algorithm.values)

    user_id = Interaction.objects.filter(user__developer__isnull=False, kind="apply").values_list(
        "user_id", flat=True).first()
    answer = recommend(staff, user_id)
    assert answer["model_versions"]["two_tower"] == run["model_versions"]["two_tower"]
    assert answer["fallback"] == "none"

    second = train_and_wait(staff, {"force_retrain": True, "algorithms": ["collaborative"]})
    assert second["status"] == "succeeded", second["error"]
    assert recommend(staff, user_id)["model_versions"]["collaborative"] == 2

    response = staff.post("/api/v1/models/load", {"algorithm": "collaborative", "version": 1}, format="json")
    assert response.status_code == 200, response.content
    assert recommend(staff, user_id)["model_versions"]["collaborative"] == 1


def test_a_run_whose_worker_dies_is_marked_failed_and_frees_the_lock(stalling_worker_process, world, staff_user,
                                                                    client_for, settings):
    worker, stalled = stalling_worker_process
    staff = client_for(staff_user)
    response = staff.post("/api/v1/models/train", {"force_retrain": True, "algorithms": ["two_tower"]}, format="json")
    assert response.status_code == 202, response.content
    run_id = response.json()["training_run_id"]
    # The worker hangs after the run's first epoch, so it dies mid-run however fast it trains.
    wait_for(stalled.exists, timeout=120, what="the worker to record an epoch and hang")
    running = run_status(staff, run_id)
    assert running["status"] == "running" and running["progress"]["epoch"] == 1
    assert len(running["progress"]["train_loss"]) == 1 and running["finished_at"] is None
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)

    assert staff.post("/api/v1/models/train", {"force_retrain": True}, format="json").status_code == 409
    settings.TRAINING_STALE_AFTER_SECONDS = 2
    wait_for(lambda: run_status(staff, run_id)["status"] == "failed", timeout=30, what="the dead run to fail")
    assert "heartbeat" in run_status(staff, run_id)["error"]
    assert not TrainingRun.objects.filter(in_flight=True).exists()
