"""The training service on a small seeded world, in-process (no broker): lock, up-to-date, skips,
failures, versions and activation."""
import json
import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from ml import evaluation as ml_evaluation
from ml import tasks, training
from ml.artifacts import verify_manifest
from ml.models import Algorithm, ModelVersion, TrainingRun
from ml.progress import progress_table
from profiles.models import Interaction
from recsys_site.exceptions import Conflict, DomainError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_models(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    settings.TWO_TOWER_MAX_EPOCHS = 2


@pytest.fixture
def world():
    call_command("seed_demo", users=80, startups=20, positions=60, interactions=1500, seed=1, verbosity=0)


def train(algorithms, force=False) -> TrainingRun | None:
    run = training.training_run_create(algorithms=algorithms, force_retrain=force, trigger="command")
    return run and training.training_run_execute(run_id=run.pk, algorithms=run.algorithms)


def test_training_records_a_ready_version_with_metrics_and_activates_the_first(world):
    run = train(["content_based", "collaborative"])
    assert run.status == "succeeded"
    assert run.in_flight is None
    versions = {v.algorithm: v for v in ModelVersion.objects.all()}
    assert set(versions) == {"content_based", "collaborative"}
    for version in versions.values():
        assert version.status == "active"
        assert 0 <= version.metrics["ndcg"] <= 1
        assert version.n_interactions > 0 and version.data_fingerprint
        assert version.training_seconds > 0 and version.peak_memory_mb > 50  # the process, Python and numpy in
        artifact = Path(version.artifact_path)
        assert json.loads((artifact / "meta.json").read_text())["metrics"]["ndcg"] == version.metrics["ndcg"]
        assert json.loads((artifact / "feature_spec.json").read_text())["user_features"]["dims"] == 20
        # The manifest was written after the last file, the metrics rewritten into meta.json included.
        assert set(verify_manifest(artifact)) == {"arrays.npz", "meta.json", "feature_spec.json"}
    assert set(run.metrics) == {"content_based", "collaborative"}


def test_nothing_is_trained_when_the_data_has_not_changed(world):
    train(["collaborative"])
    assert training.training_run_create(algorithms=["collaborative"], force_retrain=False, trigger="api") is None
    assert train(["collaborative"], force=True).status == "succeeded"
    assert ModelVersion.objects.filter(algorithm="collaborative").count() == 2


def test_a_version_kept_ready_because_it_was_worse_is_not_trained_again_on_the_same_data(world):
    first = train(["collaborative"])
    TrainingRun.objects.filter(pk=first.pk).update(served=measured_as(1.0))
    add_interaction()
    train(["collaborative"])
    assert ModelVersion.objects.get(algorithm="collaborative", version=2).status == "ready"
    assert training.training_run_create(algorithms=["collaborative"], force_retrain=False, trigger="beat") is None


def test_a_failed_training_does_not_count_as_trained(world, monkeypatch):
    from ml.core.collaborative import CollaborativeRecommender

    monkeypatch.setattr(CollaborativeRecommender, "fit", lambda self, data, progress=None: 1 / 0)
    assert train(["collaborative"]).status == "failed"
    assert training.training_run_create(algorithms=["collaborative"], force_retrain=False, trigger="api")


def test_other_training_parameters_make_the_models_out_of_date(world, settings):
    train(["collaborative"])
    settings.TWO_TOWER_MAX_EPOCHS = 3
    assert training.training_run_create(algorithms=["collaborative"], force_retrain=False, trigger="api")


def measured_as(ndcg: float, popularity: float = 0.0) -> dict:
    """A run's ``served`` as the activation rule reads it."""
    return {"metrics": {"all": {"ndcg": ndcg}}, "popularity": {"all": {"ndcg": popularity}}}


def add_interaction() -> None:
    event = Interaction.objects.first()
    Interaction.objects.create(user=event.user, kind="like", position=event.position, startup=event.startup,
                               developer=event.developer, investor=event.investor, created_at=timezone.now())


def test_a_new_interaction_makes_the_data_out_of_date(world):
    train(["collaborative"])
    add_interaction()
    assert training.training_run_create(algorithms=["collaborative"], force_retrain=False, trigger="api")


def test_only_one_run_may_be_in_flight(world):
    first = training.training_run_create(algorithms=["collaborative"], force_retrain=True, trigger="api")
    with pytest.raises(Conflict) as refused:
        training.training_run_create(algorithms=["content_based"], force_retrain=True, trigger="api")
    assert refused.value.extra["training_run_id"] == first.pk


def test_unknown_algorithms_are_refused(world):
    with pytest.raises(DomainError, match="subset"):
        training.training_run_create(algorithms=["popularity"], force_retrain=True, trigger="api")
    assert not TrainingRun.objects.exists()


def test_the_two_tower_is_skipped_with_a_reason_when_data_is_too_small():
    call_command("seed_demo", users=30, startups=5, positions=10, interactions=200, seed=2, verbosity=0)
    run = train(["content_based", "two_tower"])
    assert run.status == "succeeded"
    assert "500 interactions" in run.skipped["two_tower"]
    assert not ModelVersion.objects.filter(algorithm="two_tower").exists()
    # the same data would skip it again: nothing to train
    assert training.training_run_create(algorithms=["content_based", "two_tower"], force_retrain=False,
                                        trigger="beat") is None


def test_a_failed_training_is_recorded_and_the_active_version_keeps_serving(world, monkeypatch):
    train(["collaborative"])

    def broken_fit(self, data, progress=None):
        raise RuntimeError("out of memory")

    from ml.core.collaborative import CollaborativeRecommender

    monkeypatch.setattr(CollaborativeRecommender, "fit", broken_fit)
    run = train(["collaborative"], force=True)
    assert run.status == "failed"
    assert "out of memory" in run.error
    assert run.in_flight is None
    assert ModelVersion.objects.get(algorithm="collaborative", status="active").version == 1
    assert ModelVersion.objects.get(algorithm="collaborative", version=2).status == "failed"


def test_a_run_with_a_stale_heartbeat_is_failed_and_releases_the_lock(world, settings):
    run = training.training_run_create(algorithms=["collaborative"], force_retrain=True, trigger="api")
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", heartbeat_at=timezone.now() - timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS + 5))
    assert training.release_stale_runs() == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.in_flight) == ("failed", None)
    assert "heartbeat" in run.error
    assert training.training_run_create(algorithms=["collaborative"], force_retrain=True, trigger="api")


