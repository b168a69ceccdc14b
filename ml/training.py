"""Training: request a run (the lock, the up-to-date check), execute it, and notice runs whose worker died.

A run carves a time-based validation split from the platform's data (each user's latest 20% of events),
chooses each component's setting and the blend's weights there (``ml.evaluation.tune_on``), fits the
chosen settings on all the data and saves them as versions. The part of the run that comes last then
measures the set as the API serves it (``ml.evaluation``: the same procedure run on each user's earlier
80% of events, ranked on the latest 20%) and activates the set unless it measures worse than the active
one. The held-out split and its models stay under ``MODEL_DIR/runs/<run id>/holdout/``, where other
weights can be measured on them later (``ml.evaluation.evaluate_weights``). Versions and the held-out split
are published to the model store as they are saved (ml.artifacts: with ``MODEL_STORAGE=s3``, a bucket), so
that a run's parts, the web processes and the workers may each run on another machine.

A run may come in parts (ml/tasks.py: the default queue's algorithms, then the Two-Tower on the gpu
queue): each part tunes and fits its own algorithms, the earlier parts' at the settings they chose; the
weights are tuned, the set measured and activated by the last part, which has every component.

The Celery tasks in ``ml/tasks.py`` are a thin shell around :func:`training_run_execute`.
"""
import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psutil
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, models, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from ml.core import data as engine_data
from ml.core import features
from ml.core.base import META_FILE, Recommender
from ml.core.data import EngineError
from ml.core.registry import POPULARITY, load_component
from ml.core.tuning import Tuned
from profiles.models import Developer, Founder, Interaction, Investor, Position, Startup
from recsys_site.exceptions import Conflict, DomainError

from . import artifacts, evaluation
from .models import Algorithm, ModelVersion, TrainingRun
from .progress import RunProgress
from .services import model_version_activate

logger = logging.getLogger(__name__)

# A queued run no worker picked up within this long is given up (no worker is consuming the queue).
STALE_QUEUED_AFTER = timedelta(hours=2)
PEAK_MEMORY_SAMPLE_SECONDS = 0.05  # a fit's peak is held for far longer than this; a sample costs microseconds
# A new set of versions replaces the active one unless its served NDCG@10 is lower than the active set's by
# more than this share of it (the two were measured on different holdouts: small differences are noise).
ACTIVATION_TOLERANCE = 0.02
# The platform's features are fixed transforms (documented in ml.core.features), so the spec saved
# beside each model names them and their widths rather than fitted parameters.
PLATFORM_FEATURE_SPEC = {
    "user_features": {"encoder": "ml.core.features.platform_user_features", "dims": features.USER_FEATURE_DIM},
    "item_features": {"encoder": "ml.core.features.platform_item_features", "dims": features.ITEM_FEATURE_DIM},
    "content_terms": {"encoder": "ml.core.features.platform_content"},
    "item_ids": "<item_type>:<primary key>", "user_ids": "user primary key",
}
# Bump when the way models are built changes, so that "nothing changed" no longer holds.
ENGINE_PARAMETERS = {"engine": 2, "kind_weights": engine_data.KIND_WEIGHTS, "negatives": engine_data.NEGATIVE_KINDS}


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
        try:
            while not self._stop.wait(_heartbeat_seconds()):
                try:
                    TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
                except DATABASE_BLIPS:  # beat again on a new connection: the worker is alive, the link was not
                    connection.close()
        finally:
            connection.close()

    def __enter__(self):
        TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=_heartbeat_seconds() + 5)


# A lost or refused database connection (a restart, a failover, a network blip): the part is worth another
# attempt (ml/tasks.py retries it), where any other error would only fail the same way again.
DATABASE_BLIPS = (OperationalError, InterfaceError)


