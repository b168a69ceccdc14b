"""The active model versions and hybrid weights, held in memory by each process and refreshed when the
registry or the catalog changes.

Every request asks :func:`serving_models`. At most every ``settings.MODEL_REGISTRY_CHECK_SECONDS``
(default 2; 0: in every request) a thread of the process, started by the request that finds the check due,
reads the registry's few active rows (algorithm, version, artifact, activation time), the weights in force,
the running experiment (and the versions its variants pin) and the catalog's version (newest row and
latest edit of positions and startups, newest answer) and loads the models again when the versions or the
catalog differ from what the process holds: the models held serve until the new ones are ready, and no
request waits for the check or the load. So a version trained or activated,
weights saved or an experiment started by any process serve here within seconds, and so does a position or
startup created or edited: the content model scores it at once from its text and skills, the other
components give it their mean until the next training. A change made in this process serves from its next
request (:func:`recheck_serving_models`, called on every save of a version or of weights). An answer (an
application, a dismissal, a contact, an acceptance) loads nothing: the answers since the last check are
added to who may be shown to whom, with the applicants of the positions applied to (the market,
``ml.serving_set.ItemMarket``: investors' candidates, crowded positions), and the models held keep serving.

Under gunicorn the workers leave such loads to the master (:meth:`_Store.leave_loads_to_master`, called
after each fork): the master checks the registry in the same way, loads a changed set in its own thread and
then forks new workers that hold it (gunicorn.conf.py, :class:`LoadedSetWatch`), while the old workers serve
until they are replaced. A load at a million items takes minutes of one core; made in every worker, beside
its requests, it would take each worker far longer and the set would not be shared across the fork.

Loading never fails a request. An active version whose artifact is missing, damaged or unverifiable
(ml.artifacts) is failed over (ml.services.model_version_fail_over): marked failed with the reason, and the
newest earlier version of its algorithm that loads becomes the active one, in the registry, so that every
process serves it; this process loads it at once. Without one, the algorithm is unavailable, with the
reason kept for ``/algorithms/status``.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.db.models.functions import Coalesce

from ml.artifacts import ArtifactUnreadable, load_version
from ml.core.registry import CONTENT
from ml.models import Algorithm, ModelVersion
from ml.platform_data import (
    ItemType,
    catalog_records_changed_since,
    catalog_version,
    commitments,
    dismissals,
    item_founders,
    item_market,
    item_popularity,
    item_startups,
    parse_item_key,
    startups_answered,
)
from ml.selectors import failed_over_versions, weights_in_force
from ml.services import model_version_fail_over
from ml.serving_set import ItemMarket, ServingSet, build_serving_set

if TYPE_CHECKING:  # experiments' writes import this module (its recheck): read it only when called
    from . import experiments

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingModels:
    """What one process serves: the registry's active versions (``key``), loaded into a serving set."""

    key: tuple
    serving: ServingSet = field(default_factory=ServingSet)
    versions: dict[str, int] = field(default_factory=dict)  # active version of each algorithm, serving or not
    weights: dict[str, float] = field(default_factory=dict)  # the hybrid weights in force at the last check
    role_weights: dict[str, dict[str, float]] = field(default_factory=dict)  # a role's own, where tuning found one
    broken: dict[str, tuple[int, str]] = field(default_factory=dict)  # active versions that failed to load: why
    experiment: experiments.RunningExperiment | None = None  # the running experiment at the last check
    pinned: dict[str, ServingSet] = field(default_factory=dict)  # variant -> its set, where it pins versions

    def weights_for(self, role: str) -> dict[str, float]:
        return self.role_weights.get(role, self.weights)

    def serving_for(self, variant: experiments.Variant | None) -> ServingSet:
        """What serves a user in ``variant`` (None: the control, or no experiment)."""
        return self.pinned.get(variant.name, self.serving) if variant is not None else self.serving

    def versions_for(self, variant: experiments.Variant | None) -> dict[str, int | None]:
        """The versions that serve a user in ``variant``, as answers report them (None: not serving)."""
        serving = self.serving_for(variant)
        versions = {**self.versions, **((variant.model_versions or {}) if variant is not None else {})}
        return {a: versions[a] if a in serving.components else None for a in Algorithm.values}

    @property
    def ready(self) -> bool:
        return self.serving.ready

    @property
    def unavailable(self) -> dict[str, str]:
        return self.serving.unavailable

    def serving_versions(self) -> dict[str, int | None]:
        return self.versions_for(None)


def _active_key(experiment: experiments.RunningExperiment | None) -> tuple:
    """What the process should serve: the active versions (algorithm, version, artifact, activation time,
    when its training read the data), the catalog's version (ml.platform_data.catalog_version) and, for
    each variant of ``experiment`` that pins versions, the rows it serves instead (ordered like the first)."""
    versions = tuple(_version_rows(ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)))
    return versions, catalog_version(), _pinned_rows(experiment, versions)