def test_a_run_handed_to_the_gpu_queue_waits_queued_not_running_and_is_not_taken_for_dead(world, settings):
    run = training.training_run_create(algorithms=["content_based", "two_tower"], force_retrain=True, trigger="api")
    first = training.training_run_execute(run_id=run.pk, algorithms=["content_based"], finish=False)
    assert (first.status, first.in_flight) == ("queued", True)
    long_after_its_last_beat = timezone.now() - timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS * 10)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=long_after_its_last_beat)
    assert training.release_stale_runs() == []
    assert ModelVersion.objects.get(algorithm="content_based").status == "ready"  # activated with its set
    last = training.training_run_execute(run_id=run.pk, algorithms=["two_tower"])
    assert last.status == "succeeded" and last.started_at == first.started_at
    assert set(last.metrics) == {"content_based", "two_tower"}
    # the last part tunes the weights over both parts' components and measures them together: the weights
    # measured are the weights served
    assert set(last.tuned["weights"]) == {"content_based", "two_tower", "popularity"}
    assert last.tuned["weights"] == last.served["weights"] and last.tuned["by_role"] == last.served["weights_by_role"]
    assert set(ModelVersion.objects.values_list("status", flat=True)) == {"active"}


def test_a_handed_on_run_no_worker_takes_is_given_up_after_hours(world):
    run = training.training_run_create(algorithms=["content_based", "two_tower"], force_retrain=True, trigger="api")
    training.training_run_execute(run_id=run.pk, algorithms=["content_based"], finish=False)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - training.STALE_QUEUED_AFTER
                                                 - timedelta(minutes=1))
    assert training.release_stale_runs() == [run.pk]
    assert "no worker picked the run up" in TrainingRun.objects.get(pk=run.pk).error


