"""Celery tasks: a thin shell that takes ids and calls the training service.

The Two-Tower goes to queue ``gpu`` (a worker with CUDA uses it), the others to ``default``. A run
that asks for both is a chain: the default-queue part first, then the GPU part closes the run.
"""
from celery import chain, shared_task
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from recsys_site.celery import app
from recsys_site.exceptions import Conflict, ServiceUnavailable

from . import training
from .models import Algorithm, TrainingRun

GPU_ALGORITHMS = {Algorithm.TWO_TOWER}


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
    """Send the run to the broker; when the broker is unreachable the run is failed and 503 raised.

    The broker is the one settings name now, reached through a connection opened for this call, so no
    pooled connection or producer from earlier calls can stand in for it.
    """
    signature = signature_for(run)
    if not settings.CELERY_BROKER_URL:  # none configured (development): the run trains in this process
        result = signature.apply()
    else:
        try:
            with broker_connection(settings.CELERY_BROKER_URL) as connection:
                connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
                result = signature.apply_async(connection=connection, retry=False)
        except (BrokerError, OSError, RedisError) as exc:
            training.training_run_fail(run=run, error=f"Broker unreachable: {type(exc).__name__}: {exc}")
            raise ServiceUnavailable("The task broker is unreachable; training was not queued. Try again later.") \
                from exc
    run.refresh_from_db()
    if not run.celery_task_id:
        TrainingRun.objects.filter(pk=run.pk).update(celery_task_id=result.id)
        run.celery_task_id = result.id
    return run


def training_run_request(*, algorithms: list[str], force_retrain: bool, trigger: str,
                         requested_by=None) -> TrainingRun | None:
    """Create and enqueue a run (None when nothing changed); Conflict / ServiceUnavailable as those do."""
    run = training.training_run_create(algorithms=algorithms, force_retrain=force_retrain, trigger=trigger,
                                       requested_by=requested_by)
    return run and enqueue(run)