def _version_rows(queryset) -> list[tuple]:
    return list(queryset.order_by("algorithm").annotate(snapshot=Coalesce("training_run__started_at", "created_at"))
                .values_list("algorithm", "version", "artifact_path", "activated_at", "snapshot"))


def _pinned_rows(experiment: experiments.RunningExperiment | None, active: tuple) -> tuple:
    """((variant, rows), ...): the active rows with each pinned algorithm's row replaced by its pinned version."""
    pinning = [v for v in (experiment.variants if experiment else ()) if v.model_versions]
    if not pinning:
        return ()
    wanted = Q()
    for variant in pinning:
        for algorithm, version in (variant.model_versions or {}).items():
            wanted |= Q(algorithm=algorithm, version=version)
    found = {(row[0], row[1]): row for row in _version_rows(ModelVersion.objects.filter(wanted))}
    pins = []
    for variant in pinning:
        rows = {row[0]: row for row in active}
        rows.update({a: found[(a, v)] for a, v in (variant.model_versions or {}).items() if (a, v) in found})
        pins.append((variant.name, tuple(rows[a] for a in sorted(rows))))
    return tuple(pins)


@dataclass(frozen=True)
class _DatabaseInputs:
    """What a load needs from the database, read before the models are loaded."""

    popularity: dict[str, int]  # item key -> users who interacted with it
    fresh_items: dict[str, dict]  # positions and startups changed since the content model's training
    failed_over: dict[str, str] = field(default_factory=dict)  # algorithm -> why its last active version failed
    startups: dict[str, int] = field(default_factory=dict)  # item key -> its startup (max_per_startup counts it)
    market: dict[str, dict] = field(default_factory=dict)  # item key -> its round or its applicants and openings
    dismissals: list[tuple[int, str]] = field(default_factory=list)  # (user id, item key) of every dismissal
    commitments: list[tuple[int, str]] = field(default_factory=list)  # (user id, item key) of every yes
    founders: dict[str, tuple[int, ...]] = field(default_factory=dict)  # startup or position key -> its founders


def _database_inputs(key: tuple) -> _DatabaseInputs:
    content = [snapshot for algorithm, *_, snapshot in key[0] if algorithm == CONTENT]
    fresh = catalog_records_changed_since(content[0]) if content else {}
    failed = {algorithm: f"v{version.version} failed ({version.failure_reason})"
              for algorithm, version in failed_over_versions().items()}
    return _DatabaseInputs(item_popularity(), fresh, failed, item_startups(), item_market(), dismissals(),
                           commitments(), item_founders())


def _load(key: tuple, weights: dict[str, float], inputs: _DatabaseInputs) -> ServingModels:
    versions = {algorithm: version for algorithm, version, *_ in key[0]}
    serving, broken = _serving_set(key[0], inputs)
    # A pinned version that fails to load leaves its variant without that component (the reason is in
    # its set's unavailable); only the active versions are failed over.
    pinned = {variant: _serving_set(rows, inputs)[0] for variant, rows in key[2]}
    return ServingModels(key, serving, versions, weights, broken=broken, pinned=pinned)


def _serving_set(rows: tuple, inputs: _DatabaseInputs) -> tuple[ServingSet, dict[str, tuple[int, str]]]:
    """The set serving version ``rows``, and {algorithm: (version, why)} of those that did not load."""
    loaded, unavailable, broken = {}, {}, {}
    for algorithm, version, path, *_ in rows:
        try:
            loaded[algorithm] = load_version(algorithm, path)
        except ArtifactUnreadable as exc:
            logger.error("%s v%s does not serve: %s", algorithm, version, exc)
            unavailable[algorithm] = str(exc)
            broken[algorithm] = (version, str(exc))
    present = {algorithm for algorithm, *_ in rows}
    for algorithm in Algorithm.values:
        if algorithm not in present:
            failed = f"{inputs.failed_over[algorithm]}; " if algorithm in inputs.failed_over else ""
            unavailable[algorithm] = (f"no active {algorithm} version: {failed}train one (POST /api/v1/models/train)"
                                      " or activate a readable one")
    serving = build_serving_set(loaded, unavailable, inputs.popularity, inputs.fresh_items, inputs.startups,
                                inputs.market)
    return serving.with_answers(dismissals=inputs.dismissals, commitments=inputs.commitments,
                                founders=inputs.founders), broken


