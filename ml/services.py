"""Writes to the model registry: activation, roll-back, hybrid weights."""
import math

from django.db import transaction
from django.utils import timezone

from recsys_site.exceptions import Conflict, DomainError, NotFound

from .artifacts import ArtifactUnreadable, load_version
from .models import Algorithm, HybridWeights, ModelVersion

DEFAULT_WEIGHTS = {"content_based": 0.4, "collaborative": 0.35, "two_tower": 0.25}


def normalised_weights(weights: dict) -> dict[str, float]:
    """Validate ``weights`` (known keys, finite, >= 0, at least one > 0) and scale them to sum 1."""
    unknown = sorted(set(weights) - set(Algorithm.values))
    if unknown:
        raise DomainError(f"Unknown algorithm(s) {unknown}; accepted: {sorted(Algorithm.values)}.")
    cleaned = {}
    for name, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise DomainError(f"Weight of {name!r} must be a finite number >= 0, got {value!r}.")
        cleaned[name] = float(value)
    largest = max(cleaned.values(), default=0.0)
    if largest <= 0:
        raise DomainError("At least one weight must be greater than 0.")
    # Divided by the largest first: a plain sum of finite weights can still overflow to infinity
    # (1e308 + 1e308), which would turn every weight into 0.
    scaled = {name: value / largest for name, value in cleaned.items()}
    total = sum(scaled.values())
    return {name: scaled.get(name, 0.0) / total for name in Algorithm.values}


def hybrid_weights_set(*, weights: dict, changed_by=None, note: str = "") -> HybridWeights:
    return HybridWeights.objects.create(**normalised_weights(weights), changed_by=changed_by, note=note)


@transaction.atomic
def model_version_activate(*, algorithm: str, version: int) -> ModelVersion:
    """Make ``version`` the one active version of ``algorithm``; the previous one becomes ready again.

    Its artifact must load first: a version whose files are missing or corrupt is refused (Conflict, with
    the reason) and the active one keeps serving, where it would otherwise leave the algorithm without a
    model in every process (and the hybrid without its floor, for content_based).
    """
    try:
        chosen = ModelVersion.objects.select_for_update().get(algorithm=algorithm, version=version)
    except ModelVersion.DoesNotExist:
        raise NotFound(f"No {algorithm} model version {version}.") from None
    if chosen.status == ModelVersion.Status.ACTIVE:
        return chosen
    if chosen.status not in (ModelVersion.Status.READY, ModelVersion.Status.ARCHIVED):
        raise Conflict(f"{algorithm} v{version} is {chosen.status}; only a ready or archived version can be activated.")
    try:
        load_version(algorithm, chosen.artifact_path)
    except ArtifactUnreadable as exc:
        raise Conflict(f"{algorithm} v{version} was not activated: {exc}. The active version keeps serving.",
                       algorithm=algorithm, version=version) from exc
    ModelVersion.objects.filter(algorithm=algorithm, status=ModelVersion.Status.ACTIVE).update(
        status=ModelVersion.Status.READY)
    chosen.status = ModelVersion.Status.ACTIVE
    chosen.activated_at = timezone.now()
    chosen.save(update_fields=["status", "activated_at"])
    return chosen


@transaction.atomic
def model_version_roll_back(*, algorithm: str) -> ModelVersion:
    """Re-activate the version that was active before the current one."""
    current = ModelVersion.objects.filter(algorithm=algorithm, status=ModelVersion.Status.ACTIVE).first()
    previous = (ModelVersion.objects.filter(algorithm=algorithm, activated_at__isnull=False,
                                            status__in=[ModelVersion.Status.READY, ModelVersion.Status.ARCHIVED])
                .exclude(pk=getattr(current, "pk", None)).order_by("-activated_at").first())
    if previous is None:
        raise Conflict(f"No earlier {algorithm} version has been active; nothing to roll back to.")
    return model_version_activate(algorithm=algorithm, version=previous.version)