def training_run_execute(*, run_id: int, algorithms: list[str], finish: bool = True,
                         progress: Callable[[str, str, dict], None] | None = None,
                         raise_database_blips: bool = False) -> TrainingRun:
    """Train ``algorithms`` for the run; with ``finish`` the run is closed afterwards (the weights tuned over
    every algorithm the run trained, the set measured as served and activated unless worse, the lock freed);
    without it the run is queued again for its next part (the Two-Tower, on another queue).

    The run's progress is recorded phase by phase (ml.progress); ``progress(algorithm, event, info)`` also
    hears every engine event and each phase as it begins and ends (a console, say). A failure is
    recorded on the run and the active versions keep serving; with ``raise_database_blips`` a
    DATABASE_BLIPS error is raised instead, the run left running for the caller's next attempt (whose
    retry starts the part afresh: what the broken attempt left of it is failed first).
    """
    run = TrainingRun.objects.get(pk=run_id)
    if run.status not in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
        logger.warning("training run %s is %s; not training", run_id, run.status)
        return run
    TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=Coalesce("started_at", models.Value(timezone.now())))
    _fail_earlier_attempts(run_id, algorithms)
    try:
        with _Heartbeat(run_id):
            fingerprint = data_fingerprint()
            TrainingRun.objects.filter(pk=run_id).update(data_fingerprint=fingerprint)
            _train_part(run_id, algorithms, fingerprint, finish, _recorder(run_id, progress))
    except Exception as exc:  # any failure is the run's, recorded for the operator; serving carries on
        _drop_broken_connection()
        if raise_database_blips and isinstance(exc, DATABASE_BLIPS):
            logger.warning("training run %s lost the database (%s: %s); it will be retried",
                           run_id, type(exc).__name__, exc)
            raise
        logger.exception("training run %s failed", run_id)
        run.refresh_from_db()
        reason = f"{type(exc).__name__}: {exc}"
        ModelVersion.objects.filter(training_run=run, status=ModelVersion.Status.TRAINING).update(
            status=ModelVersion.Status.FAILED, failure_reason=f"Its training run failed: {reason}")
        _finish(run, TrainingRun.Status.FAILED, error=reason)
        return run
    run.refresh_from_db()
    if finish:
        trained = ModelVersion.objects.filter(training_run=run).exclude(status=ModelVersion.Status.FAILED).exists()
        _finish(run, TrainingRun.Status.SUCCEEDED if trained else TrainingRun.Status.SKIPPED)
    else:  # no heartbeat until a worker of the next queue takes it: running would soon look dead
        run.status, run.heartbeat_at = TrainingRun.Status.QUEUED, timezone.now()
        run.save(update_fields=["status", "heartbeat_at"])
    return run


def _fail_earlier_attempts(run_id: int, algorithms: list[str]) -> None:
    """A part never starts with versions of its own algorithms in its run, unless an earlier attempt of it
    made them before a database error stopped it: those are failed, and this attempt trains them afresh."""
    ModelVersion.objects.filter(training_run_id=run_id, algorithm__in=algorithms, status__in=[
        ModelVersion.Status.TRAINING, ModelVersion.Status.READY]).update(
        status=ModelVersion.Status.FAILED,
        failure_reason="A database error interrupted its training; the run's next attempt trained it again.")