def test_the_two_tower_goes_to_the_gpu_queue_after_the_rest():
    run = TrainingRun(pk=7, algorithms=["two_tower", "content_based"])
    chain = tasks.signature_for(run)
    queues = [(task.args[1], task.options["queue"]) for task in chain.tasks]
    assert queues == [(["content_based"], "default"), (["two_tower"], "gpu")]


def test_scheduled_retraining_skips_when_nothing_changed(world):
    train(list(Algorithm.values))
    assert tasks.scheduled_retrain() == "skipped: up to date"


def test_a_nightly_retraining_is_scheduled_out_of_the_box():
    from django_celery_beat.models import PeriodicTask

    from recsys_site.celery import app

    task = PeriodicTask.objects.get(task="ml.scheduled_retrain")
    assert task.enabled and (task.crontab.minute, task.crontab.hour) == ("0", "3")
    assert task.task in app.tasks  # beat sends it by name: the worker must know that name


def test_ease_is_skipped_with_a_reason_over_its_item_cap_and_the_others_train(world, monkeypatch):
    from ml.core import collaborative

    monkeypatch.setattr(collaborative, "EASE_MAX_ITEMS", 10)
    run = train(["content_based", "ease"])
    assert run.status == "succeeded"
    assert "at most 10 items" in run.skipped["ease"]
    assert list(ModelVersion.objects.values_list("algorithm", "status")) == [("content_based", "active")]
    assert set(run.tuned["weights"]) == {"content_based", "popularity"}  # popularity: the ranker holds it


def test_a_clearly_worse_set_is_kept_ready_with_the_reason_and_the_active_one_keeps_serving(world):
    from ml import selectors

    first = train(["content_based", "collaborative"])
    assert first.not_activated == "" and first.served["metrics"]["all"]["ndcg"] < 0.9
    TrainingRun.objects.filter(pk=first.pk).update(served=measured_as(0.9))
    second = train(["content_based", "collaborative"], force=True)
    assert second.status == "succeeded"
    assert "more than 2% below the active set's 0.9000 (training run" in second.not_activated
    assert set(ModelVersion.objects.filter(status="active").values_list("training_run", flat=True)) == {first.pk}
    assert set(ModelVersion.objects.filter(training_run=second).values_list("status", flat=True)) == {"ready"}
    assert selectors.tuned_run().pk == first.pk  # its tuned weights serve, not the refused run's


@pytest.fixture
def active_set():
    """An active collaborative version from a run measured at NDCG@10 0.1."""
    run = TrainingRun.objects.create(algorithms=["collaborative"], status="succeeded", in_flight=None,
                                     served=measured_as(0.1))
    ModelVersion.objects.create(algorithm="collaborative", version=1, status="active", training_run=run)
    return run


@pytest.mark.parametrize("ndcg, popularity, refused", [
    (0.0985, 0.0, ""),  # within 2% of the active set's: noise between two holdouts
    (0.2, 0.0, ""),
    (0.097, 0.0, "more than 2% below the active set's 0.1000"),
    (0.2, 0.25, "below popularity's 0.2500"),
])
def test_a_set_replaces_the_active_one_unless_clearly_worse_or_below_popularity(active_set, ndcg, popularity,
                                                                                refused):
    new = TrainingRun.objects.create(algorithms=["collaborative"], served=measured_as(ndcg, popularity))
    why = training._why_not_activated(new)
    assert (refused in why) if refused else why == ""


def test_with_nothing_active_any_measured_set_is_activated():
    new = TrainingRun.objects.create(algorithms=["collaborative"], served=measured_as(0.01, popularity=0.5))
    assert training._why_not_activated(new) == ""


def test_only_the_newest_measured_runs_held_out_split_is_kept_on_disk(world, settings):
    first = train(["content_based"])
    assert (Path(settings.MODEL_DIR) / "runs" / str(first.pk) / "holdout" / "content_based").is_dir()
    second = train(["content_based"], force=True)
    assert [folder.name for folder in (Path(settings.MODEL_DIR) / "runs").iterdir()] == [str(second.pk)]


def test_a_run_that_retrains_some_of_the_active_algorithms_activates_its_versions_beside_the_others(world):
    first = train(["content_based", "collaborative"])
    again = train(["collaborative"], force=True)
    assert again.status == "succeeded" and again.not_activated == ""
    assert ModelVersion.objects.get(algorithm="collaborative", status="active").training_run_id == again.pk
    assert ModelVersion.objects.get(algorithm="content_based", status="active").training_run_id == first.pk


