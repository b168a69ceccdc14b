"""Impressions and attributed outcomes (issue 12, points 1-2): every answer of POST /recommendations is one
recorded impression, written in batches off the request's path; interactions name or find the impression they answer."""
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from profiles import services as profiles_services
from profiles.models import OUTCOME_OF_KIND, Developer, Interaction, InteractionKind, Outcome, Position
from recommendations import services
from recommendations.models import Impression
from tests.factories import DeveloperFactory

URL = "/api/v1/recommendations"
EVENTS = "/api/v1/interactions"


@pytest.fixture
def developer(world):
    return Developer.objects.get(pk=world.developer_id).user


@pytest.fixture
def client(developer, client_for):
    return client_for(developer)


def recommend(client, user_id: int, **options) -> dict:
    response = client.post(URL, {"user_id": user_id, "user_type": "developer", **options}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def record(client, item: dict, kind: str = "like", **extra):
    return client.post(EVENTS, {"item_type": item["item_type"], "item_id": item["item_id"], "kind": kind, **extra},
                       format="json")


def age(impression_id, **ago) -> None:
    Impression.objects.filter(pk=impression_id).update(created_at=timezone.now() - timedelta(**ago))


# ---------------------------------------------------------------- impressions


def test_an_answer_has_a_recommendation_id_and_no_experiment(world, client):
    answer = recommend(client, world.developer_id, limit=3)

    assert uuid.UUID(answer["recommendation_id"]).version == 4
    assert answer["experiment"] is None
    assert recommend(client, world.developer_id, limit=3)["recommendation_id"] != answer["recommendation_id"]


def test_one_row_records_each_answer(world, client, developer):
    answer = recommend(client, world.developer_id, limit=5)

    impression = Impression.objects.get()
    assert str(impression.id) == answer["recommendation_id"]
    assert impression.user == developer and impression.user_type == "developer"
    assert impression.items == [f"{item['item_type']}:{item['item_id']}" for item in answer["results"]]
    assert len(impression.items) == 5
    assert impression.model_versions == answer["model_versions"] == world.model_versions
    assert impression.weights == answer["weights"]
    assert impression.fallback == answer["fallback"] == "none"
    assert (impression.experiment, impression.variant) == (None, "")
    assert timezone.now() - impression.created_at < timedelta(minutes=5)


@pytest.fixture
def buffered(settings, monkeypatch):
    """A buffer of its own with a flush interval, as a server has: answers are held until written."""
    settings.IMPRESSION_FLUSH_SECONDS = 1
    buffer = services._ImpressionBuffer()
    monkeypatch.setattr(services, "impression_record", buffer.add)
    monkeypatch.setattr(profiles_services, "impressions_flush", buffer.flush)
    yield buffer
    buffer.close()


def test_a_flush_writes_everything_held_in_one_insert(world, client, buffered, django_assert_num_queries):
    buffered._closing.set()  # no writer: this test flushes by hand (a writer that starts sees it and stops)
    answers = [recommend(client, world.developer_id, limit=2)["recommendation_id"] for _ in range(4)]
    assert not Impression.objects.exists()  # the answers were sent without a write

    with django_assert_num_queries(1):
        assert buffered.flush() == 4
    assert {str(pk) for pk in Impression.objects.values_list("pk", flat=True)} == set(answers)


def test_an_event_answering_a_held_answer_writes_it_first_and_is_attributed(world, client, buffered):
    buffered._closing.set()
    answer = recommend(client, world.developer_id, limit=3)
    assert not Impression.objects.exists()

    response = record(client, answer["results"][1], recommendation_id=answer["recommendation_id"])

    assert response.status_code == 201, response.content
    event = Interaction.objects.get(pk=response.json()["id"])
    assert str(event.impression_id) == answer["recommendation_id"] and event.rank == 2
    assert (response.json()["recommendation_id"], response.json()["outcome"], response.json()["rank"]) == (
        answer["recommendation_id"], "positive", 2)  # the answer says what the event was attributed to


def test_a_failing_write_is_logged_kept_for_the_next_try_and_the_answer_still_succeeds(
        world, client, buffered, monkeypatch, caplog):
    buffered._closing.set()
    answer = recommend(client, world.developer_id, limit=2)
    with monkeypatch.context() as broken:
        broken.setattr(Impression.objects, "bulk_create", lambda rows: (_ for _ in ()).throw(
            OperationalError("database gone")))
        assert buffered.flush() == 0

    assert answer["results"] and not Impression.objects.exists()
    assert "1 impressions not recorded yet" in caplog.text and "database gone" in caplog.text
    assert buffered.flush() == 1
    assert str(Impression.objects.get().pk) == answer["recommendation_id"]


def test_pruning_deletes_only_impressions_past_retention(world, client, settings):
    settings.IMPRESSION_RETENTION_DAYS = 30
    old, recent, fresh = (recommend(client, world.developer_id, limit=1)["recommendation_id"] for _ in range(3))
    age(old, days=31)
    age(recent, days=29)
    event = Interaction.objects.create(user=Impression.objects.get(pk=old).user, kind="view", created_at=timezone.now(),
                                       position=Position.objects.first(), impression_id=old, outcome=Outcome.CLICK)

    call_command("prune_impressions", verbosity=0)

    assert {str(pk) for pk in Impression.objects.values_list("pk", flat=True)} == {recent, fresh}
    event.refresh_from_db()
    assert event.impression_id is None  # the event stays, unattributed


@pytest.mark.django_db
def test_pruning_is_scheduled_daily_out_of_the_box():
    from django_celery_beat.models import PeriodicTask

    from recsys_site.celery import app

    task = PeriodicTask.objects.get(task="recommendations.prune_impressions")
    assert task.enabled and (task.crontab.minute, task.crontab.hour) == ("0", "4")
    app.loader.import_default_modules()  # what a worker does when it starts: autodiscovers the apps' tasks
    assert task.task in app.tasks  # beat sends it by name: the worker must know that name


# ---------------------------------------------------------------- outcomes


def test_an_event_naming_the_recommendation_that_showed_the_item_is_attributed_to_it(world, client):
    first = recommend(client, world.developer_id, limit=5)
    recommend(client, world.developer_id, limit=5)  # a later answer that shows the same items
    item = first["results"][2]

    response = record(client, item, "apply", recommendation_id=first["recommendation_id"])

    assert response.status_code == 201, response.content
    event = Interaction.objects.get(pk=response.json()["id"])
    assert str(event.impression_id) == first["recommendation_id"]
    assert event.outcome == Outcome.CONVERSION


def test_a_recommendation_id_of_another_user_is_refused(world, client, client_for):
    other = DeveloperFactory()
    theirs = recommend(client_for(other.user), other.pk, limit=3)

    response = record(client, theirs["results"][0], recommendation_id=theirs["recommendation_id"])

    assert response.status_code == 400
    assert "was made to you" in response.json()["recommendation_id"][0]
    assert not Interaction.objects.filter(user__developer__pk=world.developer_id, kind="like",
                                          created_at__gte=timezone.now() - timedelta(minutes=1)).exists()


def test_a_recommendation_id_that_did_not_show_the_item_is_refused(world, client):
    answer = recommend(client, world.developer_id, limit=2)
    unshown = recommend(client, world.developer_id, limit=10)["results"][-1]
    assert unshown["item_id"] not in {item["item_id"] for item in answer["results"]} or \
        unshown["item_type"] not in {item["item_type"] for item in answer["results"]}

    response = record(client, unshown, recommendation_id=answer["recommendation_id"])

    assert response.status_code == 400
    assert response.json()["recommendation_id"] == [
        f"Recommendation {answer['recommendation_id']} did not show {unshown['item_type']}:{unshown['item_id']}."]


@pytest.mark.parametrize(("sent", "message"), [
    (str(uuid.uuid4()), "was made to you"),
    ("not-a-uuid", "valid UUID"),
    ("12", "valid UUID"),
    ({"id": 1}, "valid UUID"),
])
def test_an_unknown_or_malformed_recommendation_id_is_a_400_naming_it(world, client, sent, message):
    item = recommend(client, world.developer_id, limit=1)["results"][0]

    response = record(client, item, recommendation_id=sent)

    assert response.status_code == 400
    assert message in response.json()["recommendation_id"][0]


def test_without_an_id_the_latest_impression_in_the_window_that_showed_the_item_is_chosen(world, client, settings):
    settings.ATTRIBUTION_WINDOW_HOURS = 24
    older = recommend(client, world.developer_id, limit=5)
    latest = recommend(client, world.developer_id, limit=5)
    other = recommend(client, world.developer_id, limit=5, item_types=["startup"])  # newest; shows other items
    age(older["recommendation_id"], hours=3)
    age(latest["recommendation_id"], hours=2)
    item = latest["results"][0]
    assert (item["item_type"], item["item_id"]) in {(i["item_type"], i["item_id"]) for i in older["results"]}
    assert item["item_type"] == "position" or item not in other["results"]

    event = Interaction.objects.get(pk=record(client, item, "view").json()["id"])

    assert str(event.impression_id) == latest["recommendation_id"]
    assert event.outcome == Outcome.CLICK


def test_without_an_id_an_impression_outside_the_window_is_not_chosen(world, client, settings):
    settings.ATTRIBUTION_WINDOW_HOURS = 24
    answer = recommend(client, world.developer_id, limit=3)
    age(answer["recommendation_id"], hours=25)

    event = Interaction.objects.get(pk=record(client, answer["results"][0], "like").json()["id"])

    assert event.impression_id is None and event.outcome == ""


def test_an_event_on_an_item_never_shown_is_not_attributed(world, client):
    answer = recommend(client, world.developer_id, limit=1)
    unshown = recommend(client, world.developer_id, limit=10)["results"][-1]
    Impression.objects.exclude(pk=answer["recommendation_id"]).delete()

    event = Interaction.objects.get(pk=record(client, unshown, "save").json()["id"])

    assert event.impression_id is None and event.outcome == ""


@pytest.mark.parametrize(("kind", "outcome"), [
    ("view", "click"), ("like", "positive"), ("save", "positive"), ("follow", "positive"),
    ("apply", "conversion"), ("invest_interest", "conversion"), ("contact", "conversion"), ("dismiss", "dismissal"),
])
def test_each_kind_has_its_outcome_class(world, client, kind, outcome):
    answer = recommend(client, world.developer_id, limit=1)

    response = record(client, answer["results"][0], kind, recommendation_id=answer["recommendation_id"])

    assert response.status_code == 201, response.content
    assert Interaction.objects.get(pk=response.json()["id"]).outcome == outcome


def test_every_kind_is_classified():
    # An accept answers someone else's contact or application, not a recommendation shown to the accepter
    # (tests/profiles/test_accept.py: it is never attributed); every other kind says something about one.
    assert set(OUTCOME_OF_KIND) == set(InteractionKind) - {InteractionKind.ACCEPT}


def test_staff_can_read_impressions_in_the_admin_but_not_change_them(world, client):
    from django.contrib.auth import get_user_model
    from django.test import Client

    impression = recommend(client, world.developer_id, limit=2)["recommendation_id"]
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123"))

    assert admin.get("/admin/recommendations/impression/").status_code == 200
    page = admin.get(f"/admin/recommendations/impression/{impression}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin.post(f"/admin/recommendations/impression/{impression}/delete/", {"post": "yes"}).status_code == 403
    assert Impression.objects.filter(pk=impression).exists()


def test_with_recording_off_answers_are_not_recorded(world, client, settings):
    """RECORD_IMPRESSIONS off exists to measure what recording costs (bench/api_latency.py --impressions)."""
    settings.RECORD_IMPRESSIONS = False

    assert recommend(client, world.developer_id, limit=2)["results"]
    assert not Impression.objects.exists()
