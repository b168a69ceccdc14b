"""Experiments: which variant a user is in, and the writes that define, start, stop and promote them.

The life of an experiment: a draft (edited, deleted) is started (running: serving splits its users), then
stopped; a running or stopped one's variant can be promoted, which makes its weights and versions the
ones in force. Every bad definition is a Django ValidationError keyed by the field (a 400 naming it);
starting one while another runs, or after its end, a DomainError (400); a step its status does not allow
a Conflict (409).

A user's variant is a pure function of (experiment id, user id): sticky across requests and processes,
with no per-request write and no table of assignments. Variants take consecutive intervals of [0, 1) by
their shares, in their stored order; a user whose point falls beyond their sum is in the control, which
serves what is in force.
"""
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from ml.models import Algorithm, ModelVersion
from ml.services import hybrid_weights_set, model_version_activate, normalised_weights
from profiles.models import Interaction
from profiles.serializers import MAX_ID
from recsys_site.exceptions import Conflict, DomainError, NotFound

from . import online, stats
from .model_store import recheck_serving_models
from .models import Experiment, Impression

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


# ---------------------------------------------------------------- writes

VARIANT_FIELDS = ("name", "share", "weights", "model_versions")
EDITABLE_FIELDS = ("name", "variants", "metric", "starts_at", "ends_at")
# A variant's model may be pinned only to a version that can serve: ready (trained, loadable) or active.
PINNABLE = (ModelVersion.Status.READY, ModelVersion.Status.ACTIVE)
# Shares are floats: 0.7 + 0.2 + 0.1 is 1.0000000000000002, which is a whole, not more.
SHARE_TOLERANCE = 1e-9


@transaction.atomic
def experiment_create(*, name: str, variants: list, metric: str = Experiment.Metric.CLICK_RATE,
                      starts_at: datetime | None = None, ends_at: datetime | None = None,
                      created_by=None) -> Experiment:
    """A new draft; nothing serves it until it is started."""
    experiment = Experiment(created_by=created_by)
    _apply(experiment, {"name": name, "variants": variants, "metric": metric, "starts_at": starts_at,
                        "ends_at": ends_at})
    return experiment


@transaction.atomic
def experiment_update(*, experiment: Experiment, data: Mapping[str, Any]) -> Experiment:
    """Change some of a draft's fields (EDITABLE_FIELDS). A started experiment is not edited: its results
    would mix two definitions."""
    experiment = _locked(experiment)
    if experiment.status != Experiment.Status.DRAFT:
        raise Conflict(f"Experiment {experiment.name!r} is {experiment.status}; only a draft can be edited.")
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError({name: f"Not editable; editable: {', '.join(EDITABLE_FIELDS)}." for name in unknown})
    _apply(experiment, data)
    return experiment


def experiment_delete(*, experiment: Experiment) -> None:
    if experiment.status != Experiment.Status.DRAFT:
        raise Conflict(f"Experiment {experiment.name!r} is {experiment.status}; only a draft can be deleted "
                       "(a started one's impressions are its results).")
    experiment.delete()


