"""The interaction kind ``accept`` (docs/api.md, Marketplace): the target of a contact or application accepting
it. A founder accepts a developer who applied to a position of their startup, or an investor who contacted (or
showed investment interest in) their startup; a developer or an investor accepts a startup whose founder
contacted them. Anything else is a 400 that says what would have to exist, and writes nothing."""
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from profiles.models import Interaction
from profiles.services import _require_accepted_event
from recommendations.models import Impression
from tests.factories import (
    DeveloperFactory,
    FounderFactory,
    InteractionFactory,
    InvestorFactory,
    PositionFactory,
    StartupFactory,
)

pytestmark = pytest.mark.django_db


def accept(client_for, user, item_type: str, item_id: int, **extra):
    return client_for(user).post("/api/v1/interactions", {
        "item_type": item_type, "item_id": item_id, "kind": "accept", **extra}, format="json")


@pytest.fixture
def startup(founder):
    """The founder's startup, with a co-founder."""
    return StartupFactory(founders=[founder, FounderFactory()])


# --- what can be accepted -------------------------------------------------------------------------------------

def test_a_founder_accepts_a_developer_who_applied_to_a_position_of_their_startup(client_for, founder, startup):
    developer = DeveloperFactory()
    InteractionFactory(user=developer.user, position=PositionFactory(startup=startup), kind="apply")

    response = accept(client_for, founder.user, "developer", developer.user_id)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["item_type"], body["item_id"], body["user_id"]) == (
        "accept", "developer", developer.user_id, founder.user_id)
    assert (body["recommendation_id"], body["outcome"], body["rank"]) == (None, "", None)
    stored = Interaction.objects.get(pk=body["id"])
    assert (stored.user_id, stored.kind, stored.developer_id) == (founder.user_id, "accept", developer.user_id)


def test_a_co_founder_accepts_an_applicant_too(client_for, startup):
    co_founder = startup.founders.exclude(pk=startup.founders.first().pk).get()
    developer = DeveloperFactory()
    InteractionFactory(user=developer.user, position=PositionFactory(startup=startup), kind="apply")

    assert accept(client_for, co_founder.user, "developer", developer.user_id).status_code == 201


@pytest.mark.parametrize("kind", ["contact", "invest_interest"])
def test_a_founder_accepts_an_investor_who_contacted_or_showed_interest_in_their_startup(client_for, founder,
                                                                                        startup, kind):
    investor = InvestorFactory()
    InteractionFactory(user=investor.user, startup=startup, kind=kind)

    response = accept(client_for, founder.user, "investor", investor.user_id)

    assert response.status_code == 201, response.content
    assert Interaction.objects.get(pk=response.json()["id"]).investor_id == investor.user_id


@pytest.mark.parametrize(("factory", "field"), [(DeveloperFactory, "developer"), (InvestorFactory, "investor")])
def test_a_developer_or_investor_accepts_a_startup_whose_founder_contacted_them(client_for, founder, startup,
                                                                               factory, field):
    person = factory()
    InteractionFactory(user=founder.user, kind="contact", **{field: person})

    response = accept(client_for, person.user, "startup", startup.pk)

    assert response.status_code == 201, response.content
    stored = Interaction.objects.get(pk=response.json()["id"])
    assert (stored.user_id, stored.kind, stored.startup_id) == (person.user_id, "accept", startup.pk)


def test_an_accept_is_never_attributed_to_a_recommendation_the_accepter_was_shown(client_for, founder, startup):
    developer = DeveloperFactory()
    InteractionFactory(user=developer.user, position=PositionFactory(startup=startup), kind="apply")
    shown = Impression.objects.create(user=founder.user, user_type="founder", created_at=timezone.now(),
                                      fallback="none", items=[f"developer:{developer.user_id}"])

    response = accept(client_for, founder.user, "developer", developer.user_id)

    assert response.status_code == 201
    assert Interaction.objects.get(pk=response.json()["id"]).impression_id is None
    refused = accept(client_for, founder.user, "developer", developer.user_id, recommendation_id=str(shown.pk))
    assert refused.status_code == 400
    assert "not a recommendation" in refused.json()["recommendation_id"][0]
    assert Interaction.objects.filter(kind="accept").count() == 1


