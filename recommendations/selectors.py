"""Reads for serving: a user's current rows in a model's numbering, the catalog rows behind ranked items,
and the registry's state for the model endpoints."""
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from ml import training
from ml.core import features
from ml.core.data import KIND_WEIGHTS, IdMap, interaction_matrices
from ml.models import Algorithm, ModelVersion, TrainingRun
from ml.platform_data import interaction_events, item_key, parse_item_key, user_records
from ml.selectors import current_weights, failed_over_versions
from profiles.models import Developer, Founder, Interaction, Investor, ItemType, Position, Startup
from profiles.selectors import role_of
from recsys_site import db
from recsys_site.exceptions import NotFound

from .model_store import ServingModels, serving_models


def user_role(*, user_id: int) -> str | None:
    """The role of user ``user_id`` (None: a user without a profile); NotFound when there is no such user.
    Asked only to explain a refusal: a request's profile read already shows the role it asked about."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"No user has id {user_id}.")
    return role_of(user)


def user_interaction_rows(*, user_id: int, item_ids: IdMap) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The user's (history, negatives) rows as of now, in ``item_ids``' numbering, weighted by kind.

    Items the models do not know (added since training) are left out: they cannot be ranked anyway.
    """
    interactions = user_interactions(user_id=user_id, item_ids=item_ids)
    return interactions.history, interactions.negatives


@dataclass(frozen=True)
class UserInteractions:
    """A user's interactions as of now, in a numbering of items (see ``user_interaction_rows``)."""

    history: sp.csr_matrix  # (1, n_items) positive weights, by kind
    negatives: sp.csr_matrix  # (1, n_items) dismissals
    kinds: dict[int, str]  # item row -> the user's strongest positive kind of interaction with it


def user_interactions(*, user_id: int, item_ids: IdMap) -> UserInteractions:
    """The rows of ``user_interaction_rows`` and, from the same read, what the user did with each item:
    a reason anchored on a history item says so ("which you saved")."""
    events = interaction_events({str(user_id): 0}, item_ids.index, user_id=user_id)
    history, negatives = interaction_matrices(events, 1, len(item_ids))
    return UserInteractions(history, negatives, strongest_kinds(events))


def strongest_kinds(events: list[tuple[int, int, str]]) -> dict[int, str]:
    """{item row: the kind that weighs most} over (user row, item row, kind) events, dismissals left out.
    The strongest is the one worth naming (an application says more than the view before it); ties go
    to the first kind by name, so the same history always reads the same."""
    kinds: dict[int, set[str]] = defaultdict(set)
    for _, item, kind in events:
        if kind in KIND_WEIGHTS:
            kinds[item].add(kind)
    return {item: max(sorted(found), key=KIND_WEIGHTS.__getitem__) for item, found in kinds.items()}


@dataclass(frozen=True)
class Profile:
    """A user's profile as the engine reads it, encoded exactly as training encodes it."""

    terms: list[str]  # content terms
    features: np.ndarray  # (USER_FEATURE_DIM,) dense features
    record: dict = field(default_factory=dict)  # the record both come from (ml.platform_data.user_records)


def user_profile(*, user_id: int, role: str) -> Profile | None:
    """The ``role`` profile of user ``user_id``; None when the user has no such profile."""
    record = user_records([user_id], role=role).get(user_id)
    if record is None:
        return None
    return Profile(features.platform_user_terms(record), features.platform_user_features([record])[0], record)


def recommendable_titles(keys: list[str]) -> dict[str, str]:
    """{item key: title} for the ``keys`` that may still be recommended: they exist and, for positions,
    are open. Ranked items come from the models' snapshot, so anything may have changed since."""
    return titles_and_anchor_names(keys, [])[0]


# Marks the rows of anchors in the titles statement (the first column holds the item type otherwise).
_ANCHOR = "anchor:"


