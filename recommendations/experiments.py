"""Experiments: which variant a user is in, and the writes that define, start, stop and promote them.

A user's variant is a pure function of (experiment id, user id): sticky across requests and processes,
with no per-request write and no table of assignments. Variants take consecutive intervals of [0, 1) by
their shares, in their stored order; a user whose point falls beyond their sum is in the control, which
serves what is in force.
"""
import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from .models import Experiment

CONTROL = "control"


@dataclass(frozen=True)
class Variant:
    name: str
    share: float
    weights: dict[str, float] | None  # normalised (ml.services.normalised_weights); None: those in force
    model_versions: dict[str, int] | None  # algorithm -> pinned version; None: the active versions


@dataclass(frozen=True)
class RunningExperiment:
    id: int
    name: str
    variants: tuple[Variant, ...]

    def variant_for(self, user_id: int) -> Variant | None:
        """The user's variant; None for the control."""
        point = assignment_point(experiment_id=self.id, user_id=user_id)
        upper = 0.0
        for variant in self.variants:
            upper += variant.share
            if point < upper:
                return variant
        return None


def assignment_point(*, experiment_id: int, user_id: int) -> float:
    """A uniform point of [0, 1) for (experiment, user). blake2b, not hash(): Python salts str hashes per
    process, and every worker must put a user in the same variant. The experiment id in the key makes two
    experiments split users independently."""
    digest = hashlib.blake2b(f"{experiment_id}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def variants_of(stored: list[dict]) -> tuple[Variant, ...]:
    return tuple(Variant(name=v["name"], share=float(v["share"]), weights=v.get("weights"),
                         model_versions=v.get("model_versions")) for v in stored)


def running_experiment(*, now: datetime | None = None) -> RunningExperiment | None:
    """The experiment that serves at ``now`` (default: now): running, and ``now`` in [starts_at, ends_at).
    One small query; None when none does."""
    now = now or timezone.now()
    row = (Experiment.objects.filter(status=Experiment.Status.RUNNING)
           .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now), Q(ends_at__isnull=True) | Q(ends_at__gt=now))
           .values_list("id", "name", "variants").first())
    if row is None:
        return None
    pk, name, variants = row
    return RunningExperiment(id=pk, name=name, variants=variants_of(variants))
