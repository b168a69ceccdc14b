"""Reads of the model registry."""
from .models import HybridWeights
from .services import DEFAULT_WEIGHTS


def current_weights() -> dict[str, float]:
    latest = HybridWeights.objects.order_by("-changed_at", "-id").first()
    return latest.as_dict() if latest else dict(DEFAULT_WEIGHTS)