def titles_and_anchor_names(keys: list[str], anchor_keys: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(``recommendable_titles(keys)``, {item key: name} of the ``anchor_keys`` that exist), in one
    statement: the history items a reason is anchored on ride along with the titles every request reads.
    An anchor is named even when it is no longer open (what the user applied to may have closed since),
    a position as "<title> at <startup>"."""
    parts = [_titles_sql(item_type, pks) for item_type, pks in _pks_by_type(keys).items()]
    parts += [_anchor_names_sql(item_type, pks) for item_type, pks in _pks_by_type(anchor_keys).items()]
    if not parts:
        return {}, {}
    found = db.rows(" UNION ALL ".join(sql for sql, _ in parts), [value for _, params in parts for value in params])
    titles: dict[str, str] = {}
    names: dict[str, str] = {}
    for marker, pk, title in found:
        item_type = marker.removeprefix(_ANCHOR)
        (titles if item_type == marker else names)[item_key(item_type, pk)] = title
    return titles, names


def _pks_by_type(keys: list[str]) -> dict[str, list[int]]:
    wanted: dict[str, list[int]] = defaultdict(list)
    for key in keys:
        item_type, pk = parse_item_key(key)
        wanted[item_type].append(pk)
    return wanted


def _titles_sql(item_type: str, pks: list[int], marker: str | None = None) -> tuple[str, list]:
    """(SQL, params) selecting (``marker``, by default the item type; pk; title) of the ``pks`` that exist
    (and are open, for positions). Plain SQL, one statement for all types: one such read serves every
    request for recommendations (recsys_site.db)."""
    marker = marker or item_type
    if item_type == ItemType.POSITION:
        wanted, params = db.is_in("id", pks)
        return (f"SELECT %s, id, title FROM {db.table(Position)} WHERE status = %s AND {wanted}",
                [marker, Position.Status.OPEN, *params])
    if item_type == ItemType.STARTUP:
        wanted, params = db.is_in("id", pks)
        return f"SELECT %s, id, name FROM {db.table(Startup)} WHERE {wanted}", [marker, *params]
    # People are shown by their headline (developers) or firm (investors), else by username.
    model, label = (Developer, "headline") if item_type == ItemType.DEVELOPER else (Investor, "firm")
    wanted, params = db.is_in("p.user_id", pks)
    return (f"SELECT %s, p.user_id, COALESCE(NULLIF(p.{label}, ''), u.username) FROM {db.table(model)} p "
            f"JOIN {db.table(get_user_model())} u ON u.id = p.user_id WHERE {wanted}", [marker, *params])


def _anchor_names_sql(item_type: str, pks: list[int]) -> tuple[str, list]:
    """As ``_titles_sql``, for anchors: positions of any status, named with their startup."""
    if item_type != ItemType.POSITION:
        return _titles_sql(item_type, pks, marker=_ANCHOR + item_type)
    wanted, params = db.is_in("p.id", pks)
    return (f"SELECT %s, p.id, p.title || ' at ' || s.name FROM {db.table(Position)} p "
            f"JOIN {db.table(Startup)} s ON s.id = p.startup_id WHERE {wanted}", [_ANCHOR + item_type, *params])


# ---------------------------------------------------------------- the registry


def training_run_list() -> QuerySet[TrainingRun]:
    """Newest first. Runs whose worker died are marked failed first: whoever follows a run's status must
    see it end, not read "running" forever (the one write here, idempotent and cheap)."""
    training.release_stale_runs()
    return TrainingRun.objects.prefetch_related("model_versions").order_by("-created_at", "-id")


def training_run_get(*, run_id: int) -> TrainingRun:
    run = training_run_list().filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No training run has id {run_id}.")
    return run


def data_counts() -> dict[str, int]:
    """What the platform holds for the engine: people with a profile, recommendable items, events."""
    people = Developer.objects.count() + Investor.objects.count()  # founders are users, never items
    return {
        "users": people + Founder.objects.count(),
        "items": Position.objects.count() + Startup.objects.count() + people,
        "interactions": Interaction.objects.count(),
    }


def algorithms_status() -> dict:
    """Per algorithm: does it serve in this process, which version is active, its metrics and why not."""
    models: ServingModels = serving_models()
    active = {v.algorithm: v for v in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)}
    failed = failed_over_versions()
    algorithms = {}
    for name in Algorithm.values:
        version, newest_failed = active.get(name), failed.get(name)
        if newest_failed is not None and newest_failed.version < getattr(version, "version", 0):
            newest_failed = None  # a newer version serves since: that failure is history
        algorithms[name] = {
            "available": name in models.serving.components,
            "active_version": getattr(version, "version", None),
            "trained_at": getattr(version, "created_at", None),
            "metrics": getattr(version, "metrics", {}),
            "device": getattr(version, "device", None) or None,
            "reason": models.unavailable.get(name),
            # The version that was active until serving could not load it (an earlier one serves instead).
            "failed_version": getattr(newest_failed, "version", None),
            "failure_reason": getattr(newest_failed, "failure_reason", None),
        }
    return {"algorithms": algorithms, "weights": current_weights(), "data": data_counts(),
            "latest_training_run": training_run_list().first(), "served": _served_status()}


def _served_status() -> dict | None:
    """The served evaluation of the newest measured run whose versions serve: a run kept ready because it
    measured worse describes a set that does not serve."""
    run = (TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED, served__isnull=False,
                                      model_versions__status=ModelVersion.Status.ACTIVE)
           .order_by("-created_at", "-id").first())
    if run is None:
        return None
    served = run.served or {}  # the query asks for a measured run
    return {"training_run_id": run.pk, "metrics": served["metrics"], "popularity": served["popularity"]}
