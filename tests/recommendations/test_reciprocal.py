"""A two-sided market through the API: no one is recommended who said no to the asker's side. A developer or
investor who dismissed a founder's startup or position leaves that founder's answers; a founder who dismissed a
developer takes their positions out of that developer's. The rule lives in the candidates both serving and the
served evaluation rank (ml.serving_set.rebuffed_by; tests/ml/test_served_evaluation.py)."""
import pytest
from django.test import override_settings
from django.utils import timezone

from ml import training
from ml.core.content import ContentRecommender
from profiles.models import Developer, Founder, Industry, Interaction, Position, Stage
from tests.factories import FounderFactory, InvestorFactory, StartupFactory

from .test_recommendations_api import keys_of, recommend


def dismiss(user_id: int, **target) -> None:
    # as the API records one: the dismissals changed, serving reads who rebuffed whom again
    Interaction.objects.create(user_id=user_id, kind="dismiss", created_at=timezone.now(), **target)


def test_a_developer_who_dismissed_a_founders_startup_leaves_that_founders_answer(world, client_for):
    founder = Founder.objects.get(pk=world.founder_id)
    client = client_for(founder.user)
    before = recommend(client, founder.pk, "founder", item_types=["developer"])
    developer = keys_of(before)[0][1]
    assert ("developer", developer) in keys_of(before)

    dismiss(developer, startup=founder.startups.first())

    after = recommend(client, founder.pk, "founder", item_types=["developer"])
    assert ("developer", developer) not in keys_of(after)
    assert len(after["results"]) == len(before["results"])  # another takes the place
    assert ("developer", developer) not in keys_of(recommend(client, founder.pk, "founder", limit=100))


def test_an_investor_who_dismissed_one_of_a_founders_positions_leaves_that_founders_answer(world, client_for):
    founder = Founder.objects.get(pk=world.founder_id)
    client = client_for(founder.user)
    everyone = {"item_types": ["investor"], "limit": 100, "exclude_seen": False}
    investor = keys_of(recommend(client, founder.pk, "founder", **everyone))[0][1]
    position = Position.objects.filter(startup__founders=founder).first()

    dismiss(investor, position=position)

    assert ("investor", investor) not in keys_of(recommend(client, founder.pk, "founder", **everyone))


def test_a_founder_who_dismissed_a_developer_takes_their_positions_out_of_that_developers_answer(
        world, client_for):
    developer = Developer.objects.get(pk=world.developer_id)
    client = client_for(developer.user)
    before = recommend(client, developer.pk, "developer", item_types=["position"])
    position = Position.objects.get(pk=keys_of(before)[0][1])
    founder = position.startup.founders.first()

    dismiss(founder.pk, developer=developer)

    theirs = set(Position.objects.filter(startup__founders=founder).values_list("pk", flat=True))
    after = recommend(client, developer.pk, "developer", item_types=["position"], limit=100)
    assert not theirs & {pk for kind, pk in keys_of(after) if kind == "position"}
    assert keys_of(after)  # others' positions are still shown


def test_each_result_reports_the_other_sides_interest_where_someone_is_asked_to_answer(world, client_for):
    founder = Founder.objects.get(pk=world.founder_id)
    people = recommend(client_for(founder.user), founder.pk, "founder", limit=20)["results"]
    developer = Developer.objects.get(pk=world.developer_id)
    catalog = recommend(client_for(developer.user), developer.pk, "developer", limit=50)["results"]

    assert any(isinstance(item["scores"]["reciprocal"], float) for item in people)
    assert any(isinstance(item["scores"]["reciprocal"], float) for item in catalog if item["item_type"] == "position")
    # a startup asks a developer for no answer: nothing to report
    assert all(item["scores"]["reciprocal"] is None for item in catalog if item["item_type"] == "startup")


# ---------------------------------------------------------------- the other side's interest in the ranking


def founders_people(client, founder_id: int) -> list[dict]:
    return recommend(client, founder_id, "founder", limit=10, diversity=0)["results"]


def mean_reciprocal(results: list[dict]) -> float:
    known = [item["scores"]["reciprocal"] for item in results if item["scores"]["reciprocal"] is not None]
    return sum(known) / len(known)


def test_the_score_adds_the_other_sides_interest_times_the_reciprocal_weight(world, client_for):
    founder = Founder.objects.get(pk=world.founder_id)
    client = client_for(founder.user)
    with override_settings(RECIPROCAL_WEIGHT=0.0):
        one_sided = {(item["item_type"], item["item_id"]): item for item in founders_people(client, founder.pk)}
    with override_settings(RECIPROCAL_WEIGHT=2.0):
        two_sided = founders_people(client, founder.pk)
    for item in two_sided:
        before = one_sided.get((item["item_type"], item["item_id"]))
        if before is not None:  # the same candidate: its score moved by 2 x its reciprocal z-score
            assert item["score"] == pytest.approx(before["score"] + 2.0 * (item["scores"]["reciprocal"] or 0.0),
                                                  abs=1e-4)
    # and the list leans to those more likely to answer
    assert mean_reciprocal(two_sided) > mean_reciprocal(list(one_sided.values()))


