"""A real Celery worker process, consuming both queues from Redis, on the test database."""
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from recsys_site.celery import app

REPO = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker integration tests need PostgreSQL (CI runs them; set DATABASE_URL)")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def model_dir(tmp_path, settings):
    settings.MODEL_DIR = tmp_path / "models"
    return settings.MODEL_DIR


@pytest.fixture
def celery_worker_process(model_dir, transactional_db):
    """Starts `celery worker -Q default,gpu` as a separate process; yields (process, node name)."""
    if not settings.CELERY_BROKER_URL:
        pytest.skip("the worker integration tests need a broker (CI sets REDIS_URL)")
    env = {**os.environ, "DATABASE_URL": _database_url(), "MODEL_DIR": str(model_dir),
           "TWO_TOWER_MAX_EPOCHS": "3", "TRAINING_STALE_AFTER_SECONDS": str(settings.TRAINING_STALE_AFTER_SECONDS)}
    node = f"itest-{uuid.uuid4().hex[:8]}@localhost"
    app.control.purge()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "recsys_site", "worker", "-Q", "default,gpu", "--pool", "solo",
         "--loglevel", "INFO", "-n", node, "--without-gossip", "--without-mingle"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until_ready(worker, node)
        yield worker, node
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        app.control.purge()


def _wait_until_ready(worker: subprocess.Popen, node: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited early:\n{worker.stdout.read()}")
        if app.control.ping(destination=[node], timeout=1):
            return
    raise RuntimeError("the worker did not answer a ping within 90 s")


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
