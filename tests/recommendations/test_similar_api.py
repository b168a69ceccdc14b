"""GET /api/v1/{positions,startups,developers,investors}/<id>/similar: items of the same type, never the item
itself, only ones that may be shown, best first, with reasons naming what they share; catalog ones for
anyone signed in, people ones for founders and staff; unknown, closed or untrained items a 404 saying which."""
import pytest

from profiles.models import Developer, Founder, Investor, Position, Startup
from tests.factories import DeveloperFactory, PositionFactory

from .test_recommendations_api import user


def similar_url(item_type: str, item_id: int) -> str:
    return f"/api/v1/{item_type}s/{item_id}/similar"


def similar(client, item_type: str, item_id: int, **query) -> dict:
    response = client.get(similar_url(item_type, item_id), query)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def developer_client(world, client_for):
    return client_for(user(Developer, world.developer_id))


@pytest.fixture
def founder_client(world, client_for):
    return client_for(user(Founder, world.founder_id))


def open_position() -> Position:
    return Position.objects.filter(status="open", required_skills__isnull=False).order_by("pk").first()


def skills_of(position: Position) -> set[str]:
    return {name.lower() for name in position.required_skills.values_list("name", flat=True)}


def test_similar_positions_are_other_open_positions_best_first_with_their_titles(world, developer_client):
    position = open_position()
    answer = similar(developer_client, "position", position.pk)

    results = answer["results"]
    assert set(answer) == {"results"}
    assert len(results) == 10
    assert all(set(item) == {"item_type", "item_id", "title", "score", "reasons"} for item in results)
    assert {item["item_type"] for item in results} == {"position"}
    assert position.pk not in [item["item_id"] for item in results]
    shown = Position.objects.in_bulk([item["item_id"] for item in results])
    assert all(shown[item["item_id"]].status == "open" and shown[item["item_id"]].title == item["title"]
               for item in results)
    scores = [item["score"] for item in results]
    assert scores == sorted(scores, reverse=True)
    assert all(item["reasons"] for item in results[:5]), results


def test_a_content_reason_names_skills_both_positions_ask_for(world, developer_client):
    position = open_position()
    own = skills_of(position)
    results = similar(developer_client, "position", position.pk, limit=30)["results"]

    checked = 0
    for item in results:
        for reason in item["reasons"]:
            if reason.startswith("Shares ") and "industry:" not in reason.split(";")[0]:
                named = {s.strip() for s in reason.removeprefix("Shares ").split(";")[0].split(",")} - {"..."}
                other = skills_of(Position.objects.get(pk=item["item_id"]))
                if named <= own | other and named & own:  # skills (words are only named when nothing else is)
                    assert named <= own & other, (reason, own, other)
                    checked += 1
    assert checked, results


def test_a_co_interaction_reason_names_the_item_asked_about(world, developer_client):
    position = open_position()
    results = similar(developer_client, "position", position.pk, limit=30)["results"]

    said = f"People who viewed {position.title} at {position.startup.name} also viewed this one"
    assert any(said in item["reasons"] for item in results), results


def test_limit_is_honoured_and_validated(world, developer_client):
    position = open_position()
    assert len(similar(developer_client, "position", position.pk, limit=3)["results"]) == 3
    for bad in ("0", "101", "ten"):
        response = developer_client.get(similar_url("position", position.pk), {"limit": bad})
        assert response.status_code == 400 and "limit" in response.json(), bad
    response = developer_client.get(similar_url("position", position.pk), {"limt": 3})
    assert response.status_code == 400 and "limt" in response.json()


def test_a_position_closed_since_training_is_no_longer_shown_and_has_no_similar_ones(world, developer_client):
    position = open_position()
    first = similar(developer_client, "position", position.pk)["results"][0]["item_id"]
    Position.objects.filter(pk=first).update(status="closed")

    results = similar(developer_client, "position", position.pk)["results"]
    assert first not in [item["item_id"] for item in results]
    assert len(results) == 10

    response = developer_client.get(similar_url("position", first))
    assert response.status_code == 404
    assert response.json()["detail"] == (
        f"Position {first} is closed; similar positions are shown for open positions only.")