def experiment_start(*, experiment: Experiment, now: datetime | None = None) -> Experiment:
    """Run a draft: serving splits users between its variants from ``starts_at`` (now when empty)."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            experiment = _locked(experiment)
            if experiment.status != Experiment.Status.DRAFT:
                raise Conflict(f"Experiment {experiment.name!r} is {experiment.status}; only a draft can be started.")
            _refuse_a_second_running(experiment)
            if experiment.ends_at is not None and experiment.ends_at <= now:
                raise DomainError(f"Its ends_at ({experiment.ends_at.isoformat()}) has passed; set a later "
                                  "one to start the experiment.")
            experiment.status, experiment.started_at = Experiment.Status.RUNNING, now
            experiment.starts_at = experiment.starts_at or now
            experiment.save(update_fields=["status", "started_at", "starts_at"])
    except IntegrityError:
        # Another request started one between the check and the save: the database's one-running
        # constraint refused this one; the same answer as the check's.
        _refuse_a_second_running(experiment)
        raise
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, now: datetime | None = None) -> Experiment:
    """End a running experiment: from now every user gets what is in force."""
    experiment = _locked(experiment)
    if experiment.status != Experiment.Status.RUNNING:
        raise Conflict(f"Experiment {experiment.name!r} is {experiment.status}; only a running one can be stopped.")
    experiment.status, experiment.stopped_at = Experiment.Status.STOPPED, now or timezone.now()
    experiment.save(update_fields=["status", "stopped_at"])
    return experiment


def experiment_promote(*, experiment: Experiment, variant: str, promoted_by=None) -> Experiment:
    """Make ``variant`` what is in force, in one transaction: its weights pinned (manual mode), its model
    versions activated, the experiment stopped if it runs. A version that cannot be activated (its files
    do not load) undoes all of it."""
    with transaction.atomic():
        experiment = _locked(experiment)
        if experiment.status == Experiment.Status.DRAFT:
            raise Conflict(f"Experiment {experiment.name!r} is a draft; only a running or stopped one is promoted.")
        if experiment.promoted_variant:
            raise Conflict(f"Experiment {experiment.name!r} already promoted {experiment.promoted_variant!r}.")
        chosen = _variant_named(experiment, variant)
        if chosen.weights:
            note = f"promoted from experiment {experiment.name!r}, variant {chosen.name!r}"
            hybrid_weights_set(weights=chosen.weights, changed_by=promoted_by, note=note[:200])
        for algorithm, version in (chosen.model_versions or {}).items():
            model_version_activate(algorithm=algorithm, version=version)
        fields = ["promoted_variant"]
        if experiment.status == Experiment.Status.RUNNING:
            experiment.status, experiment.stopped_at = Experiment.Status.STOPPED, timezone.now()
            fields += ["status", "stopped_at"]
        experiment.promoted_variant = chosen.name
        experiment.save(update_fields=fields)
    recheck_serving_models()  # this process serves the promoted weights and versions from its next request
    return experiment


def _locked(experiment: Experiment) -> Experiment:
    return Experiment.objects.select_for_update().get(pk=experiment.pk)


def _refuse_a_second_running(experiment: Experiment) -> None:
    running = Experiment.objects.filter(status=Experiment.Status.RUNNING).exclude(pk=experiment.pk).first()
    if running is not None:
        raise DomainError(f"Experiment {running.name!r} (id {running.pk}) is running; stop it before starting "
                          f"{experiment.name!r}: one experiment runs at a time.")


def _variant_named(experiment: Experiment, name: str) -> Variant:
    variants = variants_of(experiment.variants)
    names = ", ".join(repr(v.name) for v in variants)
    if name == CONTROL:
        raise ValidationError({"variant": f"The control is what is in force already; promote one of {names}."})
    chosen = next((v for v in variants if v.name == name), None)
    if chosen is None:
        raise ValidationError({"variant": f"Experiment {experiment.name!r} has no variant {name!r}; "
                                          f"its variants: {names}."})
    return chosen


def _apply(experiment: Experiment, data: Mapping[str, Any]) -> None:
    """Validate ``data`` over ``experiment``'s current fields and save them."""
    if "name" in data:
        experiment.name = _clean_name(data["name"], excluding=experiment.pk)
    if "variants" in data:
        experiment.variants = clean_variants(data["variants"])
    if "metric" in data:
        if data["metric"] not in Experiment.Metric.values:
            raise ValidationError({"metric": f"Unknown metric {data['metric']!r}; "
                                             f"expected one of {', '.join(Experiment.Metric.values)}."})
        experiment.metric = data["metric"]
    for field in ("starts_at", "ends_at"):
        if field in data:
            setattr(experiment, field, data[field])
    if experiment.starts_at and experiment.ends_at and experiment.ends_at <= experiment.starts_at:
        raise ValidationError({"ends_at": f"ends_at ({experiment.ends_at.isoformat()}) must be after starts_at "
                                          f"({experiment.starts_at.isoformat()})."})
    experiment.save()


