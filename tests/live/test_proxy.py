"""X-Forwarded-Proto is believed only behind the configured proxy (TRUSTED_PROXY), by gunicorn and by Django alike."""
import pytest

CLAIM = {"X-Forwarded-Proto": "https"}


@pytest.mark.parametrize("trusted", [False, True])
def test_a_claimed_https_counts_only_behind_the_trusted_proxy(live_server_factory, trusted):
    server = live_server_factory(SECURE_SSL_REDIRECT="1", TRUSTED_PROXY="1" if trusted else "0")

    claimed = server.request("GET", "/api/v1/health", headers=CLAIM, allow_redirects=False)
    plain = server.request("GET", "/api/v1/health", allow_redirects=False)

    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    if trusted:
        assert claimed.status_code == 200  # the proxy says the client came over HTTPS
    else:
        assert claimed.status_code == 301  # anyone may send the header: it proves nothing
