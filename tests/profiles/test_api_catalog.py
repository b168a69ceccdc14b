"""Startups, positions, skills and industries: who may change them, and how lists are filtered."""
import pytest

from profiles.models import Position, Skill, Startup
from profiles.serializers import MAX_LIST_ITEMS
from tests.factories import (
    FounderFactory,
    IndustryFactory,
    PositionFactory,
    SkillFactory,
    StartupFactory,
)

pytestmark = pytest.mark.django_db


def results(response) -> list:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- startups ------------------------------------------------------------------------------------

def test_founder_creates_a_startup_and_becomes_its_founder(client_for, founder):
    IndustryFactory(name="Fintech")
    SkillFactory(name="python")

    response = client_for(founder.user).post("/api/v1/startups/", {
        "name": "Ledgerly", "industry": "fintech", "stage": "pre_seed", "team_size": 3, "funding_raised": 250_000,
        "required_skills": ["Python"], "remote_friendly": True, "description": "Books for robots."}, format="json")

    assert response.status_code == 201
    startup = Startup.objects.get()
    assert response.json() == {
        "id": startup.pk, "name": "Ledgerly", "industry": "Fintech", "stage": "pre_seed", "team_size": 3,
        "funding_raised": 250_000, "required_skills": ["python"], "location": "", "remote_friendly": True,
        "description": "Books for robots.", "raising": False, "round_size": None, "round_closes_at": None,
        "founder_ids": [founder.user_id], "created_at": response.json()["created_at"],
        "updated_at": response.json()["updated_at"],
    }
    assert list(startup.founders.all()) == [founder]


def test_contract_paths_without_a_trailing_slash_work_for_posts(client_for, founder):
    IndustryFactory(name="Fintech")

    response = client_for(founder.user).post("/api/v1/startups", {"name": "NoSlash", "industry": "Fintech"},
                                             format="json")

    assert response.status_code == 201


def test_developer_and_investor_cannot_create_startups(client_for, developer, investor):
    IndustryFactory(name="Fintech")
    for user in (developer.user, investor.user):
        response = client_for(user).post("/api/v1/startups/", {"name": "Nope", "industry": "Fintech"}, format="json")
        assert response.status_code == 403
        assert "founder" in response.json()["detail"]
    assert not Startup.objects.exists()


def test_staff_may_create_a_startup_without_founders(client_for, staff_user):
    IndustryFactory(name="Fintech")

    response = client_for(staff_user).post("/api/v1/startups/", {"name": "Seeded", "industry": "Fintech"},
                                           format="json")

    assert response.status_code == 201
    assert response.json()["founder_ids"] == []


def test_anyone_authenticated_reads_the_catalog(client_for, developer):
    startup = StartupFactory()
    PositionFactory(startup=startup)

    client = client_for(developer.user)

    assert client.get(f"/api/v1/startups/{startup.pk}/").status_code == 200
    assert len(results(client.get("/api/v1/positions/"))) == 1


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_only_the_startups_founders_change_it(client_for, method):
    owner, stranger = FounderFactory(), FounderFactory()
    startup = StartupFactory(founders=[owner], name="Original")

    response = getattr(client_for(stranger.user), method)(f"/api/v1/startups/{startup.pk}/",
                                                           {"name": "Taken over", "industry": startup.industry.name},
                                                           format="json")

    assert response.status_code == 403
    startup.refresh_from_db()
    assert startup.name == "Original"


def test_a_founder_edits_and_deletes_their_startup(client_for, founder):
    startup = StartupFactory(founders=[founder])
    PositionFactory(startup=startup)
    client = client_for(founder.user)

    assert client.patch(f"/api/v1/startups/{startup.pk}/", {"stage": "series_a"}, format="json").status_code == 200
    startup.refresh_from_db()
    assert startup.stage == "series_a"

    assert client.delete(f"/api/v1/startups/{startup.pk}/").status_code == 204
    assert not Startup.objects.exists()
    assert not Position.objects.exists()


def test_staff_edit_any_startup(client_for, staff_user):
    startup = StartupFactory(founders=[FounderFactory()])

    response = client_for(staff_user).patch(f"/api/v1/startups/{startup.pk}/", {"team_size": 9}, format="json")

    assert response.status_code == 200
    assert Startup.objects.get().team_size == 9