@pytest.fixture
def stage_world(world):
    """A founder of one Series A startup, raising, and two new investors alike but for their stages, all
    known to a content model trained now (a new person is an item the models learn at training)."""
    industry = Industry.objects.get_or_create(name="Climate")[0]
    founder = FounderFactory()
    StartupFactory(founders=[founder], industry=industry, stage=Stage.SERIES_A, raising=True,
                   round_size=5_000_000)
    alike = {"preferred_industries": [industry], "check_size_min": 250_000, "check_size_max": 2_000_000,
             "location": "Paris"}
    including = InvestorFactory(preferred_stages=[Stage.SEED, Stage.SERIES_A], **alike)
    excluding = InvestorFactory(preferred_stages=[Stage.IDEA, Stage.PRE_SEED], **alike)
    run = training.training_run_create(algorithms=["content_based"], force_retrain=True, trigger="command")
    run = training.training_run_execute(run_id=run.pk, algorithms=run.algorithms)
    assert run.status == "succeeded", run.error
    return founder, including, excluding


def test_an_investor_whose_stages_exclude_the_founders_stage_ranks_below_one_whose_stages_include_it(
        stage_world, client_for):
    founder, including, excluding = stage_world
    answer = recommend(client_for(founder.user), founder.pk, "founder", item_types=["investor"], limit=100)
    ranked = [item["item_id"] for item in answer["results"]]
    assert ranked.index(including.pk) < ranked.index(excluding.pk)
    theirs = {item["item_id"]: item["scores"]["reciprocal"] for item in answer["results"]}
    assert theirs[including.pk] > theirs[excluding.pk]  # the investor at the founder's stage would answer


def test_a_two_sided_reason_names_what_each_side_brings(stage_world, client_for):
    founder, including, _ = stage_world
    answer = recommend(client_for(founder.user), founder.pk, "founder", item_types=["investor"], limit=100)
    item = next(item for item in answer["results"] if item["item_id"] == including.pk)
    two_sided = [e["text"] for e in item["explanations"] if e["algorithm"] == "reciprocal"]
    assert two_sided == ["They prefer climate, your industry and invest at series_a, your stage"]
    assert two_sided[0] in item["reasons"]


def test_a_developer_who_applied_to_a_founders_position_is_lifted_at_the_next_request_and_says_why(
        world, client_for):
    from recommendations.model_store import serving_models

    founder = Founder.objects.get(pk=world.founder_id)
    client = client_for(founder.user)
    everyone = {"item_types": ["developer"], "limit": 100, "diversity": 0}
    before = [item["item_id"] for item in recommend(client, founder.pk, "founder", **everyone)["results"]]
    held = serving_models().serving.components
    applicant = Developer.objects.get(pk=before[-1])  # the founder's last candidate
    position = Position.objects.filter(startup__founders=founder, status="open").first()
    response = client_for(applicant.user).post(
        "/api/v1/interactions", {"item_type": "position", "item_id": position.pk, "kind": "apply"}, format="json")
    assert response.status_code == 201, response.content

    after = recommend(client, founder.pk, "founder", **everyone)["results"]
    ranked = [item["item_id"] for item in after]
    assert ranked.index(applicant.pk) < before.index(applicant.pk)
    theirs = next(item for item in after if item["item_id"] == applicant.pk)
    assert theirs["scores"]["reciprocal"] == max(item["scores"]["reciprocal"] or 0 for item in after)
    assert "Already interested in you: they applied, got in touch or accepted" in theirs["reasons"]
    assert serving_models().serving.components is held  # read again without loading the models


def test_a_developers_candidates_founders_are_scored_by_the_vectors_the_load_kept(world, client_for, monkeypatch):
    developer = Developer.objects.get(pk=world.developer_id)
    client = client_for(developer.user)
    first = recommend(client, developer.pk, "developer", limit=50)["results"]
    # Their founders' profiles are never made in a request again: the set kept their vectors when it loaded.
    monkeypatch.setattr(ContentRecommender, "_history_cosines", lambda *args: pytest.fail("a profile made again"))
    again = recommend(client, developer.pk, "developer", limit=50)["results"]
    assert [item["scores"]["reciprocal"] for item in again] == [item["scores"]["reciprocal"] for item in first]
    assert any(isinstance(item["scores"]["reciprocal"], float) for item in again)
