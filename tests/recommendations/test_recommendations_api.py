"""POST /api/v1/recommendations on a trained world: the contract's fields, who may ask, bad input,
candidates by role, filters that act at once, and the fallback chain."""
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from ml.models import BLENDED, Algorithm, ModelVersion
from ml.services import hybrid_weights_set
from profiles.models import Developer, Founder, Interaction, Investor, Position
from recommendations.selectors import recommendable_titles
from tests.factories import DeveloperFactory, FounderFactory, InvestorFactory, PositionFactory, StartupFactory

URL = "/api/v1/recommendations"
ALGORITHMS = {"content_based", "collaborative", "two_tower"}

NO_WEIGHTS = dict.fromkeys(BLENDED, 0.0)


def ask(client, user_id: int, user_type: str, **options):
    return client.post(URL, {"user_id": user_id, "user_type": user_type, **options}, format="json")


def recommend(client, user_id: int, user_type: str, **options) -> dict:
    response = ask(client, user_id, user_type, **options)
    assert response.status_code == 200, response.content
    return response.json()


def keys_of(answer: dict) -> list[tuple[str, int]]:
    return [(item["item_type"], item["item_id"]) for item in answer["results"]]


def user(model, pk: int):
    return model.objects.get(pk=pk).user


@pytest.fixture
def developer_client(world, client_for):
    return client_for(user(Developer, world.developer_id))


# ---------------------------------------------------------------- the answer


def test_the_answer_has_every_field_of_the_contract(world, developer_client):
    # without diversity: a diversified list keeps each item's score, so the scores need not fall down it
    answer = recommend(developer_client, world.developer_id, "developer", limit=5, diversity=0)

    assert set(answer) == {"user_id", "user_type", "algorithms_used", "fallback", "weights", "model_versions",
                           "results", "recommendation_id", "experiment"}
    assert answer["user_id"] == world.developer_id and answer["user_type"] == "developer"
    assert answer["fallback"] == "none"
    assert answer["algorithms_used"] == ["content_based", "collaborative", "two_tower"]
    assert answer["model_versions"] == world.model_versions
    assert set(answer["weights"]) == set(BLENDED) and sum(answer["weights"].values()) == pytest.approx(1)
    assert [item["rank"] for item in answer["results"]] == [1, 2, 3, 4, 5]
    for item in answer["results"]:
        assert set(item) == {"rank", "item_type", "item_id", "title", "score", "scores", "reasons", "explanations"}
        assert item["item_type"] in {"position", "startup"} and isinstance(item["item_id"], int)
        assert item["title"]
        assert set(item["scores"]) == set(BLENDED) | {"reciprocal"}
        assert isinstance(item["scores"]["reciprocal"], float | None)
        used = {name: value for name, value in item["scores"].items() if name in answer["algorithms_used"]}
        assert set(used) == set(ALGORITHMS) and all(isinstance(value, float) for value in used.values())
        assert all(item["scores"][name] is None for name in set(BLENDED) - set(used))
        blended = sum(answer["weights"][name] * value for name, value in used.items())
        theirs = settings.RECIPROCAL_WEIGHT * (item["scores"]["reciprocal"] or 0.0)
        assert item["score"] == pytest.approx(blended + theirs, abs=1e-4)
        assert all(isinstance(reason, str) and reason for reason in item["reasons"])
    scores = [item["score"] for item in answer["results"]]
    assert scores == sorted(scores, reverse=True)


def test_titles_are_the_catalog_rows_titles(world, developer_client):
    answer = recommend(developer_client, world.developer_id, "developer", limit=20, item_types=["position"])
    titles = dict(Position.objects.values_list("pk", "title"))
    assert answer["results"]
    assert all(item["title"] == titles[item["item_id"]] for item in answer["results"])


def test_a_developers_request_reads_the_database_four_times_once_the_models_are_held(
        world, developer_client, settings, django_assert_num_queries):
    """Token, profile (with its skills and industries), interactions, titles: every read on the hot path
    costs a round trip and PostgreSQL's time, so one more is a regression worth noticing. The fifth query
    is the impression's INSERT, written at once in tests (a server batches it in the background)."""
    settings.MODEL_REGISTRY_CHECK_SECONDS = 3600
    recommend(developer_client, world.developer_id, "developer")  # the store loads and checks the registry

    with django_assert_num_queries(5):
        recommend(developer_client, world.developer_id, "developer")


