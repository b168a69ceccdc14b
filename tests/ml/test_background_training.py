"""Without a broker (the demo's embedded defaults) a training request does not wait for the training: the run
trains on a thread of the server and the answer says at once where it stands, truly (queued or running,
never "queued" for a run already over), and the run's status and progress then follow it to its end."""
import threading
import time

import pytest
from django.core.management import call_command

from ml.models import TrainingRun
from tests.factories import StaffUserFactory

# A thread's writes must be visible to the test and the test's to the thread: real commits, no test transaction.
pytestmark = pytest.mark.django_db(transaction=True)
TRAIN = "/api/v1/models/train"


@pytest.fixture
def no_broker(settings, tmp_path):
    settings.CELERY_BROKER_URL = None
    settings.MODEL_DIR = tmp_path / "models"
    settings.TWO_TOWER_MAX_EPOCHS = 2
    call_command("seed_demo", users=60, startups=12, positions=30, interactions=900, seed=3, verbosity=0)
    yield
    for thread in threading.enumerate():  # nothing may write once the test's tables are emptied
        if thread.name.startswith("training-run-"):
            thread.join(timeout=300)


def wait_for_the_end(client, url: str, seconds: float = 300) -> tuple[dict, list[int]]:
    """Poll ``url`` (the run's status) until the run ends; (its last body, the share done seen at each poll)."""
    deadline, seen = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        body = client.get(url).json()
        phases = body["progress"]["phases"]
        seen.append(sum(1 for phase in phases if phase["seconds"] is not None))
        if body["status"] not in ("queued", "running"):
            return body, seen
        time.sleep(0.2)
    raise AssertionError(f"the run did not end within {seconds} s: {body}")


def test_a_train_request_answers_at_once_and_the_run_trains_in_the_background(no_broker, client_for):
    staff = client_for(StaffUserFactory())
    started = time.perf_counter()
    response = staff.post(TRAIN, {"force_retrain": True, "algorithms": ["content_based", "collaborative"]},
                          format="json")
    answered = time.perf_counter() - started
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] in ("queued", "running") and body["task_id"]
    run = TrainingRun.objects.get(pk=body["training_run_id"])
    assert run.celery_task_id == body["task_id"]
    final, phases_done = wait_for_the_end(staff, body["status_url"])
    assert final["status"] == "succeeded", final["error"]
    assert answered < 5, answered  # the training itself took longer than the answer: it was not waited for
    assert phases_done == sorted(phases_done)  # forward only, as it went
    assert [p["name"] for p in final["progress"]["phases"]] == [
        "reading", "validation", "final_fit", "holdout_fit", "measuring"]
    assert final["model_versions"].keys() == {"content_based", "collaborative"}


def test_retrain_now_redirects_at_once_to_the_page_that_follows_the_run(no_broker, client):
    client.force_login(StaffUserFactory())
    response = client.post("/staff/training-runs/retrain/", {"algorithms": ["content_based"]}, follow=True)
    run = TrainingRun.objects.get()
    [message] = [str(m) for m in response.context["messages"]]
    assert message in (f"Training run {run.pk} (Content-based) is queued: its progress is below.",
                       f"Training run {run.pk} (Content-based) is running: its progress is below.")
    page = response.content.decode()
    assert f"/staff/training-runs/{run.pk}/progress.json" in page  # the live card
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        body = client.get(f"/staff/training-runs/{run.pk}/progress.json").json()
        if not body["in_flight"]:
            break
        time.sleep(0.2)
    assert body["status"] == "succeeded" and body["percent"] == 100
    assert "Final fit on all the data" in body["html"]