# --- what cannot -----------------------------------------------------------------------------------------------

def refused(response, field: str = "kind") -> str:
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert not Interaction.objects.filter(kind="accept").exists()
    return response.json()[field][0]


def test_a_founder_cannot_accept_a_developer_who_applied_elsewhere_or_only_looked(client_for, founder, startup):
    developer = DeveloperFactory()
    InteractionFactory(user=developer.user, position=PositionFactory(), kind="apply")  # another startup's
    for kind in ("view", "like", "save", "dismiss"):
        InteractionFactory(user=developer.user, position=PositionFactory(startup=startup), kind=kind)
    InteractionFactory(user=developer.user, startup=startup, kind="follow")

    message = refused(accept(client_for, founder.user, "developer", developer.user_id))

    assert f"developer {developer.user_id} has applied to no position of a startup you found" in message


def test_a_founder_cannot_accept_an_investor_who_asked_another_startup_or_only_followed(client_for, founder,
                                                                                       startup):
    investor = InvestorFactory()
    InteractionFactory(user=investor.user, startup=StartupFactory(), kind="contact")
    InteractionFactory(user=investor.user, startup=startup, kind="follow")

    message = refused(accept(client_for, founder.user, "investor", investor.user_id))

    assert f"investor {investor.user_id} has neither contacted nor shown investment interest" in message


def test_a_developer_cannot_accept_a_startup_whose_founders_did_not_contact_them(client_for, founder, startup,
                                                                                developer):
    InteractionFactory(user=founder.user, kind="contact", developer=DeveloperFactory())  # someone else
    InteractionFactory(user=founder.user, kind="like", developer=developer)  # not a contact
    other_founder = FounderFactory()
    StartupFactory(founders=[other_founder])
    InteractionFactory(user=other_founder.user, kind="contact", developer=developer)  # another startup's founder

    message = refused(accept(client_for, developer.user, "startup", startup.pk))

    assert f"no founder of startup {startup.pk} has contacted you" in message


def test_an_investor_cannot_accept_a_startup_that_only_they_contacted(client_for, investor, startup):
    InteractionFactory(user=investor.user, startup=startup, kind="contact")

    message = refused(accept(client_for, investor.user, "startup", startup.pk))

    assert f"no founder of startup {startup.pk} has contacted you" in message


@pytest.mark.parametrize(("role", "item_type"), [
    ("developer", "position"), ("developer", "developer"), ("developer", "investor"),
    ("investor", "investor"), ("investor", "position"), ("founder", "startup"), ("founder", "position"),
])
def test_other_combinations_are_refused_naming_what_can_be_accepted(client_for, role, item_type):
    actor = {"developer": DeveloperFactory, "investor": InvestorFactory, "founder": FounderFactory}[role]()
    target = {"position": PositionFactory, "startup": StartupFactory, "developer": DeveloperFactory,
              "investor": InvestorFactory}[item_type]()

    message = refused(accept(client_for, actor.user, item_type, target.pk))

    assert f"cannot accept a {item_type}" in message or f"cannot accept an {item_type}" in message
    assert "a founder accepts a developer who applied to a position of their startup" in message
    assert "a developer or an investor accepts a startup whose founder contacted them" in message


def test_a_user_without_a_role_cannot_accept(client_for, staff_user):
    message = refused(accept(client_for, staff_user, "startup", StartupFactory().pk))

    assert "a user without a role cannot accept a startup" in message


def test_an_unknown_target_is_a_400_naming_item_id(client_for, founder):
    refused(accept(client_for, founder.user, "developer", 999999), field="item_id")


@pytest.mark.parametrize(("role", "item_type"), [
    ("founder", "developer"), ("founder", "investor"), ("developer", "startup"), ("investor", "startup")])
def test_each_rule_is_one_query(django_assert_num_queries, founder, startup, role, item_type):
    accepter = {"founder": founder, "developer": DeveloperFactory(), "investor": InvestorFactory()}[role]
    item_id = startup.pk if item_type == "startup" else {"developer": DeveloperFactory,
                                                         "investor": InvestorFactory}[item_type]().pk
    with django_assert_num_queries(1), pytest.raises(ValidationError, match="An accept answers a contact"):
        _require_accepted_event(accepter.user, role, item_type, item_id)