@pytest.mark.django_db
def test_titles_of_every_item_type_are_read_in_one_query_and_closed_or_gone_items_have_none(
        django_assert_num_queries):
    open_position, closed = PositionFactory(title="Data engineer"), PositionFactory(status=Position.Status.CLOSED)
    startup = StartupFactory(name="Acme")
    headlined, bare = DeveloperFactory(headline="Rust person"), DeveloperFactory(headline="", user__username="ada")
    investor = InvestorFactory(firm="North Capital")
    keys = [f"position:{open_position.pk}", f"position:{closed.pk}", f"startup:{startup.pk}", "startup:999999",
            f"developer:{headlined.pk}", f"developer:{bare.pk}", f"investor:{investor.pk}"]

    with django_assert_num_queries(1):
        titles = recommendable_titles(keys)

    assert titles == {f"position:{open_position.pk}": "Data engineer", f"startup:{startup.pk}": "Acme",
                      f"developer:{headlined.pk}": "Rust person", f"developer:{bare.pk}": "ada",
                      f"investor:{investor.pk}": "North Capital"}
    assert recommendable_titles([]) == {}


@pytest.mark.parametrize(("model", "role", "expected"), [
    (Developer, "developer", {"position", "startup"}),
    (Investor, "investor", {"startup"}),
    (Founder, "founder", {"developer", "investor"}),
])
def test_each_role_is_recommended_its_own_kinds_of_items(world, client_for, model, role, expected):
    user_id = getattr(world, f"{role}_id")
    # seen items too: the world's investor has seen every raising startup whose round its checks fit
    answer = recommend(client_for(user(model, user_id)), user_id, role, limit=100, exclude_seen=False)
    assert {item["item_type"] for item in answer["results"]} == expected
    assert (role, user_id) not in keys_of(answer)


def test_open_positions_only(world, developer_client):
    Position.objects.filter(pk__in=Position.objects.order_by("pk").values("pk")[:10]).update(status="filled")
    answer = recommend(developer_client, world.developer_id, "developer", limit=100, item_types=["position"])
    open_ids = set(Position.objects.filter(status="open").values_list("pk", flat=True))
    assert answer["results"] and {item["item_id"] for item in answer["results"]} <= open_ids


def test_item_types_narrow_the_answer(world, developer_client):
    answer = recommend(developer_client, world.developer_id, "developer", limit=30, item_types=["startup"])
    assert answer["results"] and {item["item_type"] for item in answer["results"]} == {"startup"}


def test_explain_false_leaves_reasons_empty(world, developer_client):
    answer = recommend(developer_client, world.developer_id, "developer", explain=False)
    assert answer["results"] and all(item["reasons"] == [] for item in answer["results"])


# ---------------------------------------------------------------- who may ask, and bad input


def test_anonymous_requests_are_refused(world, api_client):
    assert ask(api_client, world.developer_id, "developer").status_code == 401


def test_a_user_may_not_ask_for_another_user(world, client_for):
    response = ask(client_for(user(Founder, world.founder_id)), world.developer_id, "developer")
    assert response.status_code == 403
    assert "only for yourself" in response.json()["detail"]


def test_staff_may_ask_for_anyone(world, client_for, staff_user):
    assert recommend(client_for(staff_user), world.founder_id, "founder")["user_id"] == world.founder_id


def test_an_unknown_user_is_404(world, client_for, staff_user):
    response = ask(client_for(staff_user), 987654, "developer")
    assert response.status_code == 404
    assert "987654" in response.json()["detail"]


def test_user_type_must_be_the_users_real_role(world, developer_client):
    response = ask(developer_client, world.developer_id, "investor")
    assert response.status_code == 400
    assert f"User {world.developer_id} is a developer, not an investor." == response.json()["user_type"][0]


def test_a_user_without_a_profile_is_told_so(world, client_for, staff_user):
    response = ask(client_for(staff_user), staff_user.pk, "developer")
    assert response.status_code == 400
    assert "no developer, founder or investor profile" in response.json()["user_id"][0]


