"""Profiles by user id: each user reads and edits only their own; staff read and edit any."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from profiles.models import Developer, Investor, Stage
from profiles.serializers import MAX_LIST_ITEMS
from tests.factories import (
    DeveloperFactory,
    FounderFactory,
    IndustryFactory,
    InvestorFactory,
    SkillFactory,
    StartupFactory,
)

pytestmark = pytest.mark.django_db


def test_developer_reads_their_own_profile_with_skills_by_name(client_for):
    developer = DeveloperFactory(skills=[SkillFactory(name="python"), SkillFactory(name="django")],
                                 preferred_industries=[IndustryFactory(name="Fintech")])

    response = client_for(developer.user).get(f"/api/v1/developers/{developer.user_id}/")

    assert response.status_code == 200
    assert response.json() == {
        "user_id": developer.user_id, "username": developer.user.username, "headline": developer.headline,
        "skills": ["django", "python"], "years_experience": 3, "preferred_industries": ["Fintech"],
        "remote_preference": "any", "desired_salary": None, "location": "Berlin",
    }


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_a_user_cannot_read_or_edit_another_users_profile(client_for, method):
    me, other = DeveloperFactory(), DeveloperFactory(headline="untouched")

    response = getattr(client_for(me.user), method)(f"/api/v1/developers/{other.user_id}/",
                                                     {"headline": "hacked"}, format="json")

    assert response.status_code == 403
    other.refresh_from_db()
    assert other.headline == "untouched"


@pytest.mark.parametrize(("factory", "url"), [(FounderFactory, "founders"), (InvestorFactory, "investors")])
def test_other_roles_profiles_are_private_too(client_for, developer, factory, url):
    other = factory()

    assert client_for(developer.user).get(f"/api/v1/{url}/{other.user_id}/").status_code == 403
    assert client_for(other.user).get(f"/api/v1/{url}/{other.user_id}/").status_code == 200


def test_the_profile_list_of_a_non_staff_user_holds_only_their_own(client_for):
    me = DeveloperFactory()
    DeveloperFactory.create_batch(3)

    body = client_for(me.user).get("/api/v1/developers/").json()

    assert body["count"] == 1
    assert [row["user_id"] for row in body["results"]] == [me.user_id]


def test_staff_list_every_profile_and_edit_anyone(client_for, staff_user):
    developers = DeveloperFactory.create_batch(3)
    staff = client_for(staff_user)

    assert staff.get("/api/v1/developers/").json()["count"] == 3
    response = staff.patch(f"/api/v1/developers/{developers[0].user_id}/", {"headline": "by staff"}, format="json")

    assert response.status_code == 200
    developers[0].refresh_from_db()
    assert developers[0].headline == "by staff"


def test_a_missing_profile_is_404(client_for, developer):
    founder_url = f"/api/v1/founders/{developer.user_id}/"

    assert client_for(developer.user).get(founder_url).status_code == 404
    assert client_for(developer.user).get("/api/v1/developers/999999/").status_code == 404


@pytest.mark.parametrize("user_id", ["abc", "1.5", "99999999999999999999999"])
def test_a_malformed_user_id_in_the_url_is_404_not_500(client_for, developer, user_id):
    response = client_for(developer.user).get(f"/api/v1/developers/{user_id}/")

    assert response.status_code == 404
    assert "detail" in response.json()


def test_profiles_cannot_be_created_or_deleted_through_the_profile_endpoints(client_for, staff_user, developer):
    staff = client_for(staff_user)

    assert staff.post("/api/v1/developers/", {}, format="json").status_code == 405
    assert staff.delete(f"/api/v1/developers/{developer.user_id}/").status_code == 405
    assert Developer.objects.filter(pk=developer.pk).exists()


def test_developer_updates_skills_by_name_in_any_letter_case(client_for, developer):
    SkillFactory(name="python")
    SkillFactory(name="django")
    IndustryFactory(name="Fintech")

    response = client_for(developer.user).patch(f"/api/v1/developers/{developer.user_id}/", {
        "skills": ["Python", " DJANGO "], "preferred_industries": ["fintech"], "remote_preference": "remote",
        "desired_salary": 120_000}, format="json")

    assert response.status_code == 200
    assert response.json()["skills"] == ["django", "python"]
    assert response.json()["preferred_industries"] == ["Fintech"]
    developer.refresh_from_db()
    assert sorted(developer.skills.values_list("name", flat=True)) == ["django", "python"]
    assert developer.remote_preference == "remote"
    assert developer.desired_salary == 120_000


def test_an_industry_name_that_exists_in_two_letter_cases_picks_the_exact_one(client_for, developer):
    IndustryFactory(name="AI")
    IndustryFactory(name="ai")

    response = client_for(developer.user).patch(f"/api/v1/developers/{developer.user_id}/",
                                                {"preferred_industries": ["ai", "AI"]}, format="json")

    assert response.status_code == 200
    assert sorted(developer.preferred_industries.values_list("name", flat=True)) == ["AI", "ai"]


def test_an_unknown_skill_name_is_a_400_that_names_it_and_changes_nothing(client_for):
    developer = DeveloperFactory(skills=[SkillFactory(name="python")], headline="before")

    response = client_for(developer.user).patch(f"/api/v1/developers/{developer.user_id}/", {
        "headline": "after", "skills": ["python", "cobol-on-cogs"]}, format="json")

    assert response.status_code == 400
    assert "cobol-on-cogs" in response.json()["skills"][0]
    developer.refresh_from_db()
    assert developer.headline == "before"
    assert list(developer.skills.values_list("name", flat=True)) == ["python"]


@pytest.mark.parametrize(("field", "value"), [
    ("years_experience", -1),
    ("years_experience", 71),
    ("years_experience", "many"),
    ("desired_salary", -5),
    ("desired_salary", 10**30),
    ("remote_preference", "mars"),
    ("skills", "python"),
    ("skills", [1, 2]),
    ("preferred_industries", ["Nope"]),
    ("headline", "x" * 201),
])
def test_invalid_developer_fields_are_400s_naming_the_field(client_for, developer, field, value):
    response = client_for(developer.user).patch(f"/api/v1/developers/{developer.user_id}/", {field: value},
                                                format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_founder_profile_shows_their_startup_ids(client_for, founder):
    startups = StartupFactory.create_batch(2, founders=[founder])
    StartupFactory()

    body = client_for(founder.user).get(f"/api/v1/founders/{founder.user_id}/").json()

    assert sorted(body["startup_ids"]) == sorted(s.pk for s in startups)


def test_founder_startup_ids_are_read_only(client_for, founder):
    other = StartupFactory()

    response = client_for(founder.user).patch(f"/api/v1/founders/{founder.user_id}/",
                                              {"startup_ids": [other.pk], "years_experience": 4}, format="json")

    assert response.status_code == 200
    assert response.json()["startup_ids"] == []
    assert response.json()["years_experience"] == 4


def test_investor_updates_stages_industries_and_check_sizes(client_for, investor):
    IndustryFactory(name="Climate")

    response = client_for(investor.user).put(f"/api/v1/investors/{investor.user_id}/", {
        "firm": "Green Ventures", "preferred_industries": ["climate"], "preferred_stages": ["seed", "idea", "seed"],
        "check_size_min": 50_000, "check_size_max": 250_000, "location": "Oslo"}, format="json")

    assert response.status_code == 200
    investor.refresh_from_db()
    assert investor.preferred_stages == [Stage.SEED, Stage.IDEA]
    assert (investor.check_size_min, investor.check_size_max) == (50_000, 250_000)
    assert list(investor.preferred_industries.values_list("name", flat=True)) == ["Climate"]
    assert response.json()["preferred_stages"] == ["seed", "idea"]


def test_investor_unknown_stage_is_a_400_naming_the_field(client_for, investor):
    response = client_for(investor.user).patch(f"/api/v1/investors/{investor.user_id}/",
                                               {"preferred_stages": ["seed", "series_z"]}, format="json")

    assert response.status_code == 400
    assert "preferred_stages" in response.json()
    investor.refresh_from_db()
    assert investor.preferred_stages == [Stage.SEED, Stage.SERIES_A]


@pytest.mark.parametrize("payload", [
    {"check_size_min": 2_000_000},
    {"check_size_max": 10},
    {"check_size_min": 500, "check_size_max": 100},
])
def test_investor_check_size_min_above_max_is_a_400_naming_the_field(client_for, payload):
    investor = InvestorFactory(check_size_min=100_000, check_size_max=1_000_000)

    response = client_for(investor.user).patch(f"/api/v1/investors/{investor.user_id}/", payload, format="json")

    assert response.status_code == 400
    assert "check_size_min" in response.json()["check_size_max"][0]
    assert Investor.objects.filter(pk=investor.pk, check_size_min=100_000, check_size_max=1_000_000).exists()


# --- lists of names: one query, a cap, every unknown name in one error ---------------------------

def patch_queries(client, url: str, body: dict) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.patch(url, body, format="json")
    assert response.status_code == 200, response.content
    return len(queries)


def test_a_list_of_names_is_read_in_one_query_however_long_it_is(client_for, developer):
    names = [SkillFactory(name=f"skill-{n:03}").name for n in range(MAX_LIST_ITEMS)]
    client, url = client_for(developer.user), f"/api/v1/developers/{developer.user_id}/"

    one = patch_queries(client, url, {"skills": names[:1]})
    all_of_them = patch_queries(client, url, {"skills": [name.upper() for name in names]})

    assert all_of_them == one
    assert sorted(developer.skills.values_list("name", flat=True)) == names


@pytest.mark.parametrize("field", ["skills", "preferred_industries", "preferred_stages"])
def test_a_list_longer_than_the_cap_is_a_400_that_says_the_cap(client_for, developer, investor, field):
    user = investor.user if field == "preferred_stages" else developer.user
    url = f"/api/v1/{'investors' if field == 'preferred_stages' else 'developers'}/{user.pk}/"

    response = client_for(user).patch(url, {field: ["seed"] * (MAX_LIST_ITEMS + 1)}, format="json")

    assert response.status_code == 400
    assert str(MAX_LIST_ITEMS) in response.json()[field][0]


def test_every_unknown_name_is_listed_in_one_error(client_for):
    developer = DeveloperFactory(skills=[SkillFactory(name="python")])

    response = client_for(developer.user).patch(f"/api/v1/developers/{developer.user_id}/", {
        "skills": ["python", "cobol-on-cogs", "Fortran 77", "cobol-on-cogs"]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"skills": [
        "Unknown skills 'cobol-on-cogs', 'Fortran 77'; see /api/v1/skills/ for the known names."]}
    assert list(developer.skills.values_list("name", flat=True)) == ["python"]


@pytest.mark.parametrize("value", [{"python": 1}, "python", 7, [None], ["a\x00b"]])
def test_names_must_come_as_a_list_of_strings(client_for, developer, value):
    SkillFactory(name="python")

    response = client_for(developer.user).patch(f"/api/v1/developers/{developer.user_id}/", {"skills": value},
                                                format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["skills"]
    assert not developer.skills.exists()