@pytest.mark.parametrize(("payload", "field", "said"), [
    ({"team_size": 0}, "team_size", "greater than or equal to 1"),
    ({"round_size": -1}, "round_size", "greater than or equal to 0"),
    ({"round_size": 2**63}, "round_size", "less than or equal to"),
    ({"raising": "maybe"}, "raising", "Must be a valid boolean"),
    ({"round_closes_at": "next spring"}, "round_closes_at", "Datetime has wrong format"),
    ({"required_skills": ["python"] * (MAX_LIST_ITEMS + 1)}, "required_skills", f"At most {MAX_LIST_ITEMS} names"),
    ({"required_skills": ["python", "cobol", "ada"]}, "required_skills", "Unknown skills 'cobol', 'ada'"),
])
def test_a_startup_the_database_would_refuse_is_a_400_naming_the_field(client_for, founder, payload, field, said):
    IndustryFactory(name="Fintech")
    SkillFactory(name="python")
    startup = StartupFactory(founders=[founder], team_size=4)
    client = client_for(founder.user)

    created = client.post("/api/v1/startups/", {"name": "New", "industry": "fintech", **payload}, format="json")
    updated = client.patch(f"/api/v1/startups/{startup.pk}/", payload, format="json")

    for response in (created, updated):
        assert response.status_code == 400
        assert list(response.json()) == [field]
        assert said in response.json()[field][0]
    assert list(Startup.objects.values_list("pk", "team_size")) == [(startup.pk, 4)]


def test_startups_filter_by_industry_stage_remote_and_skill(client_for, developer):
    fintech, health = IndustryFactory(name="Fintech"), IndustryFactory(name="Health")
    python = SkillFactory(name="python")
    match = StartupFactory(industry=fintech, stage="seed", remote_friendly=True, required_skills=[python])
    StartupFactory(industry=fintech, stage="seed", remote_friendly=False, required_skills=[python])
    StartupFactory(industry=fintech, stage="idea", remote_friendly=True)
    StartupFactory(industry=health, stage="seed", remote_friendly=True)
    client = client_for(developer.user)

    rows = results(client.get("/api/v1/startups/", {"industry": "FINTECH", "stage": "seed",
                                                     "remote_friendly": "true", "skill": "Python"}))

    assert [row["id"] for row in rows] == [match.pk]
    assert len(results(client.get("/api/v1/startups/", {"industry": "fintech"}))) == 3


def test_startups_search_name_and_description_and_order(client_for, developer):
    StartupFactory(name="Solar Grid", funding_raised=10, description="power")
    StartupFactory(name="Lending", funding_raised=30, description="solar loans")
    StartupFactory(name="Other", funding_raised=20, description="nothing")
    client = client_for(developer.user)

    rows = results(client.get("/api/v1/startups/", {"search": "solar", "ordering": "-funding_raised"}))

    assert [row["name"] for row in rows] == ["Lending", "Solar Grid"]


def test_lists_are_paginated_with_count_and_links(client_for, developer):
    StartupFactory.create_batch(25)
    client = client_for(developer.user)

    first = client.get("/api/v1/startups/").json()
    second = client.get(first["next"]).json()
    small = client.get("/api/v1/startups/", {"page_size": 5}).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert (first["count"], len(first["results"]), first["previous"]) == (25, 20, None)
    assert (len(second["results"]), second["next"]) == (5, None)
    assert len(small["results"]) == 5
    assert {row["id"] for row in first["results"]}.isdisjoint({row["id"] for row in second["results"]})


@pytest.mark.parametrize("url", ["/api/v1/startups/", "/api/v1/positions/", "/api/v1/skills/"])
def test_a_list_page_costs_the_same_few_queries_however_many_rows(client_for, staff_user, url,
                                                                   django_assert_max_num_queries):
    skills = SkillFactory.create_batch(10, industry=IndustryFactory())
    for _ in range(10):
        PositionFactory(startup=StartupFactory(founders=[FounderFactory()], required_skills=skills),
                        required_skills=skills)
    client = client_for(staff_user)

    # token + count + page + one prefetch per many-to-many shown
    with django_assert_max_num_queries(6):
        assert len(results(client.get(url))) == 10


