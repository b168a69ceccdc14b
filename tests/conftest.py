"""Shared fixtures: users of each role, API clients authenticated as them, a broker that refuses connections,
throttles that start empty and out of the way."""
import socket
from collections.abc import Callable

import pytest
from django.core.cache import cache
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import DeveloperFactory, FounderFactory, InvestorFactory, StaffUserFactory


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Real hashers cost ~100 ms per user on purpose; tests create hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def throttles_out_of_the_way(settings):
    """Every test starts with no throttle counts (the cache holds them: CI's is its own Redis database) and rates
    no test reaches: hundreds of tests log in, sign up and write from 127.0.0.1, some of them many times.
    A test of the throttles sets the rates it needs (tests/live/test_throttles.py runs the real server)."""
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        scope: "1000000/second" for scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}}


@pytest.fixture(autouse=True)
def registry_checked_on_every_request(settings, monkeypatch):
    # Tests rewrite the registry behind the ORM's back (bulk updates send no signal) and the database
    # rolls back between tests: every request must see the registry as it is, and serve a new version
    # as soon as it is loaded, however slow the machine. Spacing and background loads are tested apart.
    from recommendations.model_store import _Store

    settings.MODEL_REGISTRY_CHECK_SECONDS = 0
    monkeypatch.setattr(_Store, "SWAP_WAIT_SECONDS", 120.0)
    monkeypatch.setattr(_Store, "READ_IN_REQUEST", True)  # the loader's own connection cannot see the test's rows


@pytest.fixture(autouse=True)
def impressions_written_at_once(settings):
    # A test's rows live in its transaction, which the background writer's own connection cannot see: each
    # impression is written when it is recorded, on the test's connection. The writer is tested apart.
    settings.IMPRESSION_FLUSH_SECONDS = 0


@pytest.fixture
def broker_down(settings):
    """The product configured with a Redis broker on a local port where nothing listens: a real refused connection.

    The enqueue path reads the broker from settings on every call, so this is all it takes, and no connection
    or producer pooled by earlier tests can answer in its place. The port stays bound, never listening, for
    the whole test: connections to it are refused, and no other process (nor a client's own ephemeral port,
    which could connect to itself) can take it meanwhile.
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):  # the premise: dialling it really is refused
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        yield


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    """An API client that sends the given user's token, as a real client would."""

    def make(user) -> APIClient:
        client = APIClient()
        _, key = AuthToken.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


@pytest.fixture
def developer(db):
    return DeveloperFactory()


@pytest.fixture
def founder(db):
    return FounderFactory()


@pytest.fixture
def investor(db):
    return InvestorFactory()


@pytest.fixture
def staff_user(db):
    return StaffUserFactory()
