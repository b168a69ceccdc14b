"""Training: request a run (the lock, the up-to-date check), execute it (fit, measure, save, record,
activate), and notice runs whose worker died.

The Celery tasks in ``ml/tasks.py`` are a thin shell around :func:`training_run_execute`.
"""
import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from ml.core import data as engine_data
from ml.core import features
from ml.core.data import EngineError, InteractionData
from ml.core.metrics import evaluate_recommender
from ml.core.tuning import default_component
from profiles.models import Developer, Founder, Interaction, Investor, Position, Startup
from recsys_site.exceptions import Conflict, DomainError

from . import platform_data
from .models import Algorithm, ModelVersion, TrainingRun
from .services import model_version_activate

logger = logging.getLogger(__name__)

MIN_TWO_TOWER_INTERACTIONS = 500
# A queued run no worker picked up within this long is given up (no worker is consuming the queue).
STALE_QUEUED_AFTER = timedelta(hours=2)
# A new version replaces the active one unless its held-out NDCG@10 is worse by more than this.
ACTIVATION_TOLERANCE = 0.01
METRICS_SEED = 0
# Held-out metrics are averaged over at most this many users: enough for a stable mean (standard error
# about 0.005 NDCG), and scoring every user of a large platform against the whole catalog would take
# longer than training.
METRICS_MAX_USERS = 2000
# The platform's features are fixed transforms (documented in ml.core.features), so the spec saved
# beside each model names them and their widths rather than fitted parameters.
PLATFORM_FEATURE_SPEC = {
    "user_features": {"encoder": "ml.core.features.platform_user_features", "dims": features.USER_FEATURE_DIM},
    "item_features": {"encoder": "ml.core.features.platform_item_features", "dims": features.ITEM_FEATURE_DIM},
    "content_terms": {"encoder": "ml.core.features.platform_content"},
    "item_ids": "<item_type>:<primary key>", "user_ids": "user primary key",
}
# Bump when the way models are built changes, so that "nothing changed" no longer holds.
ENGINE_PARAMETERS = {"engine": 1, "kind_weights": engine_data.KIND_WEIGHTS, "negatives": engine_data.NEGATIVE_KINDS}


def data_fingerprint() -> str:
    """A cheap digest of everything training reads: row counts, largest ids and latest edits.

    Aggregates instead of a scan, so the API can answer "up to date" in milliseconds.
    """
    parts = {"parameters": {**ENGINE_PARAMETERS, "two_tower_max_epochs": settings.TWO_TOWER_MAX_EPOCHS}}
    for model in (Interaction, Developer, Founder, Investor, Startup, Position,
                  Developer.skills.through, Developer.preferred_industries.through, Founder.skills.through,
                  Investor.preferred_industries.through, Startup.required_skills.through,
                  Startup.founders.through, Position.required_skills.through):
        aggregates = {"n": models.Count("pk"), "max": models.Max("pk")}
        if any(f.name == "updated_at" for f in model._meta.fields):
            aggregates["edited"] = models.Max("updated_at")
        parts[model._meta.db_table] = model.objects.aggregate(**aggregates)
    encoded = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def artifact_dir(algorithm: str, version: int) -> Path:
    return Path(settings.MODEL_DIR) / algorithm / str(version)


# ---------------------------------------------------------------- requesting a run


def _heartbeat_seconds() -> float:
    """Beats often enough that a live worker is never mistaken for a dead one."""
    return settings.TRAINING_STALE_AFTER_SECONDS / 6


def release_stale_runs() -> list[int]:
    """Mark in-flight runs whose worker died (or that no worker took) as failed; returns their ids."""
    now = timezone.now()
    stale_running = now - timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS)
    # A queued run waits from its creation, or from its last beat when its first part handed it on.
    stale = TrainingRun.objects.annotate(waiting_since=Coalesce("heartbeat_at", "created_at")).filter(
        models.Q(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=stale_running)
        | models.Q(status=TrainingRun.Status.RUNNING, heartbeat_at__isnull=True, started_at__lt=stale_running)
        | models.Q(status=TrainingRun.Status.QUEUED, waiting_since__lt=now - STALE_QUEUED_AFTER))
    released = []
    for run in stale:
        reason = ("the worker stopped sending heartbeats (it crashed or was killed)"
                  if run.status == TrainingRun.Status.RUNNING else "no worker picked the run up")
        _finish(run, TrainingRun.Status.FAILED, error=f"Marked failed: {reason}.")
        ModelVersion.objects.filter(training_run=run, status=ModelVersion.Status.TRAINING).update(
            status=ModelVersion.Status.FAILED)
        released.append(run.pk)
    return released


def training_run_in_flight() -> TrainingRun | None:
    release_stale_runs()
    return TrainingRun.objects.filter(in_flight=True).first()