@pytest.mark.parametrize(("body", "field"), [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"limit": 2.5}, "limit"),
    ({"user_type": "robot"}, "user_type"),
    ({"user_id": "me"}, "user_id"),
    ({"user_id": 2**70}, "user_id"),
    ({"item_types": ["spaceship"]}, "item_types"),
    ({"item_types": []}, "item_types"),
    ({"item_types": ["investor"]}, "item_types"),
    ({"exclude_seen": "perhaps"}, "exclude_seen"),
    ({"explain": None}, "explain"),
    ({"limt": 5}, "limt"),
])
def test_invalid_fields_are_named_in_a_400(world, developer_client, body, field):
    request = {"user_id": world.developer_id, "user_type": "developer", **body}
    response = developer_client.post(URL, request, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_user_id_and_user_type_are_required(world, developer_client):
    response = developer_client.post(URL, {}, format="json")
    assert response.status_code == 400
    assert {"user_id", "user_type"} <= set(response.json())


def test_a_body_that_is_not_an_object_is_a_400(world, developer_client):
    assert developer_client.post(URL, [1, 2], format="json").status_code == 400


def test_limit_defaults_to_10(world, developer_client):
    assert len(recommend(developer_client, world.developer_id, "developer")["results"]) == 10


# ---------------------------------------------------------------- interactions count at once


def interact(client, item_type: str, item_id: int, kind: str) -> None:
    response = client.post("/api/v1/interactions", {"item_type": item_type, "item_id": item_id, "kind": kind},
                           format="json")
    assert response.status_code == 201, response.content


def test_a_seen_item_is_left_out_at_once_and_back_with_exclude_seen_false(world, developer_client):
    top = keys_of(recommend(developer_client, world.developer_id, "developer"))[0]
    interact(developer_client, *top, "view")

    assert top not in keys_of(recommend(developer_client, world.developer_id, "developer", limit=100))
    assert top in keys_of(recommend(developer_client, world.developer_id, "developer", limit=100,
                                    exclude_seen=False))


def test_a_dismissed_item_is_never_shown_again(world, developer_client):
    top = keys_of(recommend(developer_client, world.developer_id, "developer"))[0]
    interact(developer_client, *top, "dismiss")
    for exclude_seen in (True, False):
        answer = recommend(developer_client, world.developer_id, "developer", limit=100, exclude_seen=exclude_seen)
        assert top not in keys_of(answer)


def test_a_new_interaction_changes_the_next_answer_without_a_retrain(world, developer_client):
    before = recommend(developer_client, world.developer_id, "developer", limit=100)
    liked = before["results"][-1]
    interact(developer_client, liked["item_type"], liked["item_id"], "apply")
    after = recommend(developer_client, world.developer_id, "developer", limit=100)

    collaborative = {key: item["scores"]["collaborative"] for key, item in zip(keys_of(before), before["results"],
                                                                                 strict=True)}
    changed = [key for key, item in zip(keys_of(after), after["results"], strict=True)
               if item["scores"]["collaborative"] != pytest.approx(collaborative[key], abs=1e-4)]
    assert changed, "the collaborative fold-in did not see the new interaction"
    assert after["model_versions"] == before["model_versions"]


# ---------------------------------------------------------------- fallbacks


def test_a_user_registered_after_training_gets_content_only_from_their_profile(world, client_for):
    position = Position.objects.filter(status="open", required_skills__isnull=False).order_by("pk").first()
    skills = list(position.required_skills.all())
    newcomer = DeveloperFactory(skills=skills, headline="")
    answer = recommend(client_for(newcomer.user), newcomer.pk, "developer", limit=100)

    assert answer["fallback"] == "cold_start"
    assert answer["algorithms_used"] == ["content_based"]
    assert answer["weights"] == {**NO_WEIGHTS, "content_based": 1.0}
    assert answer["model_versions"] == world.model_versions
    first = answer["results"][0]
    assert first["scores"]["collaborative"] is None and first["scores"]["two_tower"] is None
    matched = next(item for item in answer["results"] if item["item_id"] == position.pk
                   and item["item_type"] == "position")
    assert matched["rank"] <= 10
    assert f"Matches {len(skills)} of your {len(skills)} skills" in " ".join(matched["reasons"])


def test_a_new_user_with_interactions_is_folded_in_by_every_component(world, client_for):
    newcomer = DeveloperFactory()
    client = client_for(newcomer.user)
    position = Position.objects.filter(status="open").order_by("pk").first()
    interact(client, "position", position.pk, "like")

    answer = recommend(client, newcomer.pk, "developer")
    assert answer["fallback"] == "none"
    assert answer["algorithms_used"] == ["content_based", "collaborative", "two_tower"]
    assert all(item["scores"]["two_tower"] is not None for item in answer["results"])


def test_a_founder_is_recommended_developers_who_fit_their_startup(world, client_for):
    fitting = Developer.objects.filter(skills__isnull=False).order_by("pk").first()
    founder = FounderFactory()
    StartupFactory(founders=[founder], required_skills=list(fitting.skills.all()))
    answer = recommend(client_for(founder.user), founder.pk, "founder", limit=5)

    assert ("developer", fitting.pk) in keys_of(answer)
    assert answer["fallback"] == "cold_start"


def point_active_at(algorithm: str, path: Path) -> None:
    ModelVersion.objects.filter(algorithm=algorithm, status="active").update(artifact_path=str(path))


def test_a_missing_two_tower_artifact_falls_back_to_content_and_collaborative(world, developer_client, tmp_path):
    point_active_at("two_tower", tmp_path / "gone")
    answer = recommend(developer_client, world.developer_id, "developer")

    assert answer["fallback"] == "no_two_tower"
    assert answer["algorithms_used"] == ["content_based", "collaborative"]
    assert answer["model_versions"]["two_tower"] is None
    assert answer["weights"]["two_tower"] == 0 and sum(answer["weights"].values()) == pytest.approx(1)
    assert answer["results"]


def test_a_corrupt_two_tower_artifact_falls_back_too(world, developer_client, tmp_path):
    active = ModelVersion.objects.get(algorithm="two_tower", status="active")
    broken = shutil.copytree(active.artifact_path, tmp_path / "two_tower")
    (broken / "weights.pt").write_bytes(b"not a checkpoint")
    point_active_at("two_tower", broken)

    answer = recommend(developer_client, world.developer_id, "developer")
    assert answer["fallback"] == "no_two_tower" and answer["results"]


def test_with_no_usable_model_the_answer_is_empty_not_an_error(world, developer_client):
    ModelVersion.objects.filter(status="active").update(status="archived")
    answer = recommend(developer_client, world.developer_id, "developer")
    assert answer["results"] == [] and answer["algorithms_used"] == []
    assert answer["fallback"] == "popular"
    assert answer["model_versions"] == dict.fromkeys(Algorithm.values)


def test_weights_in_force_are_the_ones_blended(world, developer_client, staff_user):
    hybrid_weights_set(weights={"content_based": 1, "collaborative": 1, "two_tower": 0}, changed_by=staff_user)
    answer = recommend(developer_client, world.developer_id, "developer")
    assert answer["weights"] == {**NO_WEIGHTS, "content_based": 0.5, "collaborative": 0.5}
    assert answer["algorithms_used"] == ["content_based", "collaborative"]


def test_interactions_are_not_needed_to_have_been_trained_on(world, developer_client):
    # A user's history is read from the database at request time, not from the model's snapshot.
    assert Interaction.objects.filter(user_id=world.developer_id).exists()
    Interaction.objects.filter(user_id=world.developer_id).delete()
    assert recommend(developer_client, world.developer_id, "developer")["fallback"] == "cold_start"


# ---------------------------------------------------------------- diversity and exposure


def startup_of(item: dict) -> int:
    if item["item_type"] == "startup":
        return item["item_id"]
    return Position.objects.get(pk=item["item_id"]).startup_id


def test_max_per_startup_one_gives_ten_different_startups(world, developer_client):
    plain = recommend(developer_client, world.developer_id, "developer", limit=10, diversity=0)
    assert len({startup_of(item) for item in plain["results"]}) < 10  # a startup and its positions crowd it
    answer = recommend(developer_client, world.developer_id, "developer", limit=10, max_per_startup=1)
    assert len(answer["results"]) == 10
    assert len({startup_of(item) for item in answer["results"]}) == 10
    two = recommend(developer_client, world.developer_id, "developer", limit=20, max_per_startup=2)
    per_startup = [startup_of(item) for item in two["results"]]
    assert max(per_startup.count(s) for s in per_startup) <= 2


def test_diversity_zero_is_the_ranking_by_score_exactly(world, developer_client):
    """Today's ranking: the top items by blended score, best first, a shorter list a prefix of a longer."""
    everything = recommend(developer_client, world.developer_id, "developer", limit=100, diversity=0)
    scores = [item["score"] for item in everything["results"]]
    assert len(scores) > 20 and scores == sorted(scores, reverse=True)
    top = recommend(developer_client, world.developer_id, "developer", limit=10, diversity=0)
    assert keys_of(top) == keys_of(everything)[:10]


def test_diversity_reorders_the_same_candidates(world, developer_client):
    plain = recommend(developer_client, world.developer_id, "developer", limit=100, diversity=0)
    diverse = recommend(developer_client, world.developer_id, "developer", limit=10, diversity=1)
    assert set(keys_of(diverse)) <= set(keys_of(plain)) and keys_of(diverse) != keys_of(plain)[:10]
    assert keys_of(diverse)[0] == keys_of(plain)[0]  # the most relevant item is always picked first


def test_people_are_never_capped_by_startup(world, client_for):
    founder = client_for(user(Founder, world.founder_id))
    plain = recommend(founder, world.founder_id, "founder", limit=10, diversity=0)
    capped = recommend(founder, world.founder_id, "founder", limit=10, diversity=0, max_per_startup=1)
    assert keys_of(capped) == keys_of(plain) and len(plain["results"]) == 10


@pytest.mark.parametrize(("field", "value"), [("diversity", -0.1), ("diversity", 1.5), ("diversity", "much"),
                                              ("diversity", None), ("max_per_startup", 0),
                                              ("max_per_startup", 1.5), ("max_per_startup", "one"),
                                              ("max_per_startup", 101)])
def test_bad_diversity_settings_are_400s_naming_the_field(world, developer_client, field, value):
    response = ask(developer_client, world.developer_id, "developer", **{field: value})
    assert response.status_code == 400, response.content
    assert set(response.json()) == {field}