def test_peak_memory_counts_what_numpy_allocates_outside_pythons_allocator():
    import numpy as np

    from ml.training import PeakMemory

    with PeakMemory() as before:
        pass
    with PeakMemory() as holding:
        block = np.ones(64 * 2**20 // 8)  # 64 MB, every page written: resident
    assert holding.megabytes >= before.megabytes + 60
    del block


# ---------------------------------------------------------------- progress, phase by phase


def test_a_run_records_each_phase_with_every_algorithms_progress_time_and_memory(world):
    run = train(["content_based", "collaborative", "two_tower"])  # steps, ALS iterations, epochs
    assert run.status == "succeeded", run.error
    phases = run.progress["phases"]
    assert [phase["name"] for phase in phases] == ["reading", "validation", "final_fit",
                                                    "holdout_fit", "measuring"]
    assert all(phase["seconds"] is not None and phase["seconds"] >= 0 for phase in phases)
    assert set(phases[1]["algorithms"]) == set(run.algorithms) | {"popularity"}
    for phase in phases:
        for algorithm, entry in phase["algorithms"].items():
            assert entry["finished"] and entry["fraction"] == 1 and not entry["failed"], (phase["name"], algorithm)
    # Every fit in epochs has its own losses, learning rates and best epoch, in each phase that fitted it.
    for name in ("validation", "final_fit"):
        entry = next(p for p in phases if p["name"] == name)["algorithms"]["two_tower"]
        epochs = len(entry["train_loss"])
        assert epochs == entry["done"] == 2 and len(entry["val_loss"]) == len(entry["lr"]) == epochs
        assert all(lr > 0 for lr in entry["lr"]) and 1 <= entry["best_epoch"] <= epochs
    # Settings compared: content's and ALS's grids, counted in their entries.
    validation = phases[1]["algorithms"]
    assert validation["collaborative"]["settings"] > 1 and validation["content_based"]["settings"] > 1
    # The final fit: each version's time and the process's peak memory, as its version records them.
    final = phases[2]["algorithms"]
    for version in ModelVersion.objects.filter(training_run=run):
        entry = final[version.algorithm]
        assert entry["seconds"] == version.training_seconds and entry["peak_memory_mb"] == version.peak_memory_mb
        assert version.peak_memory_mb > 50
        assert isinstance(version.metrics["users"], int)  # a count: 249, not 249.0
    assert isinstance(run.tuned["k"], int)


def test_train_models_names_each_phase_and_says_how_long_it_all_took(world):
    out = StringIO()
    call_command("train_models", "--algorithms", "content_based,two_tower", stdout=out)
    text = out.getvalue()
    for heading in ("[1/5] Reading the platform's data", "[2/5] Choosing settings on validation",
                    "[3/5] Final fit on all the data", "[4/5] Fitting the held-out measurement's models",
                    "[5/5] Measuring the set as served"):
        assert heading in text, text
    assert text.count("done in ") == 5
    assert "Content-based setting 1/" in text and "Content-based: setting chosen in" in text
    assert "Two-Tower epoch 2/2: train loss" in text and "learning rate 0.001" in text
    assert re.search(r"Content-based: fitted in [\d.]+ s on cpu, peak memory [\d.]+ MB", text), text
    assert re.search(r"Two-Tower v1: active, served alone NDCG@10 [\d.]+, fitted in [\d.]+ s on cpu, "
                     r"peak memory [\d.]+ MB", text), text
    assert re.search(r"Training run \d+ succeeded in [\d.]+ s\.", text), text


def test_a_failed_run_keeps_its_progress_up_to_where_it_stopped(world, monkeypatch):
    monkeypatch.setattr(ml_evaluation, "platform_snapshot", lambda: 1 / 0)
    run = train(["content_based"])
    assert run.status == "failed" and "ZeroDivisionError" in run.error
    [reading] = run.progress["phases"]
    assert reading["name"] == "reading" and reading["seconds"] is None  # stopped there
    table = progress_table(run.progress, running=False)
    assert [row.state for row in table.rows] == ["stopped"]