def training_is_up_to_date(algorithms: list[str], fingerprint: str) -> bool:
    """True when training ``algorithms`` again would only repeat what was done on exactly this data and
    these parameters (``fingerprint``): each has an active version trained on it, or a completed run
    already trained one on it (kept ready because it was not better, or rolled back from), or skipped
    it on this data for want of interactions. Training is seeded, so a repeat would change nothing.
    """
    versions = ModelVersion.objects.filter(algorithm__in=algorithms, data_fingerprint=fingerprint).filter(
        models.Q(status=ModelVersion.Status.ACTIVE)
        | models.Q(status__in=[ModelVersion.Status.READY, ModelVersion.Status.ARCHIVED],
                   training_run__status=TrainingRun.Status.SUCCEEDED))
    skips = TrainingRun.objects.filter(data_fingerprint=fingerprint, status__in=[
        TrainingRun.Status.SUCCEEDED, TrainingRun.Status.SKIPPED]).values_list("skipped", flat=True)
    return set(algorithms) <= set(versions.values_list("algorithm", flat=True)).union(*skips)


def training_run_create(*, algorithms: list[str], force_retrain: bool, trigger: str,
                        requested_by=None) -> TrainingRun | None:
    """A queued run holding the training lock, or None when nothing changed and ``force_retrain`` is off.

    Raises Conflict (409) while another run is queued or running.
    """
    unknown = sorted(set(algorithms) - set(Algorithm.values))
    if unknown or not algorithms:
        raise DomainError(f"algorithms must be a non-empty subset of {Algorithm.values}; got {algorithms}.")
    running = training_run_in_flight()
    if running is not None:
        raise Conflict(f"Training run {running.pk} is already {running.status}.", training_run_id=running.pk)
    if not force_retrain and training_is_up_to_date(algorithms, data_fingerprint()):
        return None
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(algorithms=list(dict.fromkeys(algorithms)),
                                              force_retrain=force_retrain, trigger=trigger,
                                              requested_by=requested_by)
    except IntegrityError:  # another request took the lock between our check and our insert
        running = TrainingRun.objects.filter(in_flight=True).first()
        raise Conflict("A training run is already queued or running.",
                       training_run_id=getattr(running, "pk", None)) from None


def training_run_fail(*, run: TrainingRun, error: str) -> None:
    _finish(run, TrainingRun.Status.FAILED, error=error)


# ---------------------------------------------------------------- executing a run


class _Heartbeat:
    """Writes the run's heartbeat from a background thread while the worker is busy fitting."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(_heartbeat_seconds()):
                TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()

    def __enter__(self):
        TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=_heartbeat_seconds() + 5)


def training_run_execute(*, run_id: int, algorithms: list[str], finish: bool = True,
                         progress: Callable[[str, str, dict], None] | None = None) -> TrainingRun:
    """Train ``algorithms`` for the run; with ``finish`` the run is closed afterwards (and the lock freed),
    without it the run is queued again for its next part (the Two-Tower, on another queue).

    ``progress(algorithm, event, info)`` also hears every engine event (a console, say). A failure is
    recorded on the run and the active versions keep serving.
    """
    run = TrainingRun.objects.get(pk=run_id)
    if run.status not in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
        logger.warning("training run %s is %s; not training", run_id, run.status)
        return run
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=Coalesce("started_at", models.Value(timezone.now())))
    try:
        with _Heartbeat(run_id):
            fingerprint = data_fingerprint()
            TrainingRun.objects.filter(pk=run_id).update(data_fingerprint=fingerprint)
            data = platform_data.training_data().validate()
            for algorithm in algorithms:
                _train_one(run_id, algorithm, data, fingerprint, progress)
    except Exception as exc:  # any failure is the run's, recorded for the operator; serving carries on
        logger.exception("training run %s failed", run_id)
        run.refresh_from_db()
        _finish(run, TrainingRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        return run
    run.refresh_from_db()
    if finish:
        trained = ModelVersion.objects.filter(training_run=run).exists()
        _finish(run, TrainingRun.Status.SUCCEEDED if trained else TrainingRun.Status.SKIPPED)
    else:  # no heartbeat until a worker of the next queue takes it: running would soon look dead
        run.status, run.heartbeat_at = TrainingRun.Status.QUEUED, timezone.now()
        run.save(update_fields=["status", "heartbeat_at"])
    return run


def _train_one(run_id: int, algorithm: str, data: InteractionData, fingerprint: str,
               echo: Callable[[str, str, dict], None] | None) -> ModelVersion | None:
    reason = _why_not_trainable(algorithm, data)
    if reason:
        _update_run(run_id, lambda run: run.skipped.update({algorithm: reason}))
        return None
    run = TrainingRun.objects.get(pk=run_id)
    version = ModelVersion.objects.create(
        algorithm=algorithm, version=_next_version(algorithm), training_run=run, trigger=run.trigger,
        data_fingerprint=fingerprint, n_users=data.n_users, n_items=data.n_items,
        n_interactions=int(data.matrix.nnz))
    try:
        started = time.perf_counter()
        metrics = _held_out_metrics(data, new_model(algorithm), _progress(run_id, algorithm, echo))
        model = new_model(algorithm).fit(data, progress=_progress(run_id, algorithm, echo))
        model.metrics = metrics
        path = artifact_dir(algorithm, version.version)
        shutil.rmtree(path, ignore_errors=True)
        model.save(path)
        (path / "feature_spec.json").write_text(json.dumps(PLATFORM_FEATURE_SPEC, indent=1))
    except Exception:
        version.status = ModelVersion.Status.FAILED
        version.save(update_fields=["status"])
        raise
    version.status = ModelVersion.Status.READY
    version.artifact_path, version.metrics = str(path), metrics
    version.training_seconds = round(time.perf_counter() - started, 2)
    version.device = _device_of(model)
    version.config = _config_of(model)
    version.save()
    _update_run(run_id, lambda run: run.metrics.update({algorithm: metrics}))
    _activate_if_not_worse(version)
    return version


def new_model(algorithm: str):
    """An unfitted model with the engine's defaults, the Two-Tower's epochs capped by settings."""
    model = default_component(algorithm, seed=METRICS_SEED)
    cap = settings.TWO_TOWER_MAX_EPOCHS
    if algorithm == Algorithm.TWO_TOWER and cap > 0:
        model.config = replace(model.config, epochs=min(model.config.epochs, cap))
    return model


def _why_not_trainable(algorithm: str, data: InteractionData) -> str:
    if algorithm == Algorithm.TWO_TOWER and data.matrix.nnz < MIN_TWO_TOWER_INTERACTIONS:
        return (f"needs at least {MIN_TWO_TOWER_INTERACTIONS} interactions (distinct user-item pairs), "
                f"the platform has {data.matrix.nnz}")
    return ""


def _held_out_metrics(data: InteractionData, model, progress) -> dict:
    """Metrics@10 of ``model`` fitted without a random 20% of each user's interactions."""
    train, heldout = engine_data.holdout_split(data.matrix, 0.2, seed=METRICS_SEED)
    heldout = _sample_users(heldout, METRICS_MAX_USERS)
    if heldout.nnz == 0:
        return {}
    split = data.with_matrix(train)
    try:
        model.fit(split, progress=progress)
    except EngineError as exc:  # e.g. the split leaves too little for the Two-Tower: no metrics
        return {"error": str(exc)}
    return {name: round(float(value), 5) for name, value in evaluate_recommender(model, split, heldout).items()}