def _clean_name(name: Any, *, excluding: int | None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "An experiment needs a name."})
    name = name.strip()
    max_length = Experiment._meta.get_field("name").max_length
    if max_length is not None and len(name) > max_length:
        raise ValidationError({"name": f"At most {max_length} characters; got {len(name)}."})
    same_name = Experiment.objects.filter(name=name)
    if (same_name if excluding is None else same_name.exclude(pk=excluding)).exists():
        raise ValidationError({"name": f"An experiment named {name!r} exists already."})
    return name


def clean_variants(variants: Any) -> list[dict]:
    """The variants as stored, or a ValidationError on "variants" that says what is wrong: at least one,
    names unique and not the control's, shares in (0, 1] summing to at most 1, each with weights
    (normalised) and/or model versions that can serve."""
    if not isinstance(variants, list) or not variants:
        raise ValidationError({"variants": "An experiment needs at least one variant: "
                                           '[{"name", "share", "weights"?, "model_versions"?}].'})
    cleaned = [_clean_variant(index, variant) for index, variant in enumerate(variants)]
    names = [variant["name"] for variant in cleaned]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError({"variants": f"Variant names must be unique; repeated: {', '.join(repeated)}."})
    total = math.fsum(variant["share"] for variant in cleaned)
    if total > 1 + SHARE_TOLERANCE:
        raise ValidationError({"variants": f"The shares sum to {total:g}; at most 1 (the rest of the users is "
                                           "the control)."})
    _require_pinnable(cleaned)
    return cleaned


