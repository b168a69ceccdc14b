"""The project's Celery app for a worker that pauses at a known point of each attempt of a training part.

`celery -A tests.integration.pausing_worker worker` is the real worker, except that once an attempt has measured its
set (its versions saved and ready, not yet activated) it touches ``$PAUSE_DIR/paused-<attempt>`` and waits until
the test creates ``$PAUSE_DIR/resume-<attempt>``: the test can then cut the worker's database connections
while the attempt still has its work ahead of it, however fast the machine trains. With ``$TRAINING_RETRIES``
set, a part is retried that many times instead of ml.tasks.DATABASE_RETRIES.
"""
import os
import time
from pathlib import Path

from celery.signals import task_prerun, worker_init
from django.db import transaction
from django.db.models.signals import post_save

from recsys_site.celery import app

__all__ = ["app"]
_attempt = {"number": 0, "paused": False}


@worker_init.connect(weak=False)
def _set_retries(**kwargs) -> None:
    if os.environ.get("TRAINING_RETRIES"):
        app.tasks["ml.train_algorithms"].max_retries = int(os.environ["TRAINING_RETRIES"])


@task_prerun.connect(weak=False)
def _new_attempt(**kwargs) -> None:
    _attempt["number"] += 1
    _attempt["paused"] = False


def _pause() -> None:
    folder, number = Path(os.environ["PAUSE_DIR"]), _attempt["number"]
    (folder / f"paused-{number}").touch()
    deadline = time.monotonic() + 120
    while not (folder / f"resume-{number}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _pause_once_the_set_is_measured(sender, instance, update_fields=None, **kwargs) -> None:
    if update_fields and "served" in update_fields and not _attempt["paused"]:
        _attempt["paused"] = True
        transaction.on_commit(_pause)  # after the commit: the measurement is saved, the connection idle


post_save.connect(_pause_once_the_set_is_measured, sender="ml.TrainingRun", weak=False)
