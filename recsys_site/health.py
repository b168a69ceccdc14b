"""GET /api/v1/health: database, broker and each algorithm's serving state, without authentication.

200 with status "ok", or "degraded" with ``problems`` naming what is wrong (the broker unreachable, an
active version that does not serve, an algorithm serving an earlier version than the one that was active
until it failed to load); 503 only when the database is unreachable, when nothing can serve.
"""
from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ml.models import Algorithm, ModelVersion
from ml.selectors import failed_over_versions


def database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any driver error means the database cannot serve
        return f"unavailable: {exc.__class__.__name__}"


def broker_state() -> str:
    """"ok", or why not, within ml.tasks.BROKER_TIMEOUT_SECONDS (a broker that never answers included)."""
    if not settings.CELERY_BROKER_URL:
        return "in-process (no broker configured)"
    from ml.tasks import broker_reachable

    try:
        broker_reachable(settings.CELERY_BROKER_URL)
        return "ok"
    except Exception as exc:  # kombu and redis-py raise many transport-specific errors
        return f"unavailable: {exc.__class__.__name__}: {exc}"


def models_state() -> tuple[dict[str, dict], list[str]]:
    """({algorithm: its serving state in this process}, the problems among them)."""
    from recommendations.model_store import serving_models

    models = serving_models()
    serving = models.serving_versions()
    active = dict(ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values_list("algorithm", "version"))
    failed = failed_over_versions()
    states, problems = {}, []
    for name in Algorithm.values:
        state, problem = _algorithm_state(name, serving[name], active.get(name), failed.get(name),
                                          models.unavailable.get(name))
        states[name] = {"state": state, "serving_version": serving[name], "active_version": active.get(name),
                        "problem": problem}
        if problem:
            problems.append(problem)
    return states, problems


def _algorithm_state(name: str, serving: int | None, active: int | None, failed: ModelVersion | None,
                     unavailable: str | None) -> tuple[str, str | None]:
    """("serving" | "not serving" | "earlier version" | "not trained", the problem or None)."""
    if active is not None and serving != active:
        return "not serving", f"{name} v{active} is active but does not serve: {unavailable}"
    if failed is not None and (serving is None or failed.version > serving):
        instead = f"serves v{serving} instead" if serving is not None else "has no earlier version that loads"
        return ("earlier version" if serving is not None else "not serving",
                f"{name} v{failed.version} failed ({failed.failure_reason}); {name} {instead}")
    if serving is None:
        return "not trained", None  # nothing was ever active: not a fault, recommendations fall back
    return "serving", None


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(tags=["meta"], responses={200: dict, 503: dict})
    def get(self, request):
        database = database_state()
        if database != "ok":
            body = {"status": "unavailable", "database": database, "broker": broker_state(), "models": None,
                    "problems": [f"database {database}"]}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        broker = broker_state()
        try:
            models, problems = models_state()
        except Exception as exc:  # the registry unreadable past the probe (a table missing, a lost link)
            models, problems = None, [f"models unknown: {type(exc).__name__}: {exc}"]
        if broker.startswith("unavailable"):
            problems.insert(0, f"broker {broker}")
        body = {"status": "degraded" if problems else "ok", "database": database, "broker": broker,
                "models": models, "problems": problems}
        return Response(body, status=status.HTTP_200_OK)
