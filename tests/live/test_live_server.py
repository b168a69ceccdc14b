"""The live server fixture serves the real application."""


def test_the_live_server_answers_health_and_refuses_anonymous_api_calls(live_server_factory):
    server = live_server_factory()
    assert server.request("GET", "/api/v1/health").json()["database"] == "ok"
    server.create_user("livedev", "a-long-pass-phrase-42")
    token = server.token("livedev", "a-long-pass-phrase-42")
    assert server.request("GET", "/api/v1/me").status_code == 401
    me = server.request("GET", "/api/v1/me", headers={"Authorization": f"Token {token}"})
    assert me.json()["role"] == "developer"
