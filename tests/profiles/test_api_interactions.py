"""Recording interactions, and who may list whose."""
from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.models import Interaction
from tests.factories import (
    DeveloperFactory,
    InteractionFactory,
    InvestorFactory,
    PositionFactory,
    StartupFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("item_type", ["position", "startup"])
def test_a_developer_records_an_event_on_a_catalog_item(client_for, developer, item_type):
    target = PositionFactory() if item_type == "position" else StartupFactory()

    response = client_for(developer.user).post("/api/v1/interactions", {
        "item_type": item_type, "item_id": target.pk, "kind": "like"}, format="json")

    assert response.status_code == 201
    interaction = Interaction.objects.get()
    assert response.json() == {"id": interaction.pk, "user_id": developer.user_id, "item_type": item_type,
                               "item_id": target.pk, "kind": "like", "recommendation_id": None,
                               "outcome": "", "rank": None, "created_at": response.json()["created_at"]}
    assert (interaction.user, interaction.item_type, interaction.item_id) == (developer.user, item_type, target.pk)


@pytest.mark.parametrize(("item_type", "factory"), [("developer", DeveloperFactory), ("investor", InvestorFactory)])
def test_a_founder_records_an_event_on_a_person_by_user_id(client_for, founder, item_type, factory):
    person = factory()

    response = client_for(founder.user).post("/api/v1/interactions", {
        "item_type": item_type, "item_id": person.user_id, "kind": "contact"}, format="json")

    assert response.status_code == 201
    assert getattr(Interaction.objects.get(), f"{item_type}_id") == person.user_id


def test_only_founders_may_target_people(client_for, developer, investor):
    response = client_for(developer.user).post("/api/v1/interactions", {
        "item_type": "investor", "item_id": investor.user_id, "kind": "contact"}, format="json")

    assert response.status_code == 400
    assert "founders" in response.json()["item_type"][0]
    assert not Interaction.objects.exists()


@pytest.mark.parametrize("item_id", [999999, 2**63 - 1])
def test_an_unknown_target_is_a_400_naming_item_id(client_for, developer, item_id):
    response = client_for(developer.user).post("/api/v1/interactions", {
        "item_type": "position", "item_id": item_id, "kind": "view"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["item_id"]
    assert not Interaction.objects.exists()


def test_a_person_target_that_is_not_of_that_role_is_unknown(client_for, founder):
    investor_user_id = InvestorFactory().user_id

    response = client_for(founder.user).post("/api/v1/interactions", {
        "item_type": "developer", "item_id": investor_user_id, "kind": "contact"}, format="json")

    assert response.status_code == 400
    assert "item_id" in response.json()


@pytest.mark.parametrize(("payload", "field"), [
    ({"item_type": "planet"}, "item_type"),
    ({"kind": "stare"}, "kind"),
    ({"item_id": "seven"}, "item_id"),
    ({"item_id": 0}, "item_id"),
    ({"item_id": -3}, "item_id"),
    ({"item_id": 2**64}, "item_id"),
    ({"item_id": None}, "item_id"),
])
def test_invalid_events_are_400s_naming_the_field(client_for, developer, payload, field):
    position = PositionFactory()
    body = {"item_type": "position", "item_id": position.pk, "kind": "view", **payload}

    response = client_for(developer.user).post("/api/v1/interactions", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Interaction.objects.exists()


def test_a_user_lists_only_their_own_events_newest_first(client_for, developer):
    now = timezone.now()
    older = InteractionFactory(user=developer.user, created_at=now - timedelta(days=1))
    newer = InteractionFactory(user=developer.user, created_at=now)
    InteractionFactory()

    body = client_for(developer.user).get("/api/v1/interactions").json()

    assert body["count"] == 2
    assert [row["id"] for row in body["results"]] == [newer.pk, older.pk]


def test_events_filter_by_kind_and_item_type(client_for, developer):
    startup = StartupFactory()
    liked = InteractionFactory(user=developer.user, startup=startup, kind="like")
    InteractionFactory(user=developer.user, startup=startup, kind="view")
    InteractionFactory(user=developer.user, kind="like")
    client = client_for(developer.user)

    body = client.get("/api/v1/interactions", {"kind": "like", "item_type": "startup"}).json()

    assert [row["id"] for row in body["results"]] == [liked.pk]
    assert body["results"][0]["item_type"] == "startup"


def test_a_founders_events_on_people_list_with_the_persons_user_id(client_for, founder):
    developer = DeveloperFactory()
    InteractionFactory.for_target(developer, user=founder.user, kind="contact")
    InteractionFactory(user=founder.user)

    body = client_for(founder.user).get("/api/v1/interactions", {"item_type": "developer"}).json()

    assert [(row["item_type"], row["item_id"], row["kind"]) for row in body["results"]] == [
        ("developer", developer.user_id, "contact")]


def test_a_user_cannot_list_another_users_events(client_for, developer):
    other = DeveloperFactory()
    InteractionFactory(user=other.user)

    response = client_for(developer.user).get("/api/v1/interactions", {"user_id": other.user_id})

    assert response.status_code == 403
    assert "user_id" in response.json()["detail"]


def test_a_user_may_name_themselves_in_user_id(client_for, developer):
    InteractionFactory(user=developer.user)

    response = client_for(developer.user).get("/api/v1/interactions", {"user_id": developer.user_id})

    assert response.json()["count"] == 1


def test_staff_list_any_users_events(client_for, staff_user, developer):
    event = InteractionFactory(user=developer.user)
    InteractionFactory()

    body = client_for(staff_user).get("/api/v1/interactions", {"user_id": developer.user_id}).json()

    assert [row["id"] for row in body["results"]] == [event.pk]


@pytest.mark.parametrize(("params", "field"), [
    ({"user_id": "me"}, "user_id"),
    ({"user_id": "9" * 30}, "user_id"),
    ({"kind": "stare"}, "kind"),
    ({"item_type": "planet"}, "item_type"),
])
def test_malformed_list_filters_are_400s_naming_the_parameter(client_for, staff_user, params, field):
    response = client_for(staff_user).get("/api/v1/interactions", params)

    assert response.status_code == 400
    assert field in response.json()


def test_interactions_cannot_be_read_one_by_one_edited_or_deleted(client_for, developer):
    event = InteractionFactory(user=developer.user)
    client = client_for(developer.user)

    assert client.get(f"/api/v1/interactions/{event.pk}/").status_code == 404
    assert client.delete(f"/api/v1/interactions/{event.pk}/").status_code == 404
    assert Interaction.objects.filter(pk=event.pk).exists()
