"""Health endpoint, and a guard that CI really runs on PostgreSQL and Redis."""
import os
import socket
import threading

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def test_health_is_public_and_reports_the_database(api_client):
    response = api_client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert "broker" in response.json()


def test_health_is_ok_with_no_model_ever_trained(api_client):
    body = api_client.get("/api/v1/health").json()
    assert body["status"] == "ok" and body["problems"] == []
    assert {state["state"] for state in body["models"].values()} == {"not trained"}


@pytest.fixture
def silent_broker(settings):
    """A Redis broker address that accepts connections and never answers a byte (a hung or half-open
    broker); yields a function that returns how many connections were made to it. Each is closed after
    10 s, so that a client without timeouts gets an error then rather than hanging the tests for good."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.05)
    accepted, stop = [], threading.Event()

    def accept_all() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue
            threading.Timer(10, accepted[-1].close).start()

    thread = threading.Thread(target=accept_all, daemon=True)
    thread.start()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{server.getsockname()[1]}/0"

    def connections_made() -> int:
        stop.set()
        thread.join()
        server.setblocking(False)
        while True:  # those still in the listen queue count too
            try:
                accepted.append(server.accept()[0])
            except BlockingIOError:
                return len(accepted)

    yield connections_made
    for client in accepted:
        client.close()
    server.close()


@pytest.fixture
def dropping_broker(settings):
    """A Redis broker address whose connections are never established (the SYNs are dropped, as by a
    firewall or a host gone): a socket listening with a backlog of one, which one connection fills."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        address = server.getsockname()
        with socket.create_connection(address):
            with pytest.raises(TimeoutError):  # the premise: a further connection is never established
                socket.create_connection(address, timeout=0.2).close()
            settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{address[1]}/0"
            yield


def test_health_is_degraded_and_names_the_broker_when_it_is_down(api_client, broker_down):
    response = api_client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["broker"].startswith("unavailable: OperationalError")
    assert any(problem.startswith("broker unavailable") for problem in body["problems"])


def test_health_gives_up_on_a_broker_that_never_answers_after_one_try(api_client, silent_broker):
    body = api_client.get("/api/v1/health").json()
    assert body["status"] == "degraded" and "Timeout" in body["broker"]
    assert silent_broker() == 1  # dialled once: no retry loop behind the answer


def test_health_gives_up_on_a_broker_that_drops_packets(api_client, dropping_broker):
    body = api_client.get("/api/v1/health").json()
    assert body["status"] == "degraded" and "Timeout connecting" in body["broker"]


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
