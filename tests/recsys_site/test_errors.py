"""Errors under /api/ are JSON that says what was wrong: bodies the parser refuses, uncaught exceptions with
DEBUG on or off, a body too large, and a database connection lost in the middle of a request.

The server's own pages (404, 405, 413 from gunicorn) are tested against gunicorn in tests/live/test_errors.py.
"""
import json
import logging
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections
from django.http import HttpResponse
from django.urls import include, path
from rest_framework.views import APIView

from profiles.models import Skill
from recsys_site.parsers import MAX_DEPTH
from tests.factories import DeveloperFactory, StartupFactory


def raise_in_plain_view(request):
    raise RuntimeError("a bug in a plain Django view")


def count_skills_in_plain_view(request):
    return HttpResponse(str(Skill.objects.count()))


class RaisingApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("a bug in a DRF view")


# This module is also the URLconf of the tests that need views the product does not have.
urlpatterns = [
    path("api/test/plain-bug", raise_in_plain_view),
    path("api/test/drf-bug", RaisingApi.as_view()),
    path("api/test/plain-count", count_skills_in_plain_view),
    path("not-api/plain-bug", raise_in_plain_view),
    path("", include("recsys_site.urls")),
]


@pytest.fixture
def test_views(settings):
    settings.ROOT_URLCONF = __name__


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def post_json(client, url: str, body: bytes):
    return client.post(url, data=body, content_type="application/json")


# --- the parser ----------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000])
def test_json_nested_too_deep_is_a_400_even_for_anonymous_log_ins(api_client, depth):
    body = b'{"username": ' + nested(depth - 1) + b', "password": "x"}'

    response = post_json(api_client, "/api/v1/auth/token", body)

    assert response.status_code == 400
    assert f"deeper than {MAX_DEPTH} levels" in response.json()["detail"]


@pytest.mark.django_db
def test_json_nested_up_to_the_limit_reaches_validation(api_client):
    body = b'{"username": ' + nested(MAX_DEPTH - 1) + b', "password": "x"}'

    response = post_json(api_client, "/api/v1/auth/token", body)

    assert response.status_code == 400
    assert "username" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(("literal", "said"), [
    (b"NaN", "NaN is not a number"), (b"Infinity", "Infinity is not a number"),
    (b"-Infinity", "-Infinity is not a number"), (b"1e309", "1e309 is too large"),
    (b"-1e400", "-1e400 is too large"), (b"1" * 400, "400 digits is larger than any number"),
])
def test_numbers_that_are_not_finite_are_400s_that_say_so(client_for, founder, literal, said):
    startup = StartupFactory(founders=[founder])
    body = b'{"startup": %d, "title": "Engineer", "salary_min": %s}' % (startup.pk, literal)

    response = post_json(client_for(founder.user), "/api/v1/positions/", body)

    assert response.status_code == 400
    assert said in response.json()["detail"]
    assert not startup.positions.exists()


@pytest.mark.django_db
def test_an_infinite_startup_id_is_a_400_not_an_overflow(client_for, founder):
    response = post_json(client_for(founder.user), "/api/v1/positions/", b'{"startup": 1e309, "title": "x"}')

    assert response.status_code == 400
    assert "finite" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b'{"name": "\\ud800"}', b'{"\\udfff": "x"}', b'{"a": [{"b": ["\\ud83d"]}]}'])
def test_lone_surrogates_anywhere_are_400s(client_for, founder, body):
    response = post_json(client_for(founder.user), "/api/v1/startups/", body)

    assert response.status_code == 400
    assert "surrogate" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=B"])
def test_a_form_with_more_fields_than_django_takes_is_a_400_that_says_so(client_for, developer, content_type):
    names = [f"s{n}" for n in range(1_500)]
    if content_type.startswith("multipart"):
        body = "--B\r\n" + "".join(f'Content-Disposition: form-data; name="skills"\r\n\r\n{name}\r\n--B\r\n'
                                    for name in names)
    else:
        body = urlencode([("skills", name) for name in names])

    response = client_for(developer.user).patch(f"/api/v1/developers/{developer.user_id}/", body,
                                                content_type=content_type)

    assert response.status_code == 400
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]


# --- uncaught exceptions and Django's own pages --------------------------------------------------

@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("url", ["/api/test/plain-bug", "/api/test/drf-bug"])
def test_an_uncaught_exception_under_api_is_a_logged_json_500(client, settings, test_views, caplog, debug, url):
    settings.DEBUG = debug
    client.raise_request_exception = False

    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get(url)

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Internal server error; it has been logged."}
    assert any(record.exc_info and isinstance(record.exc_info[1], RuntimeError) for record in caplog.records)


