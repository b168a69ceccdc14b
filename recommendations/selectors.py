"""Reads for serving: a user's current rows in a model's numbering, the catalog rows behind ranked items,
and the registry's state for the model endpoints."""
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from ml import training
from ml.core import features
from ml.core.data import IdMap, interaction_matrices
from ml.models import Algorithm, ModelVersion, TrainingRun
from ml.platform_data import interaction_events, item_key, parse_item_key, user_records
from ml.selectors import current_weights
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
    events = interaction_events({str(user_id): 0}, item_ids.index, user_id=user_id)
    return interaction_matrices(events, 1, len(item_ids))


@dataclass(frozen=True)
class Profile:
    """A user's profile as the engine reads it, encoded exactly as training encodes it."""

    terms: list[str]  # content terms
    features: np.ndarray  # (USER_FEATURE_DIM,) dense features


def user_profile(*, user_id: int, role: str) -> Profile | None:
    """The ``role`` profile of user ``user_id``; None when the user has no such profile."""
    record = user_records([user_id], role=role).get(user_id)
    if record is None:
        return None
    return Profile(features.platform_user_terms(record), features.platform_user_features([record])[0])


def recommendable_titles(keys: list[str]) -> dict[str, str]:
    """{item key: title} for the ``keys`` that may still be recommended: they exist and, for positions,
    are open. Ranked items come from the models' snapshot, so anything may have changed since."""
    wanted: dict[str, list[int]] = defaultdict(list)
    for key in keys:
        item_type, pk = parse_item_key(key)
        wanted[item_type].append(pk)
    if not wanted:
        return {}
    parts = [_titles_sql(item_type, pks) for item_type, pks in wanted.items()]
    found = db.rows(" UNION ALL ".join(sql for sql, _ in parts), [value for _, params in parts for value in params])
    return {item_key(item_type, pk): title for item_type, pk, title in found}


def _titles_sql(item_type: str, pks: list[int]) -> tuple[str, list]:
    """(SQL, params) selecting (item type, pk, title) of the ``pks`` that exist (and are open, for
    positions). Plain SQL, one statement for all types: one such read serves every request for
    recommendations (recsys_site.db)."""
    if item_type == ItemType.POSITION:
        wanted, params = db.is_in("id", pks)
        return (f"SELECT %s, id, title FROM {db.table(Position)} WHERE status = %s AND {wanted}",
                [item_type, Position.Status.OPEN, *params])
    if item_type == ItemType.STARTUP:
        wanted, params = db.is_in("id", pks)
        return f"SELECT %s, id, name FROM {db.table(Startup)} WHERE {wanted}", [item_type, *params]
    # People are shown by their headline (developers) or firm (investors), else by username.
    model, label = (Developer, "headline") if item_type == ItemType.DEVELOPER else (Investor, "firm")
    wanted, params = db.is_in("p.user_id", pks)
    return (f"SELECT %s, p.user_id, COALESCE(NULLIF(p.{label}, ''), u.username) FROM {db.table(model)} p "
            f"JOIN {db.table(get_user_model())} u ON u.id = p.user_id WHERE {wanted}", [item_type, *params])


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
    algorithms = {}
    for name in Algorithm.values:
        version = active.get(name)
        algorithms[name] = {
            "available": name in models.serving.components,
            "active_version": getattr(version, "version", None),
            "trained_at": getattr(version, "created_at", None),
            "metrics": getattr(version, "metrics", {}),
            "device": getattr(version, "device", None) or None,
            "reason": models.unavailable.get(name),
        }
    return {"algorithms": algorithms, "weights": current_weights(), "data": data_counts(),
            "latest_training_run": training_run_list().first()}
