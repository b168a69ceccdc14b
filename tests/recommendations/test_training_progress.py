"""The staff training-runs page follows a run in flight without reloading (a small JSON endpoint the page
polls, its card swapped in place), shows every run's phases with each algorithm's time and memory, and draws
each fit's loss curves with its learning rate and best epoch."""
import copy

import pytest
from django.template.defaultfilters import floatformat
from django.utils import timezone

from ml.models import ModelVersion, TrainingRun
from ml.progress import RunProgress

RUNS = "/staff/training-runs/"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def progress_url(run_id) -> str:
    return f"/staff/training-runs/{run_id}/progress.json"


@pytest.fixture
def staff(world, client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def running(world) -> TrainingRun:
    """A run in the middle of choosing settings: content done, the Two-Tower at epoch 2 of 5."""
    run = TrainingRun.objects.create(algorithms=["content_based", "two_tower"], status="running",
                                     started_at=timezone.now(), heartbeat_at=timezone.now())
    saved = {}
    report = RunProgress({}, lambda p: saved.update(copy.deepcopy(p)))
    report.plan(["reading", "validation", "final_fit", "holdout_fit", "measuring"])
    report.begin("reading")
    report.begin("validation", ["content_based", "two_tower", "popularity"])
    report("component", {"algorithm": "content_based", "seconds": 0.2, "ok": True})
    report("fit", {"algorithm": "two_tower", "unit": "epoch", "total": 5})
    for epoch in (1, 2):
        report("epoch", {"algorithm": "two_tower", "epoch": epoch, "epochs": 5, "train_loss": 3.0 / epoch,
                         "val_loss": 2.0 / epoch, "lr": 1e-3, "best_epoch": epoch})
    run.progress = saved
    run.save()
    return run


def test_a_run_in_flight_has_a_live_card_that_polls_its_progress_and_no_page_refresh(staff, running):
    page = staff.get(RUNS).content.decode()
    assert 'http-equiv="refresh"' not in page  # followed in place, not by reloading every few seconds
    assert f'id="live-run" data-progress-url="{progress_url(running.pk)}"' in page
    assert "fetch(card.dataset.progressUrl" in page  # plain JS in the page, no library from anywhere
    assert "now: <strong class=\"phase-now\">Choosing settings on validation</strong>" in page
    assert "epoch 2 of 5 · best 2" in page
    assert 'aria-valuenow="40"' in page  # the Two-Tower's bar: 2 of 5 epochs
    assert "disabled" in page.split("Retrain now</button>")[0].rsplit("<button", 1)[1]  # one run at a time


def test_the_progress_endpoint_answers_the_runs_status_and_its_card(staff, running):
    response = staff.get(progress_url(running.pk))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["id"] == running.pk and body["status"] == "running" and body["in_flight"] is True
    assert body["phase"] == "Choosing settings on validation"
    assert 0 < body["percent"] < 50
    assert "epoch 2 of 5" in body["html"] and "Final fit on all the data" in body["html"]  # planned: pending
    assert body["html"].count('class="phase pending"') == 3


def test_the_progress_endpoint_is_for_staff_and_404s_unknown_runs(staff, client, running):
    assert staff.get(progress_url(987654321)).status_code == 404
    assert staff.get(progress_url(99999999999999999999)).status_code == 404
    client.logout()
    assert client.get(progress_url(running.pk)).status_code == 302  # to the admin login


def test_every_run_lists_each_algorithms_final_fit_time_and_memory_and_its_phases(staff, world):
    page = staff.get(RUNS).content.decode()
    for version in ModelVersion.objects.filter(training_run=world.run):
        # rounded as the template rounds (half up: Python's format would give 528 for 528.5, the page 529)
        seconds, memory = floatformat(version.training_seconds, 2), floatformat(version.peak_memory_mb, 0)
        assert f"{version.label}: {seconds} s · {memory} MB" in page
    assert "Phases: each algorithm&#x27;s progress and time" in page or "Phases: each algorithm's progress" in page
    assert "Fitting the held-out measurement" in page


def test_the_loss_plot_draws_every_fit_of_the_run(staff, world):
    response = staff.get(f"/staff/training-runs/{world.run.pk}/loss.png")
    assert response.status_code == 200 and response.content.startswith(PNG_SIGNATURE)
    page = staff.get(RUNS).content.decode()
    assert "3 fits in epochs" in page and "best epoch (dotted)" in page  # the held-out measurement reuses one
