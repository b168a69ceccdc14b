"""The market's rules through the API: investors see raising startups whose round fits their checks, and a
crowded position is shown less. Both live in the one ranking path, so the served evaluation measures them
too (tests/ml/test_served_evaluation.py)."""
import numpy as np
import pytest
from django.utils import timezone

from ml.core import features
from ml.core.data import IdMap
from ml.serving_set import FEW_APPLICANTS_TEXT, MARKET, ItemMarket
from profiles.models import Developer, Interaction, Investor, Position, Startup
from profiles.services import position_applicants_refresh
from tests.factories import DeveloperFactory, PositionFactory, SkillFactory

from .test_recommendations_api import recommend

# The world's investors have seen most of its 16 startups: their answers here include what they saw.


def startup_ids(answer: dict) -> list[int]:
    return [item["item_id"] for item in answer["results"] if item["item_type"] == "startup"]


@pytest.fixture
def investor(world):
    return Investor.objects.get(pk=world.investor_id)


def test_an_investor_is_shown_only_raising_startups_whose_round_fits_their_checks(world, client_for, investor):
    answer = recommend(client_for(investor.user), investor.pk, "investor", limit=100, exclude_seen=False)

    shown = Startup.objects.in_bulk(startup_ids(answer))
    assert shown and all(startup.raising for startup in shown.values())
    sizes = np.array([np.nan if s.round_size is None else s.round_size for s in shown.values()], dtype=float)
    assert features.round_fits(sizes, investor.check_size_min, investor.check_size_max).all()
    assert len(shown) < Startup.objects.count()  # the rule left some out


def test_a_startup_that_stops_raising_leaves_investors_answers_unless_include_not_raising(
        world, client_for, investor):
    client = client_for(investor.user)
    first = startup_ids(recommend(client, investor.pk, "investor", exclude_seen=False))[0]
    startup = Startup.objects.get(pk=first)
    startup.raising = False
    startup.save()  # as the API's edit does: the catalog changed, serving reads the market again

    assert first not in startup_ids(recommend(client, investor.pk, "investor", limit=100, exclude_seen=False))
    widened = recommend(client, investor.pk, "investor", limit=100, include_not_raising=True, exclude_seen=False)
    assert first in startup_ids(widened)


def test_a_round_far_too_big_for_an_investors_checks_is_not_shown_even_when_widened(world, client_for, investor):
    client = client_for(investor.user)
    first = startup_ids(recommend(client, investor.pk, "investor", exclude_seen=False))[0]
    startup = Startup.objects.get(pk=first)
    startup.round_size = int(investor.check_size_max / features.ROUND_SHARE_MIN) * 2  # their largest check: tiny
    startup.save()

    assert first not in startup_ids(recommend(client, investor.pk, "investor", limit=100, exclude_seen=False))
    widened = recommend(client, investor.pk, "investor", limit=100, include_not_raising=True, exclude_seen=False)
    assert first not in startup_ids(widened)


def test_developers_answers_are_not_filtered_by_fundraising(world, client_for):
    Startup.objects.update(raising=False, updated_at=timezone.now())
    developer = Developer.objects.get(pk=world.developer_id)
    answer = recommend(client_for(developer.user), developer.pk, "developer", limit=100, item_types=["startup"])
    assert answer["results"]


@pytest.mark.parametrize("value", ["sometimes", 2, None, [True]])
def test_include_not_raising_must_be_a_boolean(world, client_for, investor, value):
    response = client_for(investor.user).post("/api/v1/recommendations", {
        "user_id": investor.pk, "user_type": "investor", "include_not_raising": value}, format="json")
    assert response.status_code == 400 and "include_not_raising" in response.json(), response.content


# ---------------------------------------------------------------- crowded positions


def test_the_market_gives_a_crowding_to_subtract_only_when_a_position_is_crowded(settings):
    settings.CROWDED_APPLICANTS_PER_OPENING = 10
    ids = IdMap(["position:1", "position:2", "startup:3"])

    def market(applicants: int) -> ItemMarket:
        return ItemMarket.of(ids, {"position:1": {"applicants": applicants, "openings": 1},
                                   "position:2": {"applicants": 1, "openings": 1},
                                   "startup:3": {"raising": True, "round_size": None}})

    assert market(10).crowding() is None  # at the threshold: nobody crowded, no pass over the items per request
    crowded = market(40).crowding()
    assert crowded is not None and crowded[0] > 0 and crowded[1:].tolist() == [0.0, 0.0]