@pytest.mark.parametrize(("url", "params", "field"), [
    ("/api/v1/startups/", {"stage": "series_z"}, "stage"),
    ("/api/v1/startups/", {"remote_friendly": "maybe"}, "remote_friendly"),
    ("/api/v1/positions/", {"status": "hiring"}, "status"),
    ("/api/v1/positions/", {"startup": "abc"}, "startup"),
    ("/api/v1/positions/", {"startup": "1.5"}, "startup"),
    ("/api/v1/positions/", {"startup": "9" * 30}, "startup"),
    ("/api/v1/positions/", {"salary_min": "-1"}, "salary_min"),
    ("/api/v1/positions/", {"salary_max": "lots"}, "salary_max"),
    ("/api/v1/positions/", {"remote": "2"}, "remote"),
])
def test_malformed_filters_are_400s_naming_the_parameter(client_for, developer, url, params, field):
    response = client_for(developer.user).get(url, params)

    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("page", ["999999", "0", "abc", "9" * 40])
def test_out_of_range_pages_are_404s_not_500s(client_for, developer, page):
    StartupFactory()

    response = client_for(developer.user).get("/api/v1/startups/", {"page": page})

    assert response.status_code == 404
    assert "detail" in response.json()


def test_unknown_industry_is_a_400_naming_it(client_for, founder):
    response = client_for(founder.user).post("/api/v1/startups/", {"name": "X", "industry": "Alchemy"},
                                             format="json")

    assert response.status_code == 400
    assert "Alchemy" in response.json()["industry"][0]
    assert not Startup.objects.exists()


# --- positions -----------------------------------------------------------------------------------

def test_founder_creates_a_position_under_their_startup(client_for, founder):
    startup = StartupFactory(founders=[founder])
    SkillFactory(name="go")

    response = client_for(founder.user).post("/api/v1/positions/", {
        "startup": startup.pk, "title": "Platform Engineer", "required_skills": ["Go"], "salary_min": 90_000,
        "salary_max": 130_000, "remote": True, "years_experience_required": 4}, format="json")

    assert response.status_code == 201
    position = Position.objects.get()
    assert response.json()["id"] == position.pk
    assert response.json()["required_skills"] == ["go"]
    assert (position.startup, position.title, position.salary_max, position.status) == (
        startup, "Platform Engineer", 130_000, "open")


def test_a_founder_cannot_add_positions_to_another_founders_startup(client_for, founder):
    startup = StartupFactory(founders=[FounderFactory()])

    response = client_for(founder.user).post("/api/v1/positions/", {"startup": startup.pk, "title": "Mole"},
                                             format="json")

    assert response.status_code == 403
    assert not Position.objects.exists()


def test_a_developer_cannot_create_positions(client_for, developer):
    startup = StartupFactory()

    response = client_for(developer.user).post("/api/v1/positions/", {"startup": startup.pk, "title": "x"},
                                               format="json")

    assert response.status_code == 403


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_only_the_startups_founders_change_its_positions(client_for, founder, method):
    position = PositionFactory(startup=StartupFactory(founders=[FounderFactory()]), title="Original")

    response = getattr(client_for(founder.user), method)(f"/api/v1/positions/{position.pk}/", {"title": "Mine"},
                                                          format="json")

    assert response.status_code == 403
    assert Position.objects.get().title == "Original"


def test_a_founder_cannot_move_a_position_to_a_startup_they_do_not_found(client_for, founder):
    position = PositionFactory(startup=StartupFactory(founders=[founder]))
    foreign = StartupFactory(founders=[FounderFactory()])

    response = client_for(founder.user).patch(f"/api/v1/positions/{position.pk}/", {"startup": foreign.pk},
                                              format="json")

    assert response.status_code == 403
    position.refresh_from_db()
    assert position.startup != foreign