def _clean_variant(index: int, variant: Any) -> dict:
    where = f"variants[{index}]"
    if not isinstance(variant, Mapping):
        raise ValidationError({"variants": f"{where} must be an object with name, share, and weights and/or "
                                           "model_versions."})
    unknown = sorted(set(variant) - set(VARIANT_FIELDS))
    if unknown:
        raise ValidationError({"variants": f"{where}: unknown field(s) {', '.join(map(str, unknown))}; "
                                           f"accepted: {', '.join(VARIANT_FIELDS)}."})
    name = variant.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"variants": f"{where} needs a name."})
    name = name.strip()
    if name.lower() == CONTROL:
        raise ValidationError({"variants": f'{where}: "{CONTROL}" names the rest of the users (what is in '
                                           "force); choose another name."})
    if len(name) > 100:
        raise ValidationError({"variants": f"{where}: a name has at most 100 characters."})
    where = f"variants[{index}] ({name!r})"
    share = variant.get("share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share) \
            or not 0 < share <= 1:
        raise ValidationError({"variants": f"{where}: share must be a number in (0, 1], got {share!r}."})
    weights, versions = variant.get("weights"), variant.get("model_versions")
    if not weights and not versions:
        raise ValidationError({"variants": f"{where} needs weights and/or model_versions: what it serves "
                                           "differently from the control."})
    cleaned: dict[str, Any] = {"name": name, "share": float(share)}
    if weights:
        if not isinstance(weights, Mapping):
            raise ValidationError({"variants": f"{where}: weights must be an object of algorithm -> weight."})
        try:
            cleaned["weights"] = normalised_weights(dict(weights))
        except DomainError as error:
            raise ValidationError({"variants": f"{where}: {error.detail}"}) from error
    if versions:
        cleaned["model_versions"] = _clean_versions(where, versions)
    return cleaned


def _clean_versions(where: str, versions: Any) -> dict[str, int]:
    if not isinstance(versions, Mapping):
        raise ValidationError({"variants": f"{where}: model_versions must be an object of algorithm -> version."})
    unknown = sorted(set(versions) - set(Algorithm.values))
    if unknown:
        raise ValidationError({"variants": f"{where}: unknown algorithm(s) {', '.join(map(str, unknown))}; "
                                           f"accepted: {', '.join(Algorithm.values)}."})
    for algorithm, version in versions.items():
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValidationError({"variants": f"{where}: the version of {algorithm} must be a whole number >= 1, "
                                               f"got {version!r}."})
    return dict(versions)


def _require_pinnable(variants: list[dict]) -> None:
    """Every pinned version exists and can serve; one query for all of them."""
    wanted = {(algorithm, version) for variant in variants
              for algorithm, version in variant.get("model_versions", {}).items()}
    if not wanted:
        return
    found = Q()
    for algorithm, version in wanted:
        found |= Q(algorithm=algorithm, version=version)
    status = dict(((row.algorithm, row.version), row.status) for row in
                  ModelVersion.objects.filter(found).only("algorithm", "version", "status"))
    for variant in variants:
        for algorithm, version in variant.get("model_versions", {}).items():
            if (algorithm, version) not in status:
                raise ValidationError({"variants": f"Variant {variant['name']!r}: no {algorithm} model version "
                                                   f"{version}."})
            if status[algorithm, version] not in PINNABLE:
                raise ValidationError({"variants": f"Variant {variant['name']!r}: {algorithm} v{version} is "
                                                   f"{status[algorithm, version]}; only a ready or active version "
                                                   "can be pinned."})


# ---------------------------------------------------------------- results

RESULT_COUNTS = ("clicks", "positives", "conversions", "dismissals")


def experiment_results(*, experiment: Experiment) -> dict:
    """Per group (the control and each variant): its users, impressions, items shown and rates with
    intervals; per variant its difference from the control on each rate, with an interval and p-value, and
    the users per group still needed to detect the difference seen on the primary metric (the
    experiment's ``metric``). The winner: the best group on the primary metric when it differs from the
    control (or the control from every variant) at p < ALPHA; None otherwise.

    The user is the unit of randomisation: each rate is a ratio of per-user sums and its variance is the
    delta method's (recommendations.stats), never a binomial over items. Counting is one SQL query.
    """
    sums = _per_user_sums(experiment.pk)
    control = _group_result(CONTROL, sums.get(CONTROL))
    variants = []
    for variant in variants_of(experiment.variants):
        result = _group_result(variant.name, sums.get(variant.name))
        result.update(_compared(result, control, experiment.metric))
        variants.append(result)
    return {"experiment": {"id": experiment.pk, "name": experiment.name, "status": experiment.status,
                           "metric": experiment.metric},
            "control": _public(control), "variants": [_public(variant) for variant in variants],
            "winner": _winner(control, variants, experiment.metric), "alpha": stats.ALPHA}


def _per_user_sums(experiment_id: int) -> dict[str, dict]:
    """{variant: {"users", "impressions", and RatioSums of each count over items shown}}.

    Two grouped subqueries, one row per (variant, user): what the user was shown, and the distinct
    (impression, item) pairs they acted on (recommendations.online's definitions); summed per variant
    with their squares and products around them, so that no per-user row reaches Python.
    """
    shown = (Impression.objects.filter(experiment_id=experiment_id)
             .values(arm=F("variant"), uid=F("user_id"))
             .annotate(impressions=Count("id"), items=Sum(online.items_count())).order_by())
    acted = (Interaction.objects.filter(impression__experiment_id=experiment_id, outcome__gt="")
             .values(arm=F("impression__variant"), uid=F("impression__user_id"))
             .annotate(**online.pair_counts()).order_by())
    shown_sql, shown_params = shown.query.sql_with_params()
    acted_sql, acted_params = acted.query.sql_with_params()
    per_count = ", ".join(
        f"SUM(COALESCE(a.{name}, 0)), SUM(COALESCE(a.{name}, 0) * COALESCE(a.{name}, 0)), "
        f"SUM(COALESCE(a.{name}, 0) * s.items)" for name in RESULT_COUNTS)
    query = (f"SELECT s.arm, COUNT(*), SUM(s.impressions), SUM(s.items), SUM(s.items * s.items), {per_count} "
             f"FROM ({shown_sql}) s LEFT JOIN ({acted_sql}) a ON a.arm = s.arm AND a.uid = s.uid GROUP BY s.arm")
    with connection.cursor() as cursor:
        cursor.execute(query, (*shown_params, *acted_params))
        rows = cursor.fetchall()
    result = {}
    for arm, users, impressions, items, items_squared, *per in rows:
        items, items_squared = float(items or 0), float(items_squared or 0)
        result[arm] = {"users": users, "impressions": int(impressions), "items_shown": int(items), **{
            name: stats.RatioSums(users=users, x=float(per[3 * i]), n=items, xx=float(per[3 * i + 1]),
                                  nn=items_squared, xn=float(per[3 * i + 2]))
            for i, name in enumerate(RESULT_COUNTS)}}
    return result


def _group_result(name: str, sums: dict | None) -> dict:
    sums = sums or {"users": 0, "impressions": 0, "items_shown": 0,
                    **{count: stats.RatioSums(0, 0, 0, 0, 0, 0) for count in RESULT_COUNTS}}
    estimates = {online.RATE_OF[count]: stats.ratio_estimate(sums[count]) for count in RESULT_COUNTS}
    return {"name": name, "users": sums["users"], "impressions": sums["impressions"],
            "items_shown": sums["items_shown"],
            "rates": {rate: estimate.value for rate, estimate in estimates.items()},
            "intervals": {rate: _clipped(estimate.interval()) for rate, estimate in estimates.items()},
            "_estimates": estimates}


def _compared(variant: dict, control: dict, metric: str) -> dict:
    differences = {}
    for rate, estimate in variant["_estimates"].items():
        tested = stats.difference_test(estimate, control["_estimates"][rate])
        differences[rate] = None if tested is None else {
            "difference": tested.difference, "interval": list(tested.interval), "p_value": tested.p_value}
    primary = differences[metric]
    return {"difference_vs_control": differences, "p_value": primary and primary["p_value"],
            "users_needed": _users_still_needed(variant, control, metric)}


def _users_still_needed(variant: dict, control: dict, metric: str) -> int | None:
    """Users per group still to come before the primary difference seen would be detected at ALPHA with
    POWER: 0 once both groups have them; None when no difference is seen (or none can be measured)."""
    treated, base = variant["_estimates"][metric], control["_estimates"][metric]
    if None in (treated.value, base.value, treated.per_user_variance, base.per_user_variance):
        return None
    needed = stats.users_needed(difference=treated.value - base.value, treatment_variance=treated.per_user_variance,
                                control_variance=base.per_user_variance)
    return None if needed is None else max(0, needed - min(treated.users, base.users))


def _winner(control: dict, variants: list[dict], metric: str) -> str | None:
    measured = [group for group in (control, *variants) if group["rates"][metric] is not None]
    if len(measured) < 2 or control not in measured:
        return None
    best = max(measured, key=lambda group: group["rates"][metric])  # the control first: it wins ties
    if best is control:
        beats_all = all(variant["p_value"] is not None and variant["p_value"] < stats.ALPHA
                        for variant in variants if variant in measured)
        return CONTROL if beats_all else None
    return best["name"] if best["p_value"] is not None and best["p_value"] < stats.ALPHA else None


def _clipped(interval: tuple[float, float] | None) -> list[float] | None:
    """A rate's interval within [0, 1], where the normal approximation can overshoot."""
    return None if interval is None else [max(0.0, interval[0]), min(1.0, interval[1])]


def _public(group: dict) -> dict:
    return {name: value for name, value in group.items() if not name.startswith("_")}


# ---------------------------------------------------------------- reads


def experiment_list():
    return Experiment.objects.select_related("created_by").order_by("-created_at", "-id")


def experiment_get(*, experiment_id: int) -> Experiment:
    experiment = experiment_list().filter(pk=experiment_id).first() if experiment_id <= MAX_ID else None
    if experiment is None:
        raise NotFound(f"No experiment has id {experiment_id}.")
    return experiment