def test_unknown_items_are_404_saying_so(world, developer_client):
    for item_type in ("position", "startup"):
        response = developer_client.get(similar_url(item_type, 10**9))
        assert response.status_code == 404
        assert response.json()["detail"] == f"No {item_type} has id {10**9}."
    assert developer_client.get(similar_url("position", 2**63)).status_code == 404


def test_a_startup_deleted_since_training_is_404_and_never_a_similar_one(world, developer_client):
    startup = Startup.objects.order_by("pk").first()
    gone = similar(developer_client, "startup", startup.pk)["results"][0]["item_id"]
    Startup.objects.filter(pk=gone).delete()

    assert gone not in [item["item_id"] for item in similar(developer_client, "startup", startup.pk)["results"]]
    response = developer_client.get(similar_url("startup", gone))
    assert response.status_code == 404 and response.json()["detail"] == f"No startup has id {gone}."


def test_similar_startups_for_developers_and_investors(world, developer_client, client_for):
    startup = Startup.objects.order_by("pk").first()
    investor_client = client_for(user(Investor, world.investor_id))
    for client in (developer_client, investor_client):
        results = similar(client, "startup", startup.pk, limit=5)["results"]
        assert len(results) == 5
        assert {item["item_type"] for item in results} == {"startup"}
        assert startup.pk not in [item["item_id"] for item in results]


def test_a_position_created_since_training_is_compared_by_its_content(world, developer_client):
    known = open_position()
    fresh = PositionFactory(startup=known.startup, required_skills=list(known.required_skills.all()))

    results = similar(developer_client, "position", fresh.pk, limit=5)["results"]
    assert results and fresh.pk not in [item["item_id"] for item in results]
    assert any(reason.startswith("Shares ") for item in results for reason in item["reasons"])


@pytest.mark.parametrize("item_type", ["developer", "investor"])
def test_similar_people_are_for_founders(world, founder_client, item_type):
    model = Developer if item_type == "developer" else Investor
    person = model.objects.order_by("pk").first()
    results = similar(founder_client, item_type, person.pk, limit=100)["results"]

    assert len(results) == model.objects.count() - 1  # every other one: the world is small
    assert {item["item_type"] for item in results} == {item_type}
    assert person.pk not in [item["item_id"] for item in results]
    assert model.objects.filter(pk__in=[item["item_id"] for item in results]).count() == len(results)


@pytest.mark.parametrize("role", ["developer", "investor"])
def test_similar_people_are_refused_to_developers_and_investors(world, client_for, role):
    model = Developer if role == "developer" else Investor
    client = client_for(user(model, getattr(world, f"{role}_id")))
    response = client.get(similar_url("developer", world.developer_id))
    assert response.status_code == 403
    assert response.json()["detail"] == "Similar developers and investors are for founders and staff only."


def test_staff_may_ask_for_similar_people(world, client_for, staff_user):
    results = similar(client_for(staff_user), "investor", world.investor_id)["results"]
    assert results and world.investor_id not in [item["item_id"] for item in results]


def test_a_developer_registered_since_training_is_unknown_to_the_models(world, founder_client):
    newcomer = DeveloperFactory()
    response = founder_client.get(similar_url("developer", newcomer.pk))
    assert response.status_code == 404
    assert response.json()["detail"] == (
        f"The models do not know developer {newcomer.pk} yet (it is newer than their training); similar items "
        "come once the next training has seen it.")
    response = founder_client.get(similar_url("developer", 10**9))
    assert response.status_code == 404 and response.json()["detail"] == f"No developer has user id {10**9}."


def test_anonymous_requests_are_refused(world, api_client):
    assert api_client.get(similar_url("position", open_position().pk)).status_code in (401, 403)


def test_one_ranking_and_one_read_of_titles_once_the_models_are_held(
        world, developer_client, settings, django_assert_num_queries):
    """Token and user (with the profile that gives the role), then the titles and the item's own row."""
    settings.MODEL_REGISTRY_CHECK_SECONDS = 3600
    position = open_position()
    similar(developer_client, "position", position.pk)

    with django_assert_num_queries(3):
        similar(developer_client, "position", position.pk)
