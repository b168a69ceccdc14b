"""The OpenAPI schema documents every profiles endpoint, the error statuses each operation can answer with,
nullable fields and the filters' types, and generates without warnings."""
import pytest
from django.core.management import call_command
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from recsys_site.schema import error_statuses

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


# --- error statuses, nullable fields, filter types -----------------------------------------------

UNSAFE = {"post", "put", "patch", "delete"}


@pytest.fixture
def schema(api_client) -> dict:
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "patch", "delete"}:
                yield f"{method.upper()} {path}", method, operation


def lacking(schema: dict, status: str, applies) -> list[str]:
    """The operations ``applies`` picks that do not document ``status``."""
    return [name for name, method, operation in operations(schema)
            if applies(method, operation) and status not in operation["responses"]]


def authenticated(method, operation) -> bool:
    return any(requirement for requirement in operation.get("security", []))


def with_body(method, operation) -> bool:
    return "requestBody" in operation


def with_path_ids(method, operation) -> bool:
    return any(parameter["in"] == "path" for parameter in operation.get("parameters", []))


def with_query(method, operation) -> bool:
    return any(parameter["in"] == "query" for parameter in operation.get("parameters", []))


def test_every_authenticated_operation_documents_401_and_403(schema):
    assert len([name for name, *_ in operations(schema) if authenticated(*_)]) > 30
    assert lacking(schema, "401", authenticated) == []
    assert lacking(schema, "403", authenticated) == []


def test_anonymous_operations_that_authenticate_nobody_document_no_401(schema):
    for name in ["POST /api/v1/auth/token", "POST /api/v1/auth/register", "GET /api/v1/health"]:
        method, path = name.split()
        assert "401" not in schema["paths"][path][method.lower()]["responses"], name


def test_every_operation_with_a_body_documents_400_413_and_415(schema):
    for status in ["400", "413", "415"]:
        assert lacking(schema, status, with_body) == [], status


def test_query_parameters_document_400_and_path_ids_404(schema):
    assert lacking(schema, "400", with_query) == []
    assert lacking(schema, "404", with_path_ids) == []
    # a page past the end of a list is a 404 too
    assert "404" in schema["paths"]["/api/v1/startups/"]["get"]["responses"]


def test_every_operation_documents_414_and_503(schema):
    everything = lambda method, operation: True  # noqa: E731
    assert lacking(schema, "414", everything) == []
    assert lacking(schema, "503", everything) == []


def test_unsafe_operations_document_409(schema):
    assert lacking(schema, "409", lambda method, operation: method in UNSAFE) == []


def test_throttled_operations_document_429_and_reads_do_not(schema):
    # every write counts against the write rate; log-in, sign-up and recommendations have their own
    assert lacking(schema, "429", lambda method, operation: method in UNSAFE) == []
    assert "429" not in schema["paths"]["/api/v1/startups/"]["get"]["responses"]
    throttled = schema["paths"]["/api/v1/auth/token"]["post"]["responses"]["429"]
    assert throttled["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_error_responses_have_the_handlers_body(schema):
    components = schema["components"]["schemas"]
    assert components["ErrorDetail"]["properties"]["detail"] == {"type": "string"}
    assert components["ErrorDetail"]["required"] == ["detail"]
    me = schema["paths"]["/api/v1/me"]["get"]["responses"]
    assert me["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorDetail"}
    register = schema["paths"]["/api/v1/auth/register"]["post"]["responses"]
    assert register["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationErrors"}
    # gunicorn's own page, not JSON
    assert list(me["414"]["content"]) == ["text/html"]


def test_responses_views_declare_are_kept(schema):
    train = schema["paths"]["/api/v1/models/train"]["post"]["responses"]
    assert train["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Conflict"}
    assert train["503"]["description"] == "The task broker is unreachable."


def test_me_profile_is_nullable_and_null_without_a_role(schema, client_for):
    from tests.factories import UserFactory

    me = schema["components"]["schemas"]["Me"]["properties"]
    assert me["profile"]["nullable"] is True
    assert me["role"]["nullable"] is True
    assert {"$ref": "#/components/schemas/RoleEnum"} in me["role"]["oneOf"]
    response = client_for(UserFactory()).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["profile"] is None
    assert response.json()["role"] is None


def test_me_email_may_be_empty(schema, client_for):
    from tests.factories import UserFactory

    assert "format" not in schema["components"]["schemas"]["Me"]["properties"]["email"]
    assert client_for(UserFactory(email="")).get("/api/v1/me").json()["email"] == ""


@pytest.mark.parametrize(("path", "name"), [("/api/v1/positions/", "remote"),
                                            ("/api/v1/startups/", "remote_friendly")])
def test_boolean_filters_are_booleans(schema, path, name):
    [parameter] = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
    assert parameter["schema"] == {"type": "boolean"}


def test_id_filters_are_integers_with_the_bounds_they_enforce(schema):
    [startup] = [p for p in schema["paths"]["/api/v1/positions/"]["get"]["parameters"] if p["name"] == "startup"]
    assert startup["schema"]["type"] == "integer"
    assert startup["schema"]["minimum"] == 1


class EveryRequestCounted(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        return True


@pytest.mark.parametrize(("throttles", "method", "throttled"), [
    ([EveryRequestCounted], "GET", True),  # a view's own throttle counts every method
    ([EveryRequestCounted], "POST", True),
    ([], "POST", False),
])
def test_operations_whose_throttles_apply_document_429(throttles, method, throttled):
    view = type("View", (APIView,), {"throttle_classes": throttles})()
    assert (429 in error_statuses({"responses": {}}, method, view)) is throttled


def test_default_throttles_count_only_writes(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_CLASSES": [f"{__name__}.EveryRequestCounted"]}
    view = type("View", (APIView,), {"throttle_classes": api_settings.DEFAULT_THROTTLE_CLASSES})()
    assert 429 in error_statuses({"responses": {}}, "PATCH", view)
    assert 429 not in error_statuses({"responses": {}}, "GET", view)
