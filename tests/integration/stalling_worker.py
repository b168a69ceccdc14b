"""The project's Celery app for a worker that hangs for good in the middle of a training run.

`celery -A tests.integration.stalling_worker worker` is the real worker, except that once a run has recorded
its first epoch it touches the file named by $STALL_MARKER and never goes on. A test can then kill it at a
known point, mid-run, however fast or slow the machine trains, instead of racing the end of the run.
"""
import os
import threading
from pathlib import Path

from django.db import transaction
from django.db.models.signals import post_save

from recsys_site.celery import app

__all__ = ["app"]


def _hang() -> None:
    Path(os.environ["STALL_MARKER"]).touch()
    threading.Event().wait()


def _hang_after_the_first_epoch(sender, instance, **kwargs) -> None:
    if instance.status == "running" and instance.progress.get("epoch"):
        transaction.on_commit(_hang)  # after the commit, so that the epoch and the heartbeat can be read


post_save.connect(_hang_after_the_first_epoch, sender="ml.TrainingRun", weak=False)