def test_founder_updates_and_deletes_their_position(client_for, founder):
    position = PositionFactory(startup=StartupFactory(founders=[founder]))
    client = client_for(founder.user)

    response = client.patch(f"/api/v1/positions/{position.pk}/", {"status": "filled"}, format="json")
    assert response.status_code == 200
    assert Position.objects.get().status == "filled"

    assert client.delete(f"/api/v1/positions/{position.pk}/").status_code == 204
    assert not Position.objects.exists()


@pytest.mark.parametrize(("payload", "field"), [
    ({"salary_min": 200_000, "salary_max": 100_000}, "salary_max"),
    ({"salary_min": -1}, "salary_min"),
    ({"salary_max": 10**12}, "salary_max"),
    ({"status": "hiring"}, "status"),
    ({"title": ""}, "title"),
    ({"years_experience_required": 71}, "years_experience_required"),
    ({"startup": 10**30}, "startup"),
    ({"startup": "abc"}, "startup"),
    ({"required_skills": ["not-a-skill"]}, "required_skills"),
    ({"openings": 0}, "openings"),
    ({"openings": 40_000}, "openings"),
])
def test_invalid_positions_are_400s_naming_the_field(client_for, founder, payload, field):
    startup = StartupFactory(founders=[founder])

    response = client_for(founder.user).post("/api/v1/positions/", {"startup": startup.pk, "title": "Engineer",
                                                                     **payload}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Position.objects.exists()


def test_a_startups_round_and_a_positions_openings_are_written_and_shown_and_applicants_are_read_only(
        client_for, founder):
    IndustryFactory(name="Fintech")
    client = client_for(founder.user)

    created = client.post("/api/v1/startups/", {"name": "Ledgerly", "industry": "fintech", "stage": "seed",
                                                "raising": True, "round_size": 3_000_000,
                                                "round_closes_at": "2027-03-01T00:00:00Z"}, format="json")
    assert created.status_code == 201, created.content
    startup = Startup.objects.get(pk=created.json()["id"])
    assert (startup.raising, startup.round_size, startup.round_closes_at.year) == (True, 3_000_000, 2027)
    assert (created.json()["raising"], created.json()["round_size"]) == (True, 3_000_000)
    plain = client.post("/api/v1/startups/", {"name": "Plain", "industry": "fintech"}, format="json").json()
    assert (plain["raising"], plain["round_size"], plain["round_closes_at"]) == (False, None, None)

    position = client.post("/api/v1/positions/", {"startup": startup.pk, "title": "Engineer", "openings": 2,
                                                  "applicants": 99}, format="json")
    assert position.status_code == 201, position.content
    assert (position.json()["openings"], position.json()["applicants"]) == (2, 0)
    assert Position.objects.get(pk=position.json()["id"]).applicants == 0
    default = client.post("/api/v1/positions/", {"startup": startup.pk, "title": "Designer"}, format="json").json()
    assert default["openings"] == 1


def test_narrowing_salary_max_below_the_stored_min_is_a_400(client_for, founder):
    position = PositionFactory(startup=StartupFactory(founders=[founder]), salary_min=100_000, salary_max=150_000)

    response = client_for(founder.user).patch(f"/api/v1/positions/{position.pk}/", {"salary_max": 90_000},
                                              format="json")

    assert response.status_code == 400
    assert "salary_min" in response.json()["salary_max"][0]
    assert Position.objects.get().salary_max == 150_000


def test_positions_filter_by_status_remote_startup_skill_and_salary(client_for, developer):
    python = SkillFactory(name="python")
    startup = StartupFactory()
    match = PositionFactory(startup=startup, status="open", remote=True, required_skills=[python],
                            salary_min=100_000, salary_max=140_000)
    PositionFactory(startup=startup, status="filled", remote=True, required_skills=[python])
    PositionFactory(startup=startup, status="open", remote=False, required_skills=[python])
    PositionFactory(startup=startup, status="open", remote=True, required_skills=[python], salary_min=50_000)
    PositionFactory(startup=startup, status="open", remote=True, salary_min=100_000)
    PositionFactory(status="open", remote=True, required_skills=[python], salary_min=100_000)

    rows = results(client_for(developer.user).get("/api/v1/positions/", {
        "status": "open", "remote": "1", "startup": startup.pk, "skill": "PYTHON", "salary_min": 90_000,
        "salary_max": 150_000}))

    assert [row["id"] for row in rows] == [match.pk]


def test_positions_search_title_and_description(client_for, developer):
    hit = PositionFactory(title="Rust Engineer")
    other = PositionFactory(title="Designer", description="loves rust belts")
    PositionFactory(title="Accountant", description="numbers")

    rows = results(client_for(developer.user).get("/api/v1/positions/", {"search": "rust", "ordering": "title"}))

    assert [row["id"] for row in rows] == [other.pk, hit.pk]


# --- skills and industries -----------------------------------------------------------------------

def test_skills_are_readable_and_searchable_by_everyone(client_for, developer):
    SkillFactory(name="python", industry=IndustryFactory(name="AI"))
    SkillFactory(name="pytorch", industry=IndustryFactory(name="AI"))
    SkillFactory(name="excel")
    client = client_for(developer.user)

    assert [row["name"] for row in results(client.get("/api/v1/skills/", {"search": "py"}))] == ["python", "pytorch"]
    assert [row["name"] for row in results(client.get("/api/v1/skills/", {"industry": "ai"}))] == ["python", "pytorch"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_non_staff_cannot_write_skills(client_for, founder, method):
    skill = SkillFactory(name="python")
    url = "/api/v1/skills/" if method == "post" else f"/api/v1/skills/{skill.pk}/"

    response = getattr(client_for(founder.user), method)(url, {"name": "cobol"}, format="json")

    assert response.status_code == 403
    assert list(Skill.objects.values_list("name", flat=True)) == ["python"]


def test_staff_create_skills_stored_lower_case(client_for, staff_user):
    IndustryFactory(name="AI")

    response = client_for(staff_user).post("/api/v1/skills/", {"name": " PyTorch ", "industry": "ai"}, format="json")

    assert response.status_code == 201
    assert response.json() == {"id": Skill.objects.get().pk, "name": "pytorch", "industry": "AI"}


def test_a_skill_name_that_differs_only_in_case_is_a_400(client_for, staff_user):
    SkillFactory(name="python")
    rust = SkillFactory(name="rust")
    client = client_for(staff_user)

    assert "name" in client.post("/api/v1/skills/", {"name": "Python"}, format="json").json()
    response = client.patch(f"/api/v1/skills/{rust.pk}/", {"name": "PYTHON"}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()
    assert sorted(Skill.objects.values_list("name", flat=True)) == ["python", "rust"]


def test_staff_rename_and_delete_skills(client_for, staff_user):
    skill = SkillFactory(name="js")
    client = client_for(staff_user)

    assert client.patch(f"/api/v1/skills/{skill.pk}/", {"name": "JavaScript"}, format="json").json()["name"] == \
        "javascript"
    assert client.delete(f"/api/v1/skills/{skill.pk}/").status_code == 204
    assert not Skill.objects.exists()


def test_industries_are_a_read_only_list(client_for, staff_user):
    IndustryFactory(name="Fintech")
    client = client_for(staff_user)

    assert [row["name"] for row in results(client.get("/api/v1/industries/"))] == ["Fintech"]
    assert client.post("/api/v1/industries/", {"name": "New"}, format="json").status_code == 405


def test_a_search_of_more_words_than_the_limit_is_a_400_naming_it(client_for, developer):
    from recsys_site.filters import MAX_SEARCH_WORDS

    client = client_for(developer.user)
    words = " ".join(f"w{n}" for n in range(MAX_SEARCH_WORDS))
    assert client.get("/api/v1/positions/", {"search": words}).status_code == 200
    answer = client.get("/api/v1/positions/", {"search": words + " one-more"})
    assert answer.status_code == 400
    assert f"At most {MAX_SEARCH_WORDS} search words" in answer.json()["search"]


def test_a_search_holding_a_null_character_is_a_400_naming_the_parameter(client_for, developer):
    answer = client_for(developer.user).get("/api/v1/positions/", {"search": "a\x00b"})
    assert answer.status_code == 400
    assert "Null characters are not allowed" in str(answer.json()["search"])