class _Store:
    """The process's serving models. The registry is checked in a background thread, and a changed one
    loaded there too, its database reads included, while the models held keep serving: at a million items
    the check's aggregates take a second, the load's reads seconds and building the indexes minutes, which
    no request should wait for. The very first load, and the check after a change this process made
    (:meth:`recheck`), happen in the request, as every check does with MODEL_REGISTRY_CHECK_SECONDS 0
    (tests). Tests also wait up to ``SWAP_WAIT_SECONDS`` for the load a check started, and read its inputs
    in the request (``READ_IN_REQUEST``: a test's rows live in its transaction, which a thread's own
    connection cannot see)."""

    SWAP_WAIT_SECONDS = 0.0
    READ_IN_REQUEST = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: ServingModels | None = None
        self._checked_at = float("-inf")
        self._checker: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._loading_key: tuple | None = None
        self._loads_changes = True

    def leave_loads_to_master(self) -> None:
        """In a gunicorn worker: a changed set is not loaded here, the held one serves until the master, which
        loads it, replaces this worker with one forked from it. Weights, the experiment and the market's answers
        are still read here, as they cost no load."""
        self._loads_changes = False

    def after_fork(self) -> None:
        """In a forked child: the parent's threads did not come along, and a lock that one of them held at the
        fork would stay held for good."""
        self._lock = threading.Lock()
        self._checker, self._loader, self._loading_key = None, None, None

    def current(self) -> ServingModels:
        interval = settings.MODEL_REGISTRY_CHECK_SECONDS
        if self._models is None or interval == 0 or self._checked_at == float("-inf"):
            self._check()
        elif time.monotonic() - self._checked_at >= interval:
            self._check_in_background()
        models = self._models
        assert models is not None  # the first check loaded them
        if models.broken:
            return self._fail_over(models)
        return models

    def _check_in_background(self) -> None:
        if not self._lock.acquire(blocking=False):  # a check or a swap holds it: this request goes on
            return
        try:
            if self._checker is not None and self._checker.is_alive():
                return
            self._checked_at = time.monotonic()  # the next request due starts no second check meanwhile

            def check() -> None:
                try:
                    self._check()
                except Exception:  # the held models keep serving; the next check tries again
                    logger.exception("checking the model registry failed")
                finally:
                    connections.close_all()  # this thread's own connection, which nothing else will close

            self._checker = threading.Thread(target=check, name="serving-models-check", daemon=True)
            self._checker.start()
        finally:
            self._lock.release()

    def _check(self) -> None:
        """Read the registry, the weights and the experiment; start loading what changed (the first set here)."""
        experiment = _running_experiment()
        key, (weights, role_weights) = _active_key(experiment), weights_in_force()
        in_force = InForce(weights=weights, role_weights=role_weights, experiment=experiment)
        with self._lock:
            self._checked_at = time.monotonic()
            if self._models is None:
                self._models = replace(_load(key, weights, _database_inputs(key)), **in_force)
            else:
                if _only_answers_changed(self._models.key, key):
                    self._models = _with_new_answers(self._models, key)
                elif self._models.key != key and self._loads_changes:
                    self._start_loading(key, weights)
                if _in_force(self._models) != in_force:
                    self._models = replace(self._models, **in_force)
            loader = self._loader
        if loader is not None and self.SWAP_WAIT_SECONDS:
            loader.join(self.SWAP_WAIT_SECONDS)

    def _fail_over(self, models: ServingModels) -> ServingModels:
        """Fail over each active version that did not load, then load what the registry then has active,
        here and now: the request that found the damage waits for the
        repair (a rare event), and a process preloading its models before forking loads no stale set.
        A registry that cannot be written (the database down) leaves the models as loaded."""
        try:
            for _ in range(len(Algorithm.values) + 1):  # each round fails a version or more, so it ends
                if not models.broken:
                    break
                for algorithm, (version, reason) in sorted(models.broken.items()):
                    replacement = model_version_fail_over(algorithm=algorithm, version=version, reason=reason)
                    logger.error("%s v%s failed over to %s", algorithm, version, replacement)
                experiment = _running_experiment()
                key, (weights, role_weights) = _active_key(experiment), weights_in_force()
                models = replace(_load(key, weights, _database_inputs(key)), role_weights=role_weights,
                                 experiment=experiment)
        except Exception:  # the held models keep serving what they can; the next check tries again
            logger.exception("failing over the unreadable versions %s failed", models.broken)
            return models
        with self._lock:
            self._models, self._loading_key, self._loader = models, None, None  # a load in flight is stale now
            self._checked_at = time.monotonic()
        return models

    def _start_loading(self, key: tuple, weights: dict[str, float]) -> None:
        """Load ``key`` in the background (once) and serve it when it is ready; called under the lock."""
        if self._loading_key == key:
            return
        self._loading_key = key
        read = _database_inputs(key) if self.READ_IN_REQUEST else None

        def load() -> None:
            try:
                loaded = _load(key, weights, read or _database_inputs(key))
            except Exception:  # the held models keep serving; the next check tries again
                logger.exception("loading the active versions %s failed", key)
                loaded = None
            finally:
                connections.close_all()  # this thread's own connection, which nothing else will close
            with self._lock:
                if self._loading_key == key:
                    if loaded is not None:
                        self._models = loaded if self._models is None else replace(loaded, **_in_force(self._models))
                    self._loading_key, self._loader = None, None

        self._loader = threading.Thread(target=load, name="serving-models-load", daemon=True)
        self._loader.start()

    def recheck(self) -> None:
        """Check the registry on the next request, however recent the last check (this process changed it)."""
        self._checked_at = float("-inf")


