"""Writes to the model registry: activation, roll-back, hybrid weights and their mode."""
import math

from django.db import transaction
from django.utils import timezone

from recsys_site.exceptions import Conflict, DomainError, NotFound

from . import selectors
from .artifacts import ArtifactUnreadable, load_version
from .models import BLENDED, HybridWeights, ModelVersion


def normalised_weights(weights: dict) -> dict[str, float]:
    """Validate ``weights`` (known keys, finite, >= 0, at least one > 0) and scale them to sum 1; every
    algorithm gets a weight (0 when not given)."""
    unknown = sorted(set(weights) - set(BLENDED))
    if unknown:
        raise DomainError(f"Unknown algorithm(s) {unknown}; accepted: {sorted(BLENDED)}.")
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
    return {name: scaled.get(name, 0.0) / total for name in BLENDED}


def hybrid_weights_set(*, weights: dict, changed_by=None, note: str = "") -> HybridWeights:
    """Pin ``weights`` (manual mode): they serve, whatever later trainings tune, until the mode is set to tuned."""
    return HybridWeights.objects.create(mode=HybridWeights.Mode.MANUAL, weights=normalised_weights(weights),
                                        changed_by=changed_by, note=note)


def hybrid_weights_mode_set(*, mode: str, changed_by=None, note: str = "") -> HybridWeights:
    """Switch the weights' mode: "tuned" serves each training's tuned weights from now on; "manual" pins
    the weights in force now. The row records the weights in force at the change, for the history."""
    if mode not in HybridWeights.Mode.values:
        raise DomainError(f"mode must be one of {HybridWeights.Mode.values}, got {mode!r}.")
    in_force = selectors.tuned_weights() if mode == HybridWeights.Mode.TUNED else selectors.current_weights()
    return HybridWeights.objects.create(mode=mode, weights=in_force, changed_by=changed_by, note=note)


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
def model_version_fail_over(*, algorithm: str, version: int, reason: str) -> ModelVersion | None:
    """Serving could not load the active ``version`` of ``algorithm``: mark it failed with ``reason`` and
    activate the newest earlier version that loads (ready or archived, verified as activation verifies);
    returns it, or None when none does (the algorithm then has no active version and does not serve).

    Nothing happens when ``version`` is no longer the active one: another process failed it over first,
    or someone activated another version meanwhile. Its row is locked, so two processes never both do.
    """
    broken = (ModelVersion.objects.select_for_update()
              .filter(algorithm=algorithm, version=version, status=ModelVersion.Status.ACTIVE).first())
    if broken is None:
        return None
    broken.status, broken.failure_reason = ModelVersion.Status.FAILED, f"Could not be loaded to serve: {reason}"
    broken.save(update_fields=["status", "failure_reason"])
    earlier = ModelVersion.objects.filter(algorithm=algorithm, version__lt=version, status__in=[
        ModelVersion.Status.READY, ModelVersion.Status.ARCHIVED]).order_by("-version")
    for candidate in earlier:
        try:
            return model_version_activate(algorithm=algorithm, version=candidate.version)
        except Conflict:  # its files do not load either: the next earlier one
            continue
    return None


@transaction.atomic
def model_version_roll_back(*, algorithm: str) -> ModelVersion:
    """Re-activate the version that was active before the current one."""
    current = ModelVersion.objects.filter(algorithm=algorithm, status=ModelVersion.Status.ACTIVE).first()
    earlier = ModelVersion.objects.filter(algorithm=algorithm, activated_at__isnull=False,
                                          status__in=[ModelVersion.Status.READY, ModelVersion.Status.ARCHIVED])
    if current is not None:
        earlier = earlier.exclude(pk=current.pk)
    previous = earlier.order_by("-activated_at").first()
    if previous is None:
        raise Conflict(f"No earlier {algorithm} version has been active; nothing to roll back to.")
    return model_version_activate(algorithm=algorithm, version=previous.version)