def _sample_users(heldout, limit: int):
    """``heldout`` with only ``limit`` randomly chosen users' rows kept (all of them when fewer)."""
    users = np.flatnonzero(np.diff(heldout.indptr))
    if len(users) <= limit:
        return heldout
    kept = np.zeros(heldout.shape[0], dtype=bool)
    kept[np.random.default_rng(METRICS_SEED).choice(users, size=limit, replace=False)] = True
    coo = heldout.tocoo()
    rows = kept[coo.row]
    return sp.csr_matrix((coo.data[rows], (coo.row[rows], coo.col[rows])), shape=heldout.shape)


def _progress(run_id: int, algorithm: str, echo: Callable[[str, str, dict], None] | None = None):
    """A progress callback that writes each epoch's losses to the run (and tells ``echo``)."""
    def report(event: str, info: dict) -> None:
        if echo:
            echo(algorithm, event, info)
        if event != "epoch":
            return

        def record(run: TrainingRun) -> None:
            if run.progress.get("algorithm") != algorithm or info.get("epoch", 0) <= run.progress.get("epoch", 0):
                run.progress = {"algorithm": algorithm, "train_loss": [], "val_loss": []}
            run.progress.update(epoch=info.get("epoch"), epochs=info.get("epochs"))
            run.progress["train_loss"].append(info.get("train_loss"))
            run.progress["val_loss"].append(info.get("val_loss"))
        _update_run(run_id, record)
    return report


def _update_run(run_id: int, change) -> None:
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        change(run)
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["progress", "metrics", "skipped", "heartbeat_at"])


def _next_version(algorithm: str) -> int:
    latest = ModelVersion.objects.filter(algorithm=algorithm).aggregate(v=models.Max("version"))["v"]
    return (latest or 0) + 1


def _device_of(model) -> str:
    """Where the model trained: the Two-Tower resolves "auto" to cuda or cpu; the rest use numpy."""
    if getattr(model, "name", "") == Algorithm.TWO_TOWER:
        from ml.core.two_tower import resolve_device

        return resolve_device(model.config.device).type
    return "cpu"


def _config_of(model) -> dict:
    config = getattr(model, "config", None)
    if config is None:
        return {}
    return json.loads(json.dumps(asdict(config) if is_dataclass(config) else dict(config), default=str))


def _activate_if_not_worse(version: ModelVersion) -> None:
    active = ModelVersion.objects.filter(algorithm=version.algorithm, status=ModelVersion.Status.ACTIVE).first()
    new, old = version.metrics.get("ndcg"), getattr(active, "metrics", {}).get("ndcg")
    if active is None or new is None or old is None or new >= old - ACTIVATION_TOLERANCE:
        model_version_activate(algorithm=version.algorithm, version=version.version)


def _finish(run: TrainingRun, status: str, error: str = "") -> None:
    run.status, run.error, run.in_flight, run.finished_at = status, error or run.error, None, timezone.now()
    run.save(update_fields=["status", "error", "in_flight", "finished_at"])

