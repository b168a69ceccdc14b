"""Reads of the model registry: the hybrid weights in force, their mode and history."""
from .models import HybridWeights, ModelVersion, TrainingRun, default_weights


def current_weights() -> dict[str, float]:
    """The weights in force, for every algorithm: the pinned ones in manual mode; in tuned mode (the
    default) the tuned weights of the run whose versions serve (:func:`tuned_weights`)."""
    return weights_in_force()[0]


def weights_in_force() -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(the weights in force, {role: the weights that replace them for that role's users}). Manual mode pins
    one set for everyone; tuned mode serves the tuned run's weights, and its own for each role that had
    enough validation users (roles are recommended different item types, which different signals predict)."""
    latest = _latest_change()
    if latest is not None and latest.mode == HybridWeights.Mode.MANUAL:
        return latest.as_dict(), {}
    run = tuned_run()
    if run is None:
        return default_weights(), {}
    return (_every_algorithm(_tuned(run)["weights"]),
            {role: _every_algorithm(weights) for role, weights in _tuned(run).get("by_role", {}).items()})


def tuned_weights() -> dict[str, float]:
    """What tuned mode serves: the tuned weights of :func:`tuned_run`, else the default weights."""
    run = tuned_run()
    return default_weights() if run is None else _every_algorithm(_tuned(run)["weights"])


def tuned_run() -> TrainingRun | None:
    """The newest succeeded run with tuned weights among those whose versions are active, and whose weights
    were tuned over every active algorithm: they were tuned for the models that serve. A run whose versions
    were kept ready (not better) does not count, nor one that retrained a few algorithms and tuned only
    them (its weights would give the other active ones none)."""
    active = set(ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("algorithm", flat=True))
    runs = (TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED, tuned__isnull=False,
                                       model_versions__status=ModelVersion.Status.ACTIVE)
            .distinct().order_by("-created_at", "-id"))
    return next((run for run in runs if active <= set(_tuned(run).get("weights", {}))), None)


def _tuned(run: TrainingRun) -> dict:
    """A run's tuned weights and how they were chosen; {} for a run that tuned none (:func:`tuned_run`
    finds only runs that did)."""
    return run.tuned or {}


def weights_state() -> dict:
    """GET /api/v1/models/weights: the mode, the weights in force, the tuned ones (or None before any
    training tuned them) and every change, newest first."""
    latest = _latest_change()
    run = tuned_run()
    tuned = None if run is None else {"weights": _every_algorithm(_tuned(run)["weights"]),
                                      "by_role": {role: _every_algorithm(weights)
                                                  for role, weights in _tuned(run).get("by_role", {}).items()},
                                      "validation_ndcg": _tuned(run).get("validation_ndcg"), "training_run_id": run.pk}
    pinned = latest if latest is not None and latest.mode == HybridWeights.Mode.MANUAL else None
    manual = pinned is not None
    history = [{"weights": row.as_dict(), "mode": row.mode,
                "changed_by": row.changed_by.username if row.changed_by else None, "changed_at": row.changed_at}
               for row in HybridWeights.objects.select_related("changed_by").order_by("-changed_at", "-id")]
    return {"mode": HybridWeights.Mode.MANUAL if manual else HybridWeights.Mode.TUNED,
            "weights": pinned.as_dict() if pinned else (tuned["weights"] if tuned else default_weights()),
            "tuned": tuned, "history": history}


def _latest_change() -> HybridWeights | None:
    return HybridWeights.objects.order_by("-changed_at", "-id").first()


def _every_algorithm(weights: dict[str, float]) -> dict[str, float]:
    """``weights`` over every algorithm (0 for those a run did not tune), summing to 1."""
    full = {name: float(weights.get(name, 0.0)) for name in default_weights()}
    total = sum(full.values())
    return {name: value / total for name, value in full.items()} if total > 0 else default_weights()


def failed_over_versions() -> dict[str, ModelVersion]:
    """{algorithm: its newest version that was failed while active (serving could not load it)}; the
    serving state compares it with the version that serves now (recsys_site.health, /algorithms/status)."""
    failed = (ModelVersion.objects.filter(status=ModelVersion.Status.FAILED, activated_at__isnull=False)
              .exclude(failure_reason="").order_by("algorithm", "-version"))
    newest: dict[str, ModelVersion] = {}
    for version in failed:
        newest.setdefault(version.algorithm, version)
    return newest