def twin_positions(*, openings: int = 1) -> tuple[Position, Position]:
    """A position alike in every field the models read to another; created after training, so the content
    model scores them alike (the others know neither), and a developer who wants the skill, new to all."""
    skill = SkillFactory(name="qubit plumbing")
    startup = Startup.objects.order_by("pk").first()
    crowded, quiet = (PositionFactory(startup=startup, title="Quantum plumber", description="Pipes for qubits.",
                                      required_skills=[skill], remote=True, openings=n) for n in (openings, 1))
    return crowded, quiet


def apply_as_many(position: Position, count: int) -> None:
    applicants = [DeveloperFactory() for _ in range(count)]
    Interaction.objects.bulk_create([Interaction(user=d.user, kind="apply", position=position,
                                                 created_at=timezone.now()) for d in applicants])
    position_applicants_refresh(position_ids=[position.pk])


def ranked(client_for, positions: tuple[Position, Position]) -> dict[int, dict]:
    newcomer = DeveloperFactory(skills=list(positions[0].required_skills.all()), headline="",
                                remote_preference="remote")
    answer = recommend(client_for(newcomer.user), newcomer.pk, "developer", limit=20, item_types=["position"])
    return {item["item_id"]: item for item in answer["results"]}


def test_a_position_with_forty_applicants_for_one_opening_falls_below_an_equal_one_with_none(world, client_for):
    crowded, quiet = twin_positions()
    apply_as_many(crowded, 40)

    items = ranked(client_for, (crowded, quiet))
    assert Position.objects.get(pk=crowded.pk).applicants == 40
    assert items[quiet.pk]["rank"] < items[crowded.pk]["rank"]
    # twice the threshold of 20: log(1 + 20 / 20) off the blended score
    assert items[quiet.pk]["score"] - items[crowded.pk]["score"] == pytest.approx(np.log(2), abs=1e-4)
    assert {"algorithm": MARKET, "text": FEW_APPLICANTS_TEXT} in items[quiet.pk]["explanations"]
    assert FEW_APPLICANTS_TEXT in items[quiet.pk]["reasons"]
    assert FEW_APPLICANTS_TEXT not in items[crowded.pk]["reasons"]


def test_the_same_applicants_over_three_openings_are_not_penalised(world, client_for):
    crowded, quiet = twin_positions(openings=3)
    apply_as_many(crowded, 40)  # 13 per opening: under the threshold of 20

    items = ranked(client_for, (crowded, quiet))
    assert items[crowded.pk]["score"] == items[quiet.pk]["score"]
    assert FEW_APPLICANTS_TEXT not in items[crowded.pk]["reasons"]  # 13 per opening are no longer few


def test_applications_through_the_api_count_at_the_next_request_without_loading_the_models(
        world, client_for, settings):
    from recommendations.model_store import serving_models

    crowded, quiet = twin_positions()
    ranked(client_for, (crowded, quiet))  # the models that know the twins are loaded
    held = serving_models().serving.components
    apply_as_many(crowded, 39)
    applicant = DeveloperFactory()
    response = client_for(applicant.user).post(
        "/api/v1/interactions", {"item_type": "position", "item_id": crowded.pk, "kind": "apply"}, format="json")
    assert response.status_code == 201, response.content

    items = ranked(client_for, (crowded, quiet))
    assert items[quiet.pk]["rank"] < items[crowded.pk]["rank"]
    assert serving_models().serving.components is held


def test_an_application_counts_once_per_user_through_the_api(world, client_for):
    position = Position.objects.filter(status="open").order_by("pk").first()
    before = position.applicants
    client = client_for(DeveloperFactory().user)
    for _ in range(2):
        response = client.post("/api/v1/interactions", {"item_type": "position", "item_id": position.pk,
                                                        "kind": "apply"}, format="json")
        assert response.status_code == 201, response.content

    position.refresh_from_db()
    assert position.applicants == before + 1
    shown = client.get(f"/api/v1/positions/{position.pk}/").json()
    assert (shown["applicants"], shown["openings"]) == (before + 1, position.openings)
