"""Explanations in POST /api/v1/recommendations and on the staff user page: one entry per reason, from
each component that scored the item, strongest contribution first; an anchored reason names an item of the
user's own history and what they did with it; the popular fallback says so; none when explain is false."""
import pytest
from django.utils.html import escape

from profiles.models import Developer, Position
from recommendations.selectors import titles_and_anchor_names
from tests.factories import DeveloperFactory, PositionFactory, StartupFactory

from .test_recommendations_api import interact, point_active_at, recommend, user


def contribution(answer: dict, item: dict, algorithm: str) -> float:
    return answer["weights"][algorithm] * item["scores"][algorithm]


def without_market(explanations: list[dict]) -> list[dict]:
    return [e for e in explanations if e["algorithm"] != "market"]


def explained_by(item: dict, algorithm: str) -> list[str]:
    return [e["text"] for e in item["explanations"] if e["algorithm"] == algorithm]


@pytest.fixture
def newcomer(world, client_for):
    """A developer registered after training (so every component folds them in), with an API client."""
    developer = DeveloperFactory()
    return developer, client_for(developer.user)


def trained_position() -> Position:
    # The package's world is trained once, so every position it seeded is known to every model.
    return Position.objects.filter(status="open").select_related("startup").order_by("pk").first()


def test_each_result_is_explained_by_every_component_that_scored_it_strongest_first(world, client_for):
    answer = recommend(client_for(user(Developer, world.developer_id)), world.developer_id, "developer", limit=10)

    assert answer["algorithms_used"] == ["content_based", "collaborative", "two_tower"]
    for item in answer["results"]:
        # the market's reason ("Few applicants so far") and the two-sided one come last and are no component's
        algorithms = [e["algorithm"] for e in item["explanations"] if e["algorithm"] not in {"market", "reciprocal"}]
        assert {"collaborative", "two_tower"} <= set(algorithms) <= set(answer["algorithms_used"])
        strengths = [contribution(answer, item, name) for name in algorithms]
        assert strengths == sorted(strengths, reverse=True), item
        assert item["reasons"] == [e["text"] for e in item["explanations"]]
        assert all(set(e) == {"algorithm", "text"} and e["text"] for e in item["explanations"])


@pytest.mark.parametrize(("kinds", "collaborative", "two_tower"), [
    (["view", "apply"], "People who applied to {} also applied here", "Like {}, which you applied to"),
    (["save"], "People who saved {} also saved this one", "Like {}, which you saved"),
])
def test_anchored_reasons_name_the_history_item_and_the_strongest_thing_the_user_did_with_it(
        newcomer, kinds, collaborative, two_tower):
    developer, client = newcomer
    position = trained_position()
    for kind in kinds:
        interact(client, "position", position.pk, kind)
    named = f"{position.title} at {position.startup.name}"

    answer = recommend(client, developer.pk, "developer", limit=20)
    collaborative_texts = [text for item in answer["results"] for text in explained_by(item, "collaborative")]
    two_tower_texts = [text for item in answer["results"] for text in explained_by(item, "two_tower")]
    assert collaborative_texts and set(collaborative_texts) == {collaborative.format(named)}
    assert two_tower_texts and set(two_tower_texts) == {two_tower.format(named)}


def test_a_dismissed_item_is_never_an_anchor(newcomer):
    developer, client = newcomer
    dismissed, kept = Position.objects.filter(status="open").select_related("startup").order_by("pk")[:2]
    interact(client, "position", dismissed.pk, "apply")
    interact(client, "position", dismissed.pk, "dismiss")
    interact(client, "position", kept.pk, "like")

    answer = recommend(client, developer.pk, "developer", limit=20)
    anchored = {text for item in answer["results"] for name in ("collaborative", "two_tower")
                for text in explained_by(item, name)}
    assert anchored == {f"People who liked {kept.title} at {kept.startup.name} also liked this one",
                        f"Like {kept.title} at {kept.startup.name}, which you liked"}


def test_the_popular_fallback_says_the_item_is_popular(newcomer, tmp_path):
    developer, client = newcomer
    point_active_at("content_based", tmp_path / "gone")  # no content model and no history: popular items

    answer = recommend(client, developer.pk, "developer", limit=5)
    assert answer["fallback"] == "popular" and answer["results"]
    for item in answer["results"]:
        assert without_market(item["explanations"]) == [{"algorithm": "popularity",
                                                         "text": "Popular with developers"}]
        assert item["reasons"][0] == "Popular with developers"


def test_a_cold_start_is_explained_by_content_alone(world, client_for):
    newcomer = DeveloperFactory(skills=list(trained_position().required_skills.all()))
    answer = recommend(client_for(newcomer.user), newcomer.pk, "developer")
    assert answer["fallback"] == "cold_start"
    assert any(item["explanations"] for item in answer["results"])
    assert {e["algorithm"] for item in answer["results"] for e in item["explanations"]} - {"market"} == {
        "content_based"}


def test_explain_false_gives_no_explanations(world, client_for):
    answer = recommend(client_for(user(Developer, world.developer_id)), world.developer_id, "developer",
                       explain=False)
    assert answer["results"]
    assert all(item["explanations"] == [] and item["reasons"] == [] for item in answer["results"])


def test_the_staff_user_page_shows_each_explanation_with_its_algorithm(world, client, staff_user):
    client.force_login(staff_user)
    response = client.get(f"/staff/users/{world.developer_id}/")
    assert response.status_code == 200
    page = response.content.decode()
    first = response.context["answer"].results[0]
    assert first.explanations
    for explanation in first.explanations:
        assert f'<span class="badge">{explanation["algorithm"]}</span> {escape(explanation["text"])}' in page


@pytest.mark.django_db
def test_anchors_are_named_with_their_startup_in_the_titles_statement_whatever_their_status(
        django_assert_num_queries):
    startup = StartupFactory(name="Nova Pulse")
    shown, closed = PositionFactory(title="Data engineer"), PositionFactory(title="Backend Engineer", startup=startup,
                                                                            status=Position.Status.CLOSED)
    keys = [f"position:{shown.pk}", f"position:{closed.pk}"]

    with django_assert_num_queries(1):
        titles, names = titles_and_anchor_names(keys, [f"position:{closed.pk}", f"startup:{startup.pk}",
                                                       "startup:999999"])

    assert titles == {f"position:{shown.pk}": "Data engineer"}  # a closed position is not recommended
    assert names == {f"position:{closed.pk}": "Backend Engineer at Nova Pulse", f"startup:{startup.pk}": "Nova Pulse"}
