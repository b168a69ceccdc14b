"""GET /api/v1/health: database, broker and active models, without authentication."""
from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


def database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any driver error means the database cannot serve
        return f"unavailable: {exc.__class__.__name__}"


def broker_state() -> str:
    if not settings.CELERY_BROKER_URL:
        return "in-process (no broker configured)"
    from recsys_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return "ok"
    except Exception as exc:  # kombu raises many transport-specific errors
        return f"unavailable: {exc.__class__.__name__}"


class HealthApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses={200: dict, 503: dict})
    def get(self, request):
        database = database_state()
        body = {"status": "ok" if database == "ok" else "unavailable", "database": database,
                "broker": broker_state()}
        code = status.HTTP_200_OK if database == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(body, status=code)
