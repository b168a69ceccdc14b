"""A real Celery worker process, consuming both queues from Redis, on the test database."""
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
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
def celery_worker_process(model_dir, tmp_path, transactional_db):
    """Starts `celery worker -Q default,gpu` as a separate process; yields (process, node name)."""
    with _worker("recsys_site", model_dir, tmp_path / "worker.log") as started:
        yield started


@pytest.fixture
def stalling_worker_process(model_dir, tmp_path, transactional_db):
    """The same worker, except that it hangs for good once a run has recorded its first epoch (see
    stalling_worker.py); yields (process, marker), the marker file existing from the moment it hangs."""
    marker = tmp_path / "stalled"
    with _worker("tests.integration.stalling_worker", model_dir, tmp_path / "worker.log",
                 STALL_MARKER=str(marker)) as (worker, _):
        yield worker, marker
    # A worker killed mid-task leaves its message unacknowledged; Redis would hand it out again in an hour,
    # perhaps to a later session in which a run of the same id is another run. Drop it.
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        channel.client.delete(channel.unacked_key, channel.unacked_index_key)


@pytest.fixture
def pausing_worker_process(model_dir, tmp_path, transactional_db):
    """The same worker, pausing at each attempt's first epoch (see pausing_worker.py) and retrying a part once;
    yields the folder of its pause and resume markers."""
    folder = tmp_path / "pauses"
    folder.mkdir()
    with _worker("tests.integration.pausing_worker", model_dir, tmp_path / "worker.log", PAUSE_DIR=str(folder),
                 TRAINING_RETRIES="1"):
        yield folder


def terminate_other_backends() -> int:
    """Kill every other connection to the test database (the worker's), as a database restart or
    failover would; returns how many were killed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


@contextmanager
def _worker(app_module: str, model_dir: Path, log: Path, **extra_env):
    if not settings.CELERY_BROKER_URL:
        pytest.skip("the worker integration tests need a broker (CI sets REDIS_URL)")
    env = {**os.environ, "DATABASE_URL": _database_url(), "MODEL_DIR": str(model_dir),
           "TWO_TOWER_MAX_EPOCHS": "3", "TRAINING_STALE_AFTER_SECONDS": str(settings.TRAINING_STALE_AFTER_SECONDS),
           **extra_env}
    node = f"itest-{uuid.uuid4().hex[:8]}@localhost"
    _purge_queues()
    # The log goes to a file, not a pipe: nobody reads a pipe while the test runs, and a worker that fills
    # one blocks on its next log line.
    with log.open("w") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app_module, "worker", "-Q", "default,gpu", "--pool", "solo",
             "--loglevel", "INFO", "-n", node, "--without-gossip", "--without-mingle"],
            cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until_ready(worker, node, log)
        yield worker, node
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        _purge_queues()


def _purge_queues() -> None:
    """Empty both queues the worker consumes, so that it trains only what its own test queues.

    By name: `app.control.purge()` empties only the queues this process has routed a task to so far."""
    with app.connection_for_write() as conn:
        for queue in ("default", "gpu"):
            conn.default_channel.queue_purge(queue)


def _wait_until_ready(worker: subprocess.Popen, node: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited early:\n{log.read_text()}")
        if app.control.ping(destination=[node], timeout=1):
            return
    raise RuntimeError(f"the worker did not answer a ping within {timeout:.0f} s:\n{log.read_text()}")


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
