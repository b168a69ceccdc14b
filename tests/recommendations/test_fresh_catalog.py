"""A position or startup created or edited after the last training is scored by content at once."""
from profiles.models import Developer, Founder, Position, Skill, Startup
from tests.factories import DeveloperFactory

from .test_recommendations_api import recommend


def founder_and_startup() -> tuple[Founder, Startup]:
    startup = Startup.objects.filter(founders__isnull=False).order_by("pk").first()
    return startup.founders.order_by("pk").first(), startup


def rank_of(answer: dict, item_type: str, item_id: int) -> int | None:
    return next((item["rank"] for item in answer["results"] if (item["item_type"], item["item_id"]) ==
                 (item_type, item_id)), None)


def test_a_position_created_for_a_developers_exact_skills_is_in_their_top_ten_without_retraining(
        world, client_for):
    developer = Developer.objects.get(pk=world.developer_id)
    skills = sorted(developer.skills.values_list("name", flat=True))
    founder, startup = founder_and_startup()
    response = client_for(founder.user).post("/api/v1/positions/", {
        "startup": startup.pk, "title": f"{skills[0]} engineer", "required_skills": skills,
        "remote": developer.remote_preference == "remote"}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()["id"]

    answer = recommend(client_for(developer.user), developer.pk, "developer")
    rank = rank_of(answer, "position", created)
    assert rank is not None and rank <= 10, answer["results"]
    scored = answer["results"][rank - 1]["scores"]
    # Only content has seen it: the components trained before it have no opinion of it, a z-score of 0.
    assert scored["content_based"] > 2 and scored["collaborative"] == 0 and scored["two_tower"] == 0
    assert answer["model_versions"] == world.model_versions


def test_an_edit_to_a_positions_skills_is_scored_at_once(world, client_for):
    position = Position.objects.filter(status="open").order_by("pk").first()
    # a skill the models' vocabulary knows (some developer has it) that no position asks for yet
    rare = Skill.objects.filter(developers__isnull=False, positions__isnull=True).order_by("name").first()
    newcomer = DeveloperFactory(skills=[rare], headline="")
    before = rank_of(recommend(client_for(newcomer.user), newcomer.pk, "developer", limit=100), "position",
                     position.pk)

    position.required_skills.add(rare)
    position.save()  # an edit through the API or admin saves the row: its updated_at moves on
    after = rank_of(recommend(client_for(newcomer.user), newcomer.pk, "developer", limit=100), "position",
                    position.pk)
    assert after is not None and (before is None or after < before), (before, after)


def test_a_closed_position_stays_out_at_once(world, client_for):
    developer = Developer.objects.get(pk=world.developer_id)
    answer = recommend(client_for(developer.user), developer.pk, "developer")
    first = answer["results"][0]
    if first["item_type"] == "position":
        Position.objects.filter(pk=first["item_id"]).update(status="closed")
    else:
        Startup.objects.filter(pk=first["item_id"]).delete()
    again = recommend(client_for(developer.user), developer.pk, "developer")
    assert rank_of(again, first["item_type"], first["item_id"]) is None

