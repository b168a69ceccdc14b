"""Log-in, registration, /me, the 401 every anonymous request gets, and the tokens' life: expiry, revocation,
a password change; throttles where they live in the process (the rest against the real server, tests/live)."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.crypto import hash_token
from knox.models import AuthToken

from profiles.models import Developer, Founder, Investor
from tests.factories import PASSWORD, DeveloperFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()

PROTECTED = [
    ("get", "/api/v1/me"),
    ("get", "/api/v1/developers/"),
    ("get", "/api/v1/developers/1/"),
    ("patch", "/api/v1/developers/1/"),
    ("get", "/api/v1/founders/"),
    ("get", "/api/v1/investors/1/"),
    ("get", "/api/v1/startups/"),
    ("post", "/api/v1/startups/"),
    ("delete", "/api/v1/startups/1/"),
    ("get", "/api/v1/positions/"),
    ("post", "/api/v1/positions/"),
    ("get", "/api/v1/skills/"),
    ("post", "/api/v1/skills/"),
    ("get", "/api/v1/industries/"),
    ("get", "/api/v1/interactions"),
    ("post", "/api/v1/interactions"),
]


@pytest.mark.parametrize(("method", "url"), PROTECTED)
def test_anonymous_requests_get_401_with_a_token_challenge(api_client, method, url):
    response = getattr(api_client, method)(url, {}, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "detail" in response.json()


def test_a_bad_token_gets_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert api_client.get("/api/v1/me").status_code == 401


def test_the_token_of_a_deactivated_user_gets_401(api_client):
    user = DeveloperFactory(user__username="ada").user
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    assert api_client.get("/api/v1/me").status_code == 200

    User.objects.filter(pk=user.pk).update(is_active=False)

    response = api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert "inactive" in response.json()["detail"]


def test_a_token_authenticates_its_own_user_with_every_field_readable(api_client):
    user = UserFactory(username="ada", email="ada@example.com", is_staff=True)
    UserFactory(username="bob")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    request = api_client.get("/api/v1/me").wsgi_request

    assert (request.user.pk, request.user.username, request.user.is_staff) == (user.pk, "ada", True)
    assert request.user.email == "ada@example.com"  # not loaded by the token query: read on access
    assert request.auth.user == request.user
    assert request.auth == AuthToken.objects.get(user=user)  # the stored token, so that it can be revoked


@pytest.mark.parametrize("url", ["/api/v1/health", "/api/v1/schema/", "/api/docs/"])
def test_health_schema_and_docs_are_public(api_client, url):
    assert api_client.get(url).status_code == 200


def log_in(client, username="ada", password=PASSWORD):
    return client.post("/api/v1/auth/token", {"username": username, "password": password}, format="json")


def test_each_log_in_issues_a_new_token_stored_only_as_its_digest_with_its_expiry(api_client):
    user = UserFactory(username="ada")

    first, second = log_in(api_client), log_in(api_client)

    assert first.status_code == 200
    assert set(first.json()) == {"token", "expires_at"}
    assert first.json()["token"] != second.json()["token"]
    stored = {token.digest: token for token in AuthToken.objects.filter(user=user)}
    assert set(stored) == {hash_token(first.json()["token"]), hash_token(second.json()["token"])}
    token = stored[hash_token(first.json()["token"])]
    assert first.json()["token"] not in str(AuthToken.objects.filter(pk=token.pk).values().get())
    assert parse_datetime(first.json()["expires_at"]) == token.expiry


def test_tokens_expire_after_token_ttl_hours(api_client):
    UserFactory(username="ada")

    expires_at = parse_datetime(log_in(api_client).json()["expires_at"])

    assert abs(expires_at - (timezone.now() + timedelta(hours=720))) < timedelta(minutes=5)


def test_issued_token_authenticates_requests(api_client):
    DeveloperFactory(user__username="ada")
    token = log_in(api_client)

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")

    assert api_client.get("/api/v1/me").json()["username"] == "ada"


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_bad_credentials_get_400_with_a_clear_message(api_client, password):
    UserFactory(username="ada")

    response = api_client.post("/api/v1/auth/token", {"username": "ada", "password": password}, format="json")

    assert response.status_code == 400
    assert response.json() in ({"detail": "Unable to log in with that username and password."},
                               {"password": ["This field may not be blank."]})
    assert not AuthToken.objects.exists()


def test_token_request_without_fields_names_them(api_client):
    response = api_client.post("/api/v1/auth/token", {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_inactive_user_gets_no_token(api_client):
    UserFactory(username="ada", is_active=False)

    response = api_client.post("/api/v1/auth/token", {"username": "ada", "password": PASSWORD}, format="json")

    assert response.status_code == 400


@pytest.mark.parametrize(("role", "model"), [("developer", Developer), ("founder", Founder), ("investor", Investor)])
def test_register_creates_the_user_an_empty_profile_of_the_role_and_a_token(api_client, role, model):
    response = api_client.post("/api/v1/auth/register", {
        "username": "grace", "password": PASSWORD, "email": "grace@example.com", "role": role}, format="json")

    assert response.status_code == 201
    user = User.objects.get(username="grace")
    body = response.json()
    assert body == {"user_id": user.pk, "role": role, "token": body["token"], "expires_at": body["expires_at"]}
    assert AuthToken.objects.get(user=user).digest == hash_token(body["token"])
    assert parse_datetime(body["expires_at"]) == AuthToken.objects.get(user=user).expiry
    assert user.check_password(PASSWORD)
    assert user.email == "grace@example.com"
    assert model.objects.filter(user=user).exists()
    assert sum(m.objects.filter(user=user).count() for m in (Developer, Founder, Investor)) == 1


def test_registered_user_can_use_the_returned_token_at_once(api_client):
    body = api_client.post("/api/v1/auth/register", {
        "username": "grace", "password": PASSWORD, "email": "grace@example.com", "role": "investor"},
        format="json").json()

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    me = api_client.get("/api/v1/me").json()

    assert me["user_id"] == body["user_id"]
    assert me["role"] == "investor"


@pytest.mark.parametrize("password", ["123", "password", "12345678901", "grace1234"])
def test_register_refuses_a_weak_password_naming_the_field_and_creates_nothing(api_client, password):
    response = api_client.post("/api/v1/auth/register", {
        "username": "grace", "password": password, "email": "grace@example.com", "role": "developer"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["password"]
    assert not User.objects.exists()


def test_register_refuses_a_taken_username(api_client):
    UserFactory(username="grace")

    response = api_client.post("/api/v1/auth/register", {
        "username": "grace", "password": PASSWORD, "email": "g@example.com", "role": "developer"}, format="json")

    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.count() == 1


@pytest.mark.parametrize(("field", "value"), [
    ("role", "admin"),
    ("role", None),
    ("email", "not-an-email"),
    ("username", "has spaces"),
    ("username", "x" * 151),
    ("username", ""),
])
def test_register_refuses_invalid_fields_by_name(api_client, field, value):
    payload = {"username": "grace", "password": PASSWORD, "email": "grace@example.com", "role": "developer",
               field: value}

    response = api_client.post("/api/v1/auth/register", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not User.objects.exists()


def test_me_shows_the_user_role_and_profile(client_for):
    developer = DeveloperFactory(user__username="ada", headline="Rustacean")

    response = client_for(developer.user).get("/api/v1/me")

    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == developer.user_id
    assert body["username"] == "ada"
    assert body["role"] == "developer"
    assert body["is_staff"] is False
    assert body["profile"]["user_id"] == developer.user_id
    assert body["profile"]["headline"] == "Rustacean"


def test_me_of_a_user_without_a_role_has_no_profile(client_for, staff_user):
    body = client_for(staff_user).get("/api/v1/me").json()

    assert body["role"] is None
    assert body["profile"] is None
    assert body["is_staff"] is True


def test_session_authentication_works_too(api_client):
    developer = DeveloperFactory()
    api_client.force_login(developer.user)

    assert api_client.get("/api/v1/me").json()["user_id"] == developer.user_id


# --- the token's life -----------------------------------------------------------------------------

def authenticated_client(client, user) -> str:
    """Logs ``user`` in through the API and makes ``client`` send the token; the token."""
    key = log_in(client, user.username).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return key


def test_an_expired_token_gets_401_saying_it_expired(api_client):
    user = UserFactory(username="ada")
    authenticated_client(api_client, user)
    assert api_client.get("/api/v1/me").status_code == 200

    AuthToken.objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))

    response = api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"


def test_logging_in_again_drops_the_users_expired_tokens_only(api_client):
    user = UserFactory(username="ada")
    expired, live = log_in(api_client).json()["token"], log_in(api_client).json()["token"]
    AuthToken.objects.filter(digest=hash_token(expired)).update(expiry=timezone.now() - timedelta(days=1))

    newest = log_in(api_client).json()["token"]

    assert set(AuthToken.objects.filter(user=user).values_list("digest", flat=True)) == {
        hash_token(live), hash_token(newest)}


def test_delete_revokes_the_token_it_is_called_with_and_no_other(api_client):
    user = UserFactory(username="ada")
    other = log_in(api_client).json()["token"]
    authenticated_client(api_client, user)

    assert api_client.delete("/api/v1/auth/token").status_code == 204

    response = api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert api_client.delete("/api/v1/auth/token").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {other}")
    assert api_client.get("/api/v1/me").status_code == 200


def test_delete_without_a_token_gets_401_even_with_a_session(api_client):
    user = UserFactory(username="ada")
    api_client.force_login(user)

    response = api_client.delete("/api/v1/auth/token")

    assert response.status_code == 401
    assert "detail" in response.json()


@pytest.mark.parametrize("header", [
    "Token", "Token a b", "Token " + "0" * 64, "Token " + "g" * 64, "Token " + "0" * 63 + "\x00", "Token é" * 3,
    "Token " + "0" * 200,
])
def test_malformed_or_unknown_tokens_get_a_json_401(api_client, header):
    UserFactory(username="ada")
    log_in(api_client)
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json()["detail"]


def change_password_with_set_password(user):
    user.set_password("a-brand-new-pass-phrase")
    user.save()


def change_password_in_the_admin(user):
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    from django.test import Client

    admin = Client()
    admin.force_login(staff)
    response = admin.post(f"/admin/auth/user/{user.pk}/password/", {
        "password1": "a-brand-new-pass-phrase", "password2": "a-brand-new-pass-phrase", "usable_password": "true"})
    assert response.status_code == 302


def change_password_with_a_fresh_hash(user):
    from django.contrib.auth.hashers import make_password

    user.password = make_password("a-brand-new-pass-phrase")
    user.save(update_fields=["password"])


@pytest.mark.parametrize("change", [change_password_with_set_password, change_password_in_the_admin,
                                    change_password_with_a_fresh_hash])
def test_a_password_change_revokes_all_the_users_tokens_and_no_one_elses(api_client, change):
    user, bystander = UserFactory(username="ada"), UserFactory(username="bob")
    authenticated_client(api_client, user)
    log_in(api_client)
    log_in(api_client, "bob")

    change(get_user_model().objects.get(pk=user.pk))

    assert api_client.get("/api/v1/me").status_code == 401
    assert not AuthToken.objects.filter(user=user).exists()
    assert AuthToken.objects.filter(user=bystander).count() == 1
    assert log_in(api_client, password="a-brand-new-pass-phrase").status_code == 200


def test_saving_a_user_without_changing_the_password_keeps_the_tokens(api_client):
    user = UserFactory(username="ada")
    authenticated_client(api_client, user)
    user = get_user_model().objects.get(pk=user.pk)

    user.email = "new@example.com"
    user.save()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])

    assert api_client.get("/api/v1/me").status_code == 200


# --- tokens in the admin --------------------------------------------------------------------------

@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123"))
    return client


def test_the_admin_lists_whose_tokens_and_their_expiry_never_a_secret_or_digest(admin_client, api_client):
    user = UserFactory(username="ada")
    key = log_in(api_client).json()["token"]
    token = AuthToken.objects.get(user=user)

    pages = [admin_client.get("/admin/knox/authtoken/"), admin_client.get("/admin/knox/authtoken/?q=ada"),
             admin_client.get(f"/admin/auth/user/{user.pk}/delete/")]  # lists what deleting the user removes

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert "ada" in html
        assert token.digest not in html
        assert key not in html
        assert key[:8] not in html
    assert admin_client.get("/admin/knox/authtoken/add/").status_code == 403


def test_staff_revoke_the_selected_tokens_in_the_admin(admin_client, api_client):
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    revoked, kept = log_in(api_client).json()["token"], log_in(api_client, "bob").json()["token"]
    page = admin_client.get("/admin/knox/authtoken/").content.decode()
    from profiles.admin import token_handle

    handle = token_handle(hash_token(revoked))
    assert handle in page

    response = admin_client.post("/admin/knox/authtoken/", {"action": "revoke", "_selected_action": [handle]})

    assert response.status_code == 302
    assert not AuthToken.objects.filter(user=ada).exists()
    assert AuthToken.objects.get(user=bob).digest == hash_token(kept)


# --- throttles in the process ---------------------------------------------------------------------

def test_throttle_rates_follow_the_settings(api_client, settings):
    UserFactory(username="ada")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                          "login": "2/hour"}}

    answers = [log_in(api_client, password="wrong") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [400, 400, 429]
    assert 0 < int(answers[2]["Retry-After"]) <= 3600
    assert "throttled" in answers[2].json()["detail"].lower()


@pytest.fixture
def cache_down(settings):
    """The default cache is a Redis on a local port where nothing listens (bound, never listening)."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": f"redis://127.0.0.1:{held.getsockname()[1]}/0"}}
        yield


def test_throttles_let_requests_through_and_warn_when_the_cache_is_down(api_client, settings, cache_down, caplog,
                                                                         monkeypatch, client_for):
    from recsys_site import throttling

    monkeypatch.setitem(throttling._last_warning, "at", float("-inf"))
    user = UserFactory(username="ada")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {scope: "1/hour" for scope in
                                                          settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}}

    logins = [log_in(api_client).status_code for _ in range(2)]
    writes = [client_for(user).post("/api/v1/skills/", {}, format="json").status_code for _ in range(2)]

    assert logins == [200, 200]
    assert writes == [403, 403]  # refused by permission, not by throttle or a 500
    assert "cache is unreachable" in caplog.text
