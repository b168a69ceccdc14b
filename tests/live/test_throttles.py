"""Throttles as deployed: gunicorn with 2 workers sharing their counts in Redis, rates from the environment.

Each server gets a Redis database of its own (emptied before it starts), so counts never leak between tests.
"""
import os
from urllib.parse import urlsplit

import pytest
import redis

PASSWORD = "a-long-pass-phrase-42"
THROTTLE_DB = 13  # apart from CI's broker (15) and in-process cache (14)


@pytest.fixture
def throttle_cache_url() -> str:
    """redis://<REDIS_URL's host, or the local one>/13, emptied."""
    where = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    url = f"redis://{where.netloc}/{THROTTLE_DB}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    except redis.ConnectionError:
        pytest.skip(f"the shared-throttle tests need Redis ({url} does not answer; CI sets REDIS_URL)")
    return url


def statuses(answers) -> list[int]:
    return [answer.status_code for answer in answers]


def assert_throttled(answer) -> None:
    assert answer.status_code == 429
    assert 1 <= int(answer.headers["Retry-After"]) <= 3600
    assert "throttled" in answer.json()["detail"].lower()


def test_the_fourth_log_in_from_an_address_is_429_however_the_header_claims_another(live_server_factory,
                                                                                    throttle_cache_url):
    server = live_server_factory(CACHE_URL=throttle_cache_url, THROTTLE_LOGIN="3/hour")
    server.create_user("admin", PASSWORD, role=None, staff=True)

    def log_in(password, **headers):
        return server.request("POST", "/api/v1/auth/token", json={"username": "admin", "password": password},
                              headers=headers)

    wrong = [log_in(f"guess-{n}") for n in range(3)]
    fourth = log_in("guess-3")
    spoofed = log_in("guess-4", **{"X-Forwarded-For": "203.0.113.9"})  # no trusted proxy: not believed
    right = log_in(PASSWORD)

    assert statuses(wrong) == [400, 400, 400]
    for answer in (fourth, spoofed, right):
        assert_throttled(answer)
    # the count is in Redis, where both workers read it
    assert redis.Redis.from_url(throttle_cache_url).keys("*throttle_login_127.0.0.1")


def test_sign_ups_from_an_address_are_limited(live_server_factory, throttle_cache_url):
    server = live_server_factory(CACHE_URL=throttle_cache_url, THROTTLE_REGISTER="2/hour")

    answers = [server.request("POST", "/api/v1/auth/register", json={
        "username": f"newcomer{n}", "password": PASSWORD, "email": f"n{n}@example.com", "role": "developer"})
        for n in range(3)]

    assert statuses(answers[:2]) == [201, 201]
    assert_throttled(answers[2])
    assert int(answers[2].headers["Retry-After"]) > 60  # an hour's window


def test_a_users_writes_are_limited_another_users_are_not_and_reads_never_count(live_server_factory,
                                                                                throttle_cache_url):
    server = live_server_factory(CACHE_URL=throttle_cache_url, THROTTLE_WRITE="3/hour")
    for name in ("ada", "bob"):
        server.create_user(name, PASSWORD)
    ada = {"Authorization": f"Token {server.token('ada', PASSWORD)}"}
    bob = {"Authorization": f"Token {server.token('bob', PASSWORD)}"}
    ada_id = server.request("GET", "/api/v1/me", headers=ada).json()["user_id"]
    bob_id = server.request("GET", "/api/v1/me", headers=bob).json()["user_id"]

    def write(headers, user_id):
        return server.request("PATCH", f"/api/v1/developers/{user_id}/", json={"headline": "Rust"}, headers=headers)

    reads = [server.request("GET", "/api/v1/me", headers=ada) for _ in range(5)]
    writes = [write(ada, ada_id) for _ in range(4)]

    assert statuses(reads) == [200] * 5
    assert statuses(writes[:3]) == [200, 200, 200]
    assert_throttled(writes[3])
    assert write(bob, bob_id).status_code == 200
    assert server.request("GET", f"/api/v1/developers/{ada_id}/", headers=ada).status_code == 200


def test_recommendations_have_their_own_per_user_rate(live_server_factory, throttle_cache_url):
    server = live_server_factory(CACHE_URL=throttle_cache_url, THROTTLE_RECOMMENDATIONS="2/hour",
                                 THROTTLE_WRITE="1/hour")
    server.create_user("ada", PASSWORD)
    ada = {"Authorization": f"Token {server.token('ada', PASSWORD)}"}
    ada_id = server.request("GET", "/api/v1/me", headers=ada).json()["user_id"]

    answers = [server.request("POST", "/api/v1/recommendations", headers=ada,
                              json={"user_id": ada_id, "user_type": "developer", "limit": 5}) for _ in range(3)]

    assert all(code not in (429, 500) for code in statuses(answers[:2]))  # not counted as writes (1/hour)
    assert_throttled(answers[2])