def _drop_broken_connection() -> None:
    """After a lost connection, Django keeps the dead one: close it, so that the failure can be written (and a
    retry's queries run) on a new one. Inside a transaction (a test's) it is left alone."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def _train_part(run_id: int, algorithms: list[str], fingerprint: str, finish: bool, report: RunProgress) -> None:
    """One part of a run: tune and fit ``algorithms`` (versions, and held-out models for the evaluation);
    with ``finish``, also tune the weights over the whole run's algorithms, measure the set and activate it.
    Each phase is named to ``report`` as it begins (ml.progress.PHASES)."""
    fitting = ["reading", "validation", "final_fit", "holdout_fit"]
    # without ``finish`` the run's next part (the Two-Tower's queue) goes through them all again, and measures
    report.plan([*fitting, "measuring"] if finish else fitting, later=[] if finish else [*fitting, "measuring"])
    report.begin("reading")
    snapshot = evaluation.platform_snapshot()
    data = snapshot.data.validate()
    mine = []
    for algorithm in algorithms:
        reason = evaluation.skip_reason(algorithm, data)
        if reason:
            _update_run(run_id, lambda run, a=algorithm, r=reason: run.skipped.update({a: r}))
        else:
            mine.append(algorithm)
    outer = evaluation.time_split(data, snapshot.events)  # the holdout the set is measured on
    earlier = {v.algorithm: v for v in ModelVersion.objects.filter(training_run_id=run_id,
                                                                    status=ModelVersion.Status.READY)}
    if not mine and not (finish and earlier):
        report.end()
        return
    versions = {algorithm: _new_version(run_id, algorithm, data, fingerprint) for algorithm in mine}
    earlier_held_out = _earlier_held_out_models(run_id, earlier, outer.train)
    # Settings and weights are chosen once, on validation within the holdout's earlier events, and both the
    # versions and the measured models take them: the set measured is the set served, weights included, and
    # nothing it was tuned on is among the held-out events.
    inner = evaluation.time_split(outer.train, outer.train_events)
    names = [*earlier, *mine]
    report.begin("validation", [*names, POPULARITY])  # tuning gives popularity a weight too (evaluation.tune_on)
    report("tuning", {"algorithm": "hybrid", "split": "validation", "algorithms": names})
    tuned = evaluation.tune_on(inner, names, snapshot,
                               {a: evaluation.setting_of(a, v.config) for a, v in earlier.items()}, report)
    report.begin("final_fit", mine)
    for algorithm in mine:
        _fit_version(versions[algorithm], evaluation.chosen_maker(tuned, algorithm), data, report)
    report.begin("holdout_fit", mine)
    held_out, failed = evaluation.fit_holdout_models(tuned, mine, outer.train, progress=report)
    path = evaluation.holdout_dir(run_id)
    for algorithm, model in held_out.items():
        shutil.rmtree(path / algorithm, ignore_errors=True)
        model.save(path / algorithm)
        artifacts.write_manifest(path / algorithm)
        artifacts.publish(path / algorithm)  # the run's next part, or the evaluation, may run on another machine
    if finish:
        report.begin("measuring")
        held_out |= earlier_held_out
        _finish_set(run_id, snapshot, outer, held_out, tuned, failed, report)
    report.end()


def _earlier_held_out_models(run_id: int, versions: dict[str, ModelVersion], train) -> dict[str, Recommender]:
    """The held-out models of the run's earlier parts (``versions``), read back from disk. One fitted on
    another numbering than ``train``'s (people or items added between the parts) is fitted again at its
    setting on ``train``, so that every component ranks the same rows."""
    found = {}
    for algorithm in versions:
        path = evaluation.holdout_dir(run_id) / algorithm
        if not path.is_dir() and not artifacts.in_store(path):  # it could not learn from the holdout's earlier
            continue  # part: the evaluation goes without
        model = load_component(artifacts.ensure_local(path))  # an earlier part may have run on another machine
        users, items = model.user_ids, model.item_ids  # a loaded model has both
        if users is None or items is None or users.ids != train.user_ids.ids or items.ids != train.item_ids.ids:
            model = evaluation.setting_of(algorithm, evaluation.config_of(model))().fit(train)
        found[algorithm] = model
    return found


def _new_version(run_id: int, algorithm: str, data, fingerprint: str) -> ModelVersion:
    run = TrainingRun.objects.get(pk=run_id)
    return ModelVersion.objects.create(
        algorithm=algorithm, version=_next_version(algorithm), training_run=run, trigger=run.trigger,
        data_fingerprint=fingerprint, n_users=data.n_users, n_items=data.n_items, n_interactions=int(data.matrix.nnz))


class PeakMemory:
    """The process's peak resident memory while the block runs (``megabytes``), sampled every
    PEAK_MEMORY_SAMPLE_SECONDS by a thread and once more at the end: numpy, scipy and torch allocate outside
    Python's own allocator, so only the operating system's count (psutil) sees what an algorithm takes."""

    def __enter__(self) -> "PeakMemory":
        self._process = psutil.Process()
        self._peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(PEAK_MEMORY_SAMPLE_SECONDS):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)

    @property
    def megabytes(self) -> float:
        return round(self._peak / 2**20, 1)


def _fit_version(version: ModelVersion, make, data, report: RunProgress) -> None:
    """Fit the chosen setting on all the data and save it: the version is ready (activated with its set)."""
    started = time.perf_counter()
    with PeakMemory() as memory:
        model = make().fit(data, progress=report)
    version.peak_memory_mb = memory.megabytes
    path = artifact_dir(version.algorithm, version.version)
    shutil.rmtree(path, ignore_errors=True)
    model.save(path)
    (path / "feature_spec.json").write_text(json.dumps(PLATFORM_FEATURE_SPEC, indent=1))
    artifacts.write_manifest(path)  # after the version's last file: activation and serving check every one
    artifacts.publish(path)  # to the model store, where every machine's processes load it (ml.artifacts)
    version.status, version.artifact_path = ModelVersion.Status.READY, str(path)
    version.training_seconds = time.perf_counter() - started  # unrounded: a small fit takes milliseconds
    version.device, version.config = _device_of(model), evaluation.config_of(model)
    version.save()
    report.fitted(version.algorithm, seconds=version.training_seconds, peak_memory_mb=version.peak_memory_mb,
                  device=version.device)


def _finish_set(run_id: int, snapshot, outer, held_out: dict[str, Recommender], tuned: Tuned,
                failed: dict[str, str], report) -> None:
    """Record the tuned weights, measure the run's set as served and activate it unless it is worse."""
    run = TrainingRun.objects.get(pk=run_id)
    failed = {**tuned.validation.get("failed", {}),
              **{name: f"on the holdout's earlier events: {why}" for name, why in failed.items()}}
    k = tuned.validation.get("k")
    run.tuned = {"weights": {name: round(w, 4) for name, w in tuned.weights.items()},
                 "by_role": tuned.weights_by_group,
                 "validation_ndcg": _rounded(tuned.validation.get("ndcg")), "k": None if k is None else int(k),
                 "settings": tuned.validation.get("settings", {}), "failed": failed}
    run.served, alone = _measure(run_id, snapshot, outer, held_out, tuned, report)
    for version in ModelVersion.objects.filter(training_run=run, status=ModelVersion.Status.READY):
        _record_metrics(version, alone.get(version.algorithm, {}))
        run.metrics[version.algorithm] = version.metrics
    run.not_activated = _why_not_activated(run)
    run.save(update_fields=["tuned", "served", "metrics", "not_activated"])
    if not run.not_activated:
        _activate_set(run)
    report("activation", {"algorithm": "hybrid", "activated": not run.not_activated, "why_not": run.not_activated})


