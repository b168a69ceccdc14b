"""A two-sided market through the API: no one is recommended who said no to the asker's side. A developer or
investor who dismissed a founder's startup or position leaves that founder's answers; a founder who dismissed a
developer takes their positions out of that developer's. The rule lives in the candidates both serving and the
served evaluation rank (ml.serving_set.rebuffed_by; tests/ml/test_served_evaluation.py)."""
from django.utils import timezone

from profiles.models import Developer, Founder, Interaction, Position

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
