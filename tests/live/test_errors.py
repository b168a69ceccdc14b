"""Under gunicorn with production settings, every error under /api/ is JSON with DEBUG off and on: paths that
match nothing, methods a view does not take, bodies over the limit, and JSON nested too deep, even before
anyone logs in. Pages outside /api/ keep Django's HTML, and the API's docs stay as they are."""
import json

import pytest

from tests.live.conftest import _servers

LIMIT = 4_096  # MAX_REQUEST_BODY_BYTES of these servers


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"] == "application/json", response.text[:300]
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.fixture(scope="module", params=["0", "1"], ids=["debug-off", "debug-on"])
def server(request, tmp_path_factory):
    """One server per DEBUG value for the whole module (these tests only read): live_server_factory's, shared."""
    with _servers(tmp_path_factory.mktemp(f"debug-{request.param}")) as start:
        yield start(DEBUG=request.param, MAX_REQUEST_BODY_BYTES=str(LIMIT))


def test_unknown_api_paths_are_json_404s(server):
    for path in ("/api/v1/no-such-thing", "/api/v2/", "/api/"):
        body = assert_json_error(server.request("GET", path), 404)
        assert path in body["detail"]


def test_a_method_a_view_does_not_take_is_a_json_405(server):
    for method, path in (("DELETE", "/api/v1/health"), ("POST", "/api/docs/"), ("PUT", "/api/v1/schema/")):
        response = server.request(method, path)
        assert_json_error(response, 405)
        assert method not in response.headers["Allow"]


def test_a_body_over_the_limit_is_a_json_413_naming_it(server):
    response = server.request("POST", "/api/v1/auth/token", data=json.dumps({"username": "u" * 2 * LIMIT}),
                              headers={"Content-Type": "application/json"})

    body = assert_json_error(response, 413)
    assert f"limit of {LIMIT} bytes" in body["detail"]


def test_a_chunked_body_over_the_limit_is_never_taken_in(server):
    """Without a Content-Length neither Django nor DRF reads a body: it is an empty request, refused as one."""
    chunks = (b'{"username": "' + b"u" * LIMIT + b'", "password": "p"}' for _ in range(1))

    response = server.request("POST", "/api/v1/auth/token", data=chunks, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {"username": ["This field is required."], "password": ["This field is required."]}


def test_json_nested_too_deep_is_a_json_400_for_an_anonymous_log_in(server):
    body = '{"username": ' + "[" * 1_000 + "]" * 1_000 + ', "password": "p"}'

    response = server.request("POST", "/api/v1/auth/token", data=body, headers={"Content-Type": "application/json"})

    assert "deeper than 32 levels" in assert_json_error(response, 400)["detail"]


def test_an_anonymous_call_is_a_json_401(server):
    assert_json_error(server.request("GET", "/api/v1/me"), 401)


def test_the_docs_and_pages_outside_api_keep_their_html(server):
    docs = server.request("GET", "/api/docs/")
    schema = server.request("GET", "/api/v1/schema/")
    missing_page = server.request("GET", "/no-such-page")

    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")
    assert schema.status_code == 200 and schema.headers["Content-Type"].startswith("application/vnd.oai.openapi")
    assert missing_page.status_code == 404 and missing_page.headers["Content-Type"].startswith("text/html")
