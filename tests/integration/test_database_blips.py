"""A training part that loses its database connection is retried (ml.tasks: autoretry with backoff), and the
run fails, with the reason, only when the retries are spent. Real blips: the worker's PostgreSQL backends
are terminated in the middle of an attempt, as a database restart or failover would."""
import pytest
from django.core.management import call_command

from ml.models import ModelVersion, TrainingRun

from .conftest import terminate_other_backends, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    call_command("seed_demo", users=120, startups=30, positions=90, interactions=2500, seed=3, verbosity=0)


@pytest.fixture
def run_id(world, staff_user, client_for) -> int:
    response = client_for(staff_user).post("/api/v1/models/train", {"force_retrain": True,
                                                                    "algorithms": ["two_tower"]}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["training_run_id"]


def at_the_pause(pauses, attempt: int, *, blip: bool) -> None:
    """Wait for the worker to pause in attempt ``attempt``; cut its connections if ``blip``; let it go on."""
    wait_for((pauses / f"paused-{attempt}").exists, timeout=240, what=f"attempt {attempt} to pause")
    if blip:
        assert terminate_other_backends() >= 1
    (pauses / f"resume-{attempt}").touch()


def finished(run_id: int) -> TrainingRun:
    return wait_for(lambda: TrainingRun.objects.filter(pk=run_id, in_flight__isnull=True).first(), timeout=300,
                    what=f"run {run_id} to finish")


def test_a_run_that_loses_the_database_is_retried_and_succeeds(pausing_worker_process, run_id):
    at_the_pause(pausing_worker_process, 1, blip=True)
    at_the_pause(pausing_worker_process, 2, blip=False)
    run = finished(run_id)
    assert run.status == "succeeded", run.error
    versions = {v.status: v for v in ModelVersion.objects.filter(training_run=run)}
    assert set(versions) == {"failed", "active"}  # the interrupted attempt's version, then the retry's
    assert "database error interrupted" in versions["failed"].failure_reason


def test_a_run_fails_with_the_reason_once_its_retries_are_spent(pausing_worker_process, run_id):
    at_the_pause(pausing_worker_process, 1, blip=True)
    at_the_pause(pausing_worker_process, 2, blip=True)  # the last attempt (one retry): it records the failure
    run = finished(run_id)
    assert run.status == "failed"
    assert run.error.startswith(("OperationalError", "InterfaceError")), run.error
    # The first attempt's version failed when the retry began; the last one's was saved, and not activated.
    assert list(ModelVersion.objects.filter(training_run=run).order_by("version").values_list("status", flat=True)) \
        == ["failed", "ready"]
    assert not TrainingRun.objects.filter(in_flight=True).exists()