def _record_metrics(version: ModelVersion, metrics: dict) -> None:
    """The version's metrics, on its row and in its artifact (which describes itself: ml.core.base)."""
    metrics = whole_counts(metrics)
    version.metrics = metrics
    version.save(update_fields=["metrics"])
    path = artifacts.ensure_local(Path(version.artifact_path))  # an earlier part may have saved it elsewhere
    meta = json.loads((path / META_FILE).read_text())
    artifacts.rewrite_file(path, META_FILE, json.dumps({**meta, "metrics": metrics}, indent=1))


# Metrics that count (users, the cut-off, events, items): integers, whatever arithmetic made them.
COUNT_KEYS = frozenset({"users", "k", "events", "items", "held_out_events"})


def whole_counts(metrics: dict) -> dict:
    """``metrics`` with its counts as integers (249, not 249.0), nested dicts too."""
    return {key: whole_counts(value) if isinstance(value, dict)
            else int(value) if key in COUNT_KEYS and isinstance(value, float) and value.is_integer()
            else value for key, value in metrics.items()}


def _measure(run_id: int, snapshot, outer, held_out: dict[str, Recommender], tuned: Tuned,
             report) -> tuple[dict | None, dict[str, dict]]:
    """(run.served, each component's metrics served alone), the held-out split kept beside its models;
    (None, {}) when nothing can be evaluated (no held-out event the API could serve, no model)."""
    try:
        models = evaluation.HeldOutModels(held_out, evaluation.holdout_of(snapshot, outer))
    except EngineError as exc:
        logger.warning("training run %s: the served evaluation was not run: %s", run_id, exc)
        return None, {}
    split = evaluation.holdout_dir(run_id) / evaluation.HOLDOUT_SPLIT
    models.holdout.save(split)
    artifacts.write_manifest(split)
    artifacts.publish(split)
    _remove_other_runs_files(run_id)
    oracle, _ = evaluation.demo_oracle()
    report("evaluating", {"algorithm": "hybrid", "users": len(models.holdout.users)})
    served = evaluation.served_evaluation(models, tuned.weights, oracle, tuned.weights_by_group)
    return whole_counts(served), models.alone()


