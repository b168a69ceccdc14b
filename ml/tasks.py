"""Celery tasks: a thin shell that takes ids and calls the training service.

The Two-Tower goes to queue ``gpu`` (a worker with CUDA uses it), the others to ``default``. A run
that asks for both is a chain: the default-queue part first, then the GPU part closes the run.

With no broker configured (development, ``make demo``) a run trains on a thread of the process that asked
for it, and the request answers at once all the same (``enqueue``).
"""
import logging
import threading
import uuid

from celery import chain, shared_task
from django.conf import settings
from django.db import connection as db_connection
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from recsys_site.celery import app
from recsys_site.exceptions import Conflict, ServiceUnavailable

from . import training
from .models import Algorithm, TrainingRun

GPU_ALGORITHMS = {Algorithm.TWO_TOWER}
logger = logging.getLogger(__name__)


# A part that loses the database is sent again, after 5 s, 10 s, 20 s (each shortened at random, so that
# the workers of a restarted database do not all come back at once); the last attempt records the failure.
DATABASE_RETRIES = 3


@shared_task(bind=True, name="ml.train_algorithms", acks_late=True, autoretry_for=training.DATABASE_BLIPS,
             max_retries=DATABASE_RETRIES, retry_backoff=5, retry_backoff_max=60, retry_jitter=True)
def train_algorithms(self, run_id: int, algorithms: list[str], finish: bool = True) -> str:
    last_attempt = self.request.retries >= self.max_retries
    return training.training_run_execute(run_id=run_id, algorithms=algorithms, finish=finish,
                                         raise_database_blips=not last_attempt).status


@shared_task(name="ml.scheduled_retrain")
def scheduled_retrain() -> str:
    """Celery beat's periodic retraining: skipped when nothing changed since the algorithms last trained."""
    try:
        run = training_run_request(algorithms=list(Algorithm.values), force_retrain=False, trigger="beat")
    except Conflict as exc:
        return f"skipped: {exc.detail}"
    return f"queued run {run.pk}" if run else "skipped: up to date"


def signature_for(run: TrainingRun):
    """One task per queue, default first; the last one closes the run."""
    cpu = [a for a in run.algorithms if a not in GPU_ALGORITHMS]
    gpu = [a for a in run.algorithms if a in GPU_ALGORITHMS]
    parts = []
    if cpu:
        parts.append(train_algorithms.si(run.pk, cpu, finish=not gpu).set(queue="default"))
    if gpu:
        parts.append(train_algorithms.si(run.pk, gpu, finish=True).set(queue="gpu"))
    return chain(*parts) if len(parts) > 1 else parts[0]


# How long a request waits on the broker, to connect and then for each reply: a broker that is down, or
# that drops packets or never answers, costs the caller this once (no retries), then 503, rather than a
# sync worker held for seconds while kombu or redis-py dial again.
BROKER_TIMEOUT_SECONDS = 0.5


def broker_connection(url: str):
    """A new connection to the broker at ``url`` that gives up after BROKER_TIMEOUT_SECONDS at every
    step (connecting, each command, the publish), and never retries: for requests, not for workers."""
    timeout = BROKER_TIMEOUT_SECONDS
    return app.connection_for_write(url, connect_timeout=timeout, transport_options={
        "socket_connect_timeout": timeout, "socket_timeout": timeout, "retry_on_timeout": False,
        "max_retries": 0})


def broker_reachable(url: str) -> None:
    """Returns when the broker at ``url`` answers within BROKER_TIMEOUT_SECONDS; raises BrokerError or
    OSError otherwise (the health check's probe)."""
    with broker_connection(url) as connection:
        connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
        connection.default_channel.client.ping()


def enqueue(run: TrainingRun) -> TrainingRun:
    """Send the run to the broker; when the broker is unreachable the run is failed and 503 raised. With no
    broker configured the run trains on a thread of this process (``train_in_background``); either way the
    caller answers at once.

    The broker is the one settings name now, reached through a connection opened for this call, so no
    pooled connection or producer from earlier calls can stand in for it.
    """
    if not settings.CELERY_BROKER_URL:  # none configured (development): the run trains in this process
        task_id = train_in_background(run)
    else:
        signature = signature_for(run)
        try:
            with broker_connection(settings.CELERY_BROKER_URL) as connection:
                connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
                result = signature.apply_async(connection=connection, retry=False)
        except (BrokerError, OSError, RedisError) as exc:
            training.training_run_fail(run=run, error=f"Broker unreachable: {type(exc).__name__}: {exc}")
            raise ServiceUnavailable("The task broker is unreachable; training was not queued. Try again later.") \
                from exc
        task_id = result.id
    run.refresh_from_db()
    if not run.celery_task_id:
        TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=task_id)
        run.celery_task_id = task_id
    return run


def train_in_background(run: TrainingRun) -> str:
    """Train ``run`` without a broker, on a thread of this process (a daemon: a server stopped mid-run leaves
    the run to release_stale_runs, as a worker that died would); returns the id it is known by. The caller
    answers at once, and the run's status and progress say how it goes. One part for all its algorithms:
    the queues' split puts the Two-Tower on a GPU worker, and here every algorithm trains in one process.

    Inside a transaction (a test's, or a caller's own) a thread could not see the run, which is not committed
    yet: the run then trains here and now, before this returns, as it did before runs had threads.
    """
    task_id = str(uuid.uuid4())
    signature = train_algorithms.si(run.pk, list(run.algorithms), finish=True)
    TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=task_id)
    if db_connection.in_atomic_block:
        signature.apply()
        return task_id

    def train() -> None:
        try:
            signature.apply()
        except Exception:  # the task records its own failures on the run; this is what escaped even that
            logger.exception("training run %s: its background thread failed", run.pk)
        finally:
            db_connection.close()  # the thread's own connection, which nothing else will close

    threading.Thread(target=train, name=f"training-run-{run.pk}", daemon=True).start()
    return task_id


def training_run_request(*, algorithms: list[str], force_retrain: bool, trigger: str,
                         requested_by=None) -> TrainingRun | None:
    """Create and enqueue a run (None when nothing changed); Conflict / ServiceUnavailable as those do."""
    run = training.training_run_create(algorithms=algorithms, force_retrain=force_retrain, trigger=trigger,
                                       requested_by=requested_by)
    return run and enqueue(run)
