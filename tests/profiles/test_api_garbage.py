"""Whatever a client sends to a write endpoint, the answer is a 4xx or a success, never a 500, and a
refused request leaves every row as it was."""
import json

import pytest
from django.apps import apps

from tests.factories import (
    DeveloperFactory,
    FounderFactory,
    IndustryFactory,
    InvestorFactory,
    PositionFactory,
    SkillFactory,
    StartupFactory,
)

pytestmark = pytest.mark.django_db

# Raw bodies that are not a JSON object, or not JSON at all.
MALFORMED_BODIES = [b'{"name": ', b"not json", b"[1, 2]", b'"a string"', b"null", b"42", b'{"name": NaN}',
                    b'{"name": "\\ud800"}', b"\xff\xfe", b"", b'{"name": 1e309}', b'{"name": ' + b"9" * 400 + b"}",
                    b"[" * 1_000 + b"]" * 1_000, b'{"name": ' + b"[" * 100_000]
# Values that are wrong for most fields; a few of them are fine for some (a long description).
GARBAGE = [None, -1, 0, 10**30, -(10**30), 1.5, "", "x" * 5000, "\x00", "\ud800", "💥", [], {}, [None], [{}],
           ["x" * 5000], True, "2147483648", 2**63, ["python"] * 1_000]
# The subset tried one field at a time inside an otherwise valid body (every field x every value is slow).
FIELD_GARBAGE = [None, -1, 10**30, 1.5, "x" * 5000, "\x00", "\ud800", [], {}, True]


@pytest.fixture
def world():
    """A staff founder (so every write is permitted and reaches validation) and one row of each kind."""
    founder = FounderFactory(user__is_staff=True)
    industry = IndustryFactory(name="Fintech")
    skill = SkillFactory(name="python")
    startup = StartupFactory(founders=[founder], industry=industry)
    return {
        "user": founder.user,
        "developer": DeveloperFactory(),
        "founder": founder,
        "investor": InvestorFactory(),
        "startup": startup,
        "position": PositionFactory(startup=startup),
        "skill": skill,
    }


def write_endpoints(world) -> dict[str, tuple[str, str, dict]]:
    """For every write endpoint of the profiles API: (method, url, a valid body), keyed by a readable id."""
    startup_body = {"name": "Acme", "industry": "fintech", "stage": "seed", "team_size": 2, "funding_raised": 10,
                    "required_skills": ["python"], "location": "Rome", "remote_friendly": True, "description": "d"}
    position_body = {"startup": world["startup"].pk, "title": "Dev", "description": "d", "required_skills": ["python"],
                     "salary_min": 1, "salary_max": 2, "remote": True, "years_experience_required": 1,
                     "location": "Rome", "status": "open"}
    profile_bodies = {
        "developers": {"headline": "h", "skills": ["python"], "years_experience": 1,
                       "preferred_industries": ["fintech"], "remote_preference": "remote", "desired_salary": 5,
                       "location": "Rome"},
        "founders": {"skills": ["python"], "years_experience": 1, "location": "Rome"},
        "investors": {"firm": "f", "preferred_industries": ["fintech"], "preferred_stages": ["seed"],
                      "check_size_min": 1, "check_size_max": 2, "location": "Rome"},
    }
    endpoints = {
        "post-token": ("post", "/api/v1/auth/token", {"username": "u", "password": "p"}),
        "post-register": ("post", "/api/v1/auth/register", {"username": "newbie", "password": "a-Long-pass-phrase-42",
                                                            "email": "n@example.com", "role": "developer"}),
        "post-startups": ("post", "/api/v1/startups/", startup_body),
        "post-positions": ("post", "/api/v1/positions/", position_body),
        "post-skills": ("post", "/api/v1/skills/", {"name": "rust", "industry": "fintech"}),
        "post-interactions": ("post", "/api/v1/interactions", {"item_type": "position",
                                                               "item_id": world["position"].pk, "kind": "view"}),
    }
    detail_urls = {
        "developers": (f"/api/v1/developers/{world['developer'].user_id}/", profile_bodies["developers"]),
        "founders": (f"/api/v1/founders/{world['founder'].user_id}/", profile_bodies["founders"]),
        "investors": (f"/api/v1/investors/{world['investor'].user_id}/", profile_bodies["investors"]),
        "startups": (f"/api/v1/startups/{world['startup'].pk}/", startup_body),
        "positions": (f"/api/v1/positions/{world['position'].pk}/", position_body),
        "skills": (f"/api/v1/skills/{world['skill'].pk}/", {"name": "python3", "industry": None}),
    }
    for method in ("put", "patch"):
        for name, (url, body) in detail_urls.items():
            endpoints[f"{method}-{name}"] = (method, url, body)
    return endpoints


ENDPOINT_IDS = [f"post-{name}" for name in ("token", "register", "startups", "positions", "skills", "interactions")] + [
    f"{method}-{name}" for method in ("put", "patch")
    for name in ("developers", "founders", "investors", "startups", "positions", "skills")]


def snapshot() -> dict:
    """Every row of every profiles table, many-to-many links included, and the users and tokens: to show
    that a refused request wrote nothing."""
    models = [*apps.get_app_config("profiles").get_models(include_auto_created=True),
              apps.get_model("auth", "User"), apps.get_model("knox", "AuthToken")]
    return {model._meta.db_table: list(model.objects.order_by("pk").values()) for model in models}


def send(client, method, url, body: bytes):
    return getattr(client, method)(url, data=body, content_type="application/json")


@pytest.mark.parametrize("endpoint", ENDPOINT_IDS)
def test_every_write_endpoint_answers_garbage_with_a_4xx_and_writes_nothing(client_for, world, endpoint):
    method, url, valid = write_endpoints(world)[endpoint]
    bodies = list(MALFORMED_BODIES)
    bodies += [json.dumps({field: value for field in valid}).encode() for value in GARBAGE]
    if method != "put":  # PUT validates each field exactly as PATCH does; only its required fields differ
        bodies += [json.dumps({**valid, field: value}).encode() for field in valid for value in FIELD_GARBAGE]
    client = client_for(world["user"])
    failures = []
    before = snapshot()
    for body in bodies:
        response = send(client, method, url, body)
        after = snapshot()
        if response.status_code >= 500:
            failures.append(f"{method} {url} {body[:80]!r} -> {response.status_code}")
        elif response.status_code >= 400 and after != before:
            failures.append(f"{method} {url} {body[:80]!r} -> {response.status_code} but rows changed")
        before = after
    assert not failures, "\n".join(failures)


def test_malformed_json_is_a_400_that_says_so(client_for, world):
    response = send(client_for(world["user"]), "post", "/api/v1/startups/", b'{"name": ')

    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


@pytest.mark.parametrize("url", ["/api/v1/startups/", "/api/v1/positions/", "/api/v1/skills/",
                                 "/api/v1/developers/", "/api/v1/interactions"])
@pytest.mark.parametrize("params", [{"search": "a\x00b"}, {"ordering": "\x00"}, {"page_size": "-1"},
                                    {"industry": "\x00"}, {"skill": "%ff"}])
def test_garbage_query_parameters_never_cause_a_500(client_for, world, url, params):
    response = client_for(world["user"]).get(url, params)

    assert response.status_code < 500