def _remove_other_runs_files(run_id: int) -> None:
    """Only the newest measured run's held-out split is read again (evaluate_weights): earlier runs' files,
    and those of runs that failed before they were measured, would only fill the disk."""
    runs = evaluation.holdout_dir(run_id).parent.parent
    for folder in runs.iterdir():
        if folder.name != str(run_id):
            shutil.rmtree(folder, ignore_errors=True)
    artifacts.remove_from_store(runs, keep=str(run_id))


def _why_not_activated(run: TrainingRun) -> str:
    """Why the run's set must not replace the active one ("" when it may): its served NDCG@10 is below
    popularity's on the same evaluation, or lower than the active set's by more than ACTIVATION_TOLERANCE
    of it. With nothing active, any set is better than none; an unmeasured set is not held back, nor a
    run that retrained only some of the active algorithms: it measured those alone, not the set that would
    serve (its new versions beside the other active ones), so neither comparison would be fair to it."""
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exclude(training_run=run)
    new = _served_ndcg(run.served, "metrics")
    partial = not set(active.values_list("algorithm", flat=True)) <= set(run.algorithms)
    if not active.exists() or new is None or partial:
        return ""
    popularity = _served_ndcg(run.served, "popularity")
    if popularity is not None and new < popularity:
        return (f"Its served NDCG@10 {new:.4f} is below popularity's {popularity:.4f} on the same held-out events; "
                "the active versions keep serving.")
    measured = (TrainingRun.objects.filter(model_versions__in=active, status=TrainingRun.Status.SUCCEEDED,
                                           served__isnull=False).order_by("-created_at", "-id").first())
    old = None if measured is None else _served_ndcg(measured.served, "metrics")
    if measured is not None and old is not None and new < old * (1 - ACTIVATION_TOLERANCE):
        return (f"Its served NDCG@10 {new:.4f} is more than {ACTIVATION_TOLERANCE:.0%} below the active set's "
                f"{old:.4f} (training run {measured.pk}); the active versions keep serving.")
    return ""


def _served_ndcg(served: dict | None, ranking: str) -> float | None:
    return ((served or {}).get(ranking) or {}).get("all", {}).get("ndcg")


@transaction.atomic
def _activate_set(run: TrainingRun) -> None:
    """Every version of the run at once: serving never mixes half of one set with half of another."""
    for version in ModelVersion.objects.filter(training_run=run, status=ModelVersion.Status.READY):
        model_version_activate(algorithm=version.algorithm, version=version.version)


def _rounded(value) -> float | None:
    return None if value is None else round(float(value), 5)


def _recorder(run_id: int, echo: Callable[[str, str, dict], None] | None = None) -> RunProgress:
    """The run's progress recorder (ml.progress), carrying on what an earlier part of the run recorded; it
    also tells ``echo`` every event."""
    def save(progress: dict) -> None:
        try:
            _update_run(run_id, lambda run: setattr(run, "progress", progress))
        except DATABASE_BLIPS as exc:
            # Progress is for watching the run: a write lost to a blip is skipped (the next one carries it).
            # Raised, it would fail the fit that reported it, which tuning counts as the component failing.
            logger.warning("training run %s: its progress was not recorded: %s", run_id, exc)
            _drop_broken_connection()
    return RunProgress(TrainingRun.objects.get(pk=run_id).progress, save, echo)


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


def _finish(run: TrainingRun, status: str, error: str = "") -> None:
    run.status, run.error, run.in_flight, run.finished_at = status, error or run.error, None, timezone.now()
    run.save(update_fields=["status", "error", "in_flight", "finished_at"])

