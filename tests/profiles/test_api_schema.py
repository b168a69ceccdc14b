"""The OpenAPI schema documents every profiles endpoint and generates without warnings."""
import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PROFILES_PATHS = [
    "/api/v1/auth/token", "/api/v1/auth/register", "/api/v1/me",
    "/api/v1/developers/", "/api/v1/developers/{user_id}/",
    "/api/v1/founders/", "/api/v1/founders/{user_id}/",
    "/api/v1/investors/", "/api/v1/investors/{user_id}/",
    "/api/v1/startups/", "/api/v1/startups/{id}/",
    "/api/v1/positions/", "/api/v1/positions/{id}/",
    "/api/v1/skills/", "/api/v1/skills/{id}/",
    "/api/v1/industries/", "/api/v1/interactions/",
]


def test_schema_endpoint_lists_the_profiles_paths(api_client):
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(PROFILES_PATHS) <= set(paths)
    assert {"get", "post"} <= set(paths["/api/v1/startups/"])
    assert "post" not in paths["/api/v1/developers/"]


def test_schema_generates_without_warnings_or_errors(tmp_path):
    # --fail-on-warn turns every drf-spectacular warning (an untyped field, a guessed parameter) into an error.
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
