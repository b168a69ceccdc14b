"""Health endpoint, and a guard that CI really runs on PostgreSQL and Redis."""
import os

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def test_health_is_public_and_reports_the_database(api_client):
    response = api_client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert "broker" in response.json()


def test_health_reports_503_when_the_database_is_unreachable(api_client, monkeypatch):
    from recsys_site import health

    monkeypatch.setattr(health, "database_state", lambda: "unavailable: OperationalError")
    response = api_client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_health_sees_the_real_broker_when_one_is_configured(api_client):
    if not settings.CELERY_BROKER_URL:
        pytest.skip("no broker configured: tasks run in-process (CI sets REDIS_URL, so this runs there)")
    assert api_client.get("/api/v1/health").json()["broker"] == "ok"


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI must run against PostgreSQL and Redis")
def test_ci_runs_against_postgresql_and_redis():
    assert connection.vendor == "postgresql"
    assert settings.CELERY_BROKER_URL and settings.CELERY_BROKER_URL.startswith("redis://")
    assert not settings.CELERY_TASK_ALWAYS_EAGER


def test_openapi_schema_and_docs_are_public(api_client):
    assert api_client.get("/api/v1/schema/").status_code == 200
    assert api_client.get("/api/docs/").status_code == 200


def test_unknown_api_paths_get_a_json_404(api_client):
    response = api_client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert "/api/v1/no-such-endpoint" in response.json()["detail"]