def _only_answers_changed(held: tuple, key: tuple) -> bool:
    """Whether ``key`` differs from ``held`` in the newest answer alone (``catalog_version``'s last part): an
    application (and with it its position's applicants), a dismissal, a contact or an acceptance, which are
    added to what the process holds (:func:`_with_new_answers`) and load nothing."""
    return held != key and _loaded_part(held) == _loaded_part(key)


def _loaded_part(key: tuple) -> tuple:
    """What of ``key`` a change of needs the models loaded again: the versions, the catalog's newest rows and
    latest edits, the pinned versions."""
    return key[0], key[1][:2], key[2]


class LoadedSetWatch:
    """Tells, each time it is asked, whether this process has loaded another set of models since it was last
    asked (not other weights or market answers alone): gunicorn's master asks every few seconds, and forks new
    workers when it has."""

    def __init__(self) -> None:
        self._held: tuple | None = None

    def new_set_loaded(self) -> bool:
        """Check the registry as a request would (the check, and a load it starts, run in threads), then
        answer."""
        loaded = _loaded_part(serving_models().key)
        new, self._held = self._held is not None and loaded != self._held, loaded
        return new


# An interaction's id is taken when its row is written, not when its transaction commits: an answer that
# commits after a later one can be missing from the check that saw the later one. So each check reads again
# the answers this many ids below the newest it held (an answer added twice changes nothing).
ANSWERS_OVERLAP = 1000


def _with_new_answers(models: ServingModels, key: tuple) -> ServingModels:
    """``models`` knowing the answers given since their key's newest one, and the applicants of the positions
    applied to: a few small reads, in the check that found the change (at most every
    MODEL_REGISTRY_CHECK_SECONDS), where reading every answer and the whole market again took a minute of CPU
    at a million items (``ServingSet.with_new_answers``). Only when the newest answer is older than the one
    held (answers were deleted since, the newest among them) is everything read again."""
    newest_held, newest = models.key[1][2], key[1][2]
    gone = newest_held is not None and (newest is None or newest < newest_held)
    read_again = _all_answers_reader() if gone else _answers_reader(
        after=None if newest_held is None else newest_held - ANSWERS_OVERLAP)
    return replace(models, key=key, serving=read_again(models.serving),
                   pinned={variant: read_again(serving) for variant, serving in models.pinned.items()})


def _answers_reader(*, after: int | None) -> Callable[[ServingSet], ServingSet]:
    """A serving set -> the same knowing the answers with an id above ``after`` too (all when None)."""
    said_no, said_yes = dismissals(after=after), commitments(after=after)
    founders = item_founders(startups=startups_answered(said_no + said_yes))
    applied = item_market(positions=[pk for item_type, pk in (parse_item_key(key) for _, key in said_yes)
                                     if item_type == ItemType.POSITION])
    return lambda serving: serving.with_new_answers(dismissals=said_no, commitments=said_yes, founders=founders,
                                                    market=applied)


def _all_answers_reader() -> Callable[[ServingSet], ServingSet]:
    """A serving set -> the same knowing the answers and the market as they are now, read whole."""
    records, said_no, said_yes, founders = item_market(), dismissals(), commitments(), item_founders()
    return lambda serving: _market_of(serving, records).with_answers(dismissals=said_no, commitments=said_yes,
                                                                     founders=founders)


def _market_of(serving: ServingSet, records: dict[str, dict]) -> ServingSet:
    if not serving.ready or serving.item_ids is None:
        return serving
    return serving.with_market(ItemMarket.of(serving.item_ids, records))


def _running_experiment() -> experiments.RunningExperiment | None:
    from .experiments import running_experiment

    return running_experiment()


class InForce(TypedDict):
    """What changes without loading anything: the weights and the running experiment."""

    weights: dict[str, float]
    role_weights: dict[str, dict[str, float]]
    experiment: experiments.RunningExperiment | None


def _in_force(models: ServingModels) -> InForce:
    """What changes without loading anything: the weights and the running experiment."""
    return {"weights": models.weights, "role_weights": models.role_weights, "experiment": models.experiment}


_store = _Store()
os.register_at_fork(after_in_child=_store.after_fork)
serving_models = _store.current
recheck_serving_models = _store.recheck
leave_loads_to_master = _store.leave_loads_to_master