def test_an_uncaught_exception_outside_api_keeps_djangos_page(client, settings, test_views):
    client.raise_request_exception = False

    response = client.get("/not-api/plain-bug")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_path_is_a_json_404_with_debug_on_or_off(client, settings, debug):
    settings.DEBUG = debug

    response = client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json() == {"detail": "No endpoint at /api/v1/no-such-thing. See /api/docs/ for the API."}


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/nonexistent", "/api/whatever", "/api/v1/developers/1/nothing", "/api"])
def test_every_unknown_path_under_api_is_a_small_json_404_whatever_the_method_and_debug(client, settings, debug,
                                                                                      method, path):
    """Not Django's HTML debug page (13 KB) under DEBUG=1, as `make demo` runs: the API's error shape."""
    settings.DEBUG = debug

    response = getattr(client, method)(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": f"No endpoint at {path}. See /api/docs/ for the API."}
    assert len(response.content) < 200


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_method_an_endpoint_does_not_take_is_a_json_405_with_debug_on_or_off(client, settings, debug):
    settings.DEBUG = debug

    response = client.delete("/api/v1/health")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.'}
    assert response["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_pages_outside_api_keep_djangos_404(client, settings, debug):
    settings.DEBUG = debug

    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_the_docs_page_and_the_schema_are_untouched_and_their_405s_are_json(client):
    docs = client.get("/api/docs/")
    schema = client.get("/api/v1/schema/")
    refused = client.post("/api/docs/")

    assert docs.status_code == 200
    assert docs["Content-Type"].startswith("text/html")
    assert schema.status_code == 200
    assert schema["Content-Type"].startswith("application/vnd.oai.openapi")
    assert refused.status_code == 405
    assert refused.json() == {"detail": 'Method "POST" not allowed.'}
    assert refused["Allow"] == "GET, HEAD, OPTIONS"


# --- bodies over the limit -----------------------------------------------------------------------

@pytest.mark.django_db
def test_a_body_over_the_limit_is_a_413_naming_it(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000

    response = post_json(client, "/api/v1/auth/token", json.dumps({"username": "u" * 2_000}).encode())

    assert response.status_code == 413
    assert "limit of 1000 bytes" in response.json()["detail"]


# --- a database connection lost during the request (PostgreSQL) ----------------------------------

@pytest.fixture
def database_lost_at_next_query(db):
    """A context manager: inside it, the server ends this connection's backend (pg_terminate_backend, from a
    second connection) just before the next statement is sent, which then fails as on a real outage."""
    if connection.vendor != "postgresql":
        pytest.skip("terminating a backend is PostgreSQL's (CI runs this on PostgreSQL)")
    cut = []

    def terminate_first(execute, sql, params, many, context):
        if not cut:
            cut.append(sql)
            pid = connection.connection.info.backend_pid
            other = connections.create_connection(DEFAULT_DB_ALIAS)
            try:
                with other.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])  # waits until it is gone
            finally:
                other.close()
        return execute(sql, params, many, context)

    @contextmanager
    def armed():
        with connection.execute_wrapper(terminate_first):
            yield cut
        assert cut, "no statement ran"

    try:
        yield armed
    finally:
        connection.close()  # the dead connection; whatever comes next opens a new one


def logged_database_errors(caplog) -> list:
    return [record for record in caplog.records if record.exc_info and isinstance(record.exc_info[1], OperationalError)]


def test_a_lost_database_connection_in_an_api_view_is_a_logged_json_503(client_for, database_lost_at_next_query,
                                                                       caplog):
    client = client_for(DeveloperFactory().user)

    with database_lost_at_next_query():
        response = client.get("/api/v1/startups/")

    assert response.status_code == 503
    assert response.json() == {"detail": "The database is unavailable; try again in a moment."}
    assert logged_database_errors(caplog)


def test_a_lost_database_connection_outside_drf_is_a_logged_json_503(client, test_views, database_lost_at_next_query,
                                                                    caplog):
    with database_lost_at_next_query():
        response = client.get("/api/test/plain-count")

    assert response.status_code == 503
    assert response.json() == {"detail": "The database is unavailable; try again in a moment."}
    assert logged_database_errors(caplog)


def test_a_validation_error_raised_as_a_bare_list_answers_the_one_body_shape():
    from rest_framework.exceptions import ValidationError

    from recsys_site.exceptions import api_exception_handler

    answer = api_exception_handler(ValidationError(["First problem.", "Second problem."]), {"view": None})
    assert answer.status_code == 400
    assert answer.data == {"detail": "First problem. Second problem."}
