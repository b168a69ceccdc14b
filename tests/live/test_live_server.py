"""The live server fixture serves the real application."""


def test_the_live_server_answers_health_and_refuses_anonymous_api_calls(live_server_factory):
    server = live_server_factory()
    assert server.request("GET", "/api/v1/health").json()["database"] == "ok"
    server.create_user("livedev", "a-long-pass-phrase-42")
    token = server.token("livedev", "a-long-pass-phrase-42")
    assert server.request("GET", "/api/v1/me").status_code == 401
    me = server.request("GET", "/api/v1/me", headers={"Authorization": f"Token {token}"})
    assert me.json()["role"] == "developer"


def test_a_token_lives_until_it_is_revoked(live_server_factory):
    server = live_server_factory()
    server.create_user("livedev", "a-long-pass-phrase-42")
    issued = server.request("POST", "/api/v1/auth/token",
                            json={"username": "livedev", "password": "a-long-pass-phrase-42"}).json()
    headers = {"Authorization": f"Token {issued['token']}"}

    assert set(issued) == {"token", "expires_at"}
    assert server.request("DELETE", "/api/v1/auth/token", headers=headers).status_code == 204
    refused = server.request("GET", "/api/v1/me", headers=headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
