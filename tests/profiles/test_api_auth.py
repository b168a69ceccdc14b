"""Log-in, registration, /me, and the 401 every anonymous request gets."""
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

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
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert api_client.get("/api/v1/me").status_code == 200

    User.objects.filter(pk=user.pk).update(is_active=False)

    response = api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert "inactive" in response.json()["detail"]


def test_a_token_authenticates_its_own_user_with_every_field_readable(api_client):
    user = UserFactory(username="ada", email="ada@example.com", is_staff=True)
    UserFactory(username="bob")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    request = api_client.get("/api/v1/me").wsgi_request

    assert (request.user.pk, request.user.username, request.user.is_staff) == (user.pk, "ada", True)
    assert request.user.email == "ada@example.com"  # not loaded by the token query: read on access
    assert request.auth.user == request.user


@pytest.mark.parametrize("url", ["/api/v1/health", "/api/v1/schema/", "/api/docs/"])
def test_health_schema_and_docs_are_public(api_client, url):
    assert api_client.get(url).status_code == 200


def test_token_is_issued_for_good_credentials_and_is_stable(api_client):
    user = UserFactory(username="ada")

    first = api_client.post("/api/v1/auth/token", {"username": "ada", "password": PASSWORD}, format="json")
    second = api_client.post("/api/v1/auth/token", {"username": "ada", "password": PASSWORD}, format="json")

    assert first.status_code == 200
    assert first.json() == {"token": Token.objects.get(user=user).key}
    assert second.json() == first.json()


def test_issued_token_authenticates_requests(api_client):
    DeveloperFactory(user__username="ada")
    token = api_client.post("/api/v1/auth/token", {"username": "ada", "password": PASSWORD}, format="json")

    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")

    assert api_client.get("/api/v1/me").json()["username"] == "ada"


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_bad_credentials_get_400_with_a_clear_message(api_client, password):
    UserFactory(username="ada")

    response = api_client.post("/api/v1/auth/token", {"username": "ada", "password": password}, format="json")

    assert response.status_code == 400
    assert response.json() in ({"detail": "Unable to log in with that username and password."},
                               {"password": ["This field may not be blank."]})
    assert not Token.objects.exists()


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
    assert response.json() == {"user_id": user.pk, "role": role, "token": Token.objects.get(user=user).key}
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
