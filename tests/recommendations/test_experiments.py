"""Experiments: the assignment of users to variants, and the services that define, start, stop and promote."""
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from ml.models import BLENDED, HybridWeights, ModelVersion
from ml.selectors import current_weights
from profiles.models import Interaction
from recommendations import experiments
from recommendations.experiments import CONTROL, RunningExperiment, Variant, running_experiment
from recommendations.models import Experiment, Impression
from tests.factories import PositionFactory

from .test_model_endpoints import copy_as_new_version

USERS = range(1, 2001)


def _split(experiment: RunningExperiment) -> Counter:
    return Counter(getattr(experiment.variant_for(user), "name", CONTROL) for user in USERS)


def _two_variants(pk: int = 1) -> RunningExperiment:
    return RunningExperiment(id=pk, name="e", variants=(
        Variant(name="a", share=0.2, weights={"content_based": 1.0}, model_versions=None),
        Variant(name="b", share=0.3, weights=None, model_versions={"two_tower": 2})))


# ---------------------------------------------------------------- assignment


def test_users_split_within_three_percent_of_the_shares():
    counts = _split(_two_variants())
    for name, share in {"a": 0.2, "b": 0.3, CONTROL: 0.5}.items():
        assert abs(counts[name] / len(USERS) - share) <= 0.03, counts


def test_a_user_is_always_in_the_same_variant():
    first, again = _two_variants(), _two_variants()
    assert [first.variant_for(user) for user in USERS] == [again.variant_for(user) for user in USERS]


def test_different_experiments_split_users_independently():
    one, other = _two_variants(pk=1), _two_variants(pk=2)
    both = Counter((getattr(one.variant_for(u), "name", CONTROL), getattr(other.variant_for(u), "name", CONTROL))
                   for u in USERS)
    # Independent: the users in "a" of one are split like everyone in the other (0.2 * 0.3 of all in a and b).
    assert abs(both["a", "b"] / len(USERS) - 0.2 * 0.3) <= 0.03, both
    assert abs(both["a", "a"] / len(USERS) - 0.2 * 0.2) <= 0.03, both


def test_shares_summing_to_one_leave_no_control():
    full = RunningExperiment(id=3, name="e", variants=(Variant("a", 0.5, None, None), Variant("b", 0.5, None, None)))
    assert _split(full)[CONTROL] == 0


# ---------------------------------------------------------------- the running experiment


@pytest.mark.django_db
def test_the_running_experiment_is_read_with_its_variants(django_assert_num_queries):
    now = timezone.now()
    stored = Experiment.objects.create(name="weights", status="running", starts_at=now - timedelta(hours=1),
                                       variants=[{"name": "content", "share": 0.5, "weights": {"content_based": 1.0}}])
    Experiment.objects.create(name="draft", variants=[{"name": "x", "share": 1.0, "weights": {"ease": 1.0}}])
    with django_assert_num_queries(1):
        running = running_experiment()
    assert running == RunningExperiment(id=stored.pk, name="weights", variants=(
        Variant(name="content", share=0.5, weights={"content_based": 1.0}, model_versions=None),))


@pytest.mark.django_db
def test_no_experiment_runs_outside_its_window():
    now = timezone.now()
    Experiment.objects.create(name="later", status="running", starts_at=now + timedelta(hours=1),
                              ends_at=now + timedelta(hours=2), variants=[{"name": "a", "share": 0.5}])
    assert running_experiment(now=now) is None
    assert running_experiment(now=now + timedelta(minutes=90)).name == "later"
    assert running_experiment(now=now + timedelta(hours=2)) is None  # ends_at is excluded


@pytest.mark.django_db
def test_none_runs_without_a_running_experiment():
    Experiment.objects.create(name="stopped", status="stopped", variants=[{"name": "a", "share": 0.5}])
    assert running_experiment() is None


# ---------------------------------------------------------------- the API: define, edit, delete

URL = "/api/v1/experiments"
CONTENT_ONLY = {"content_based": 1.0}


@pytest.fixture
def staff(staff_user, client_for):
    return client_for(staff_user)


def _definition(**changes) -> dict:
    return {"name": "content vs tuned",
            "variants": [{"name": "content", "share": 0.5, "weights": {"content_based": 2}}], **changes}


def _create(staff, **changes) -> dict:
    response = staff.post(URL, _definition(**changes), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_staff_create_a_draft_with_normalised_weights(staff, staff_user):
    body = _create(staff, metric="conversion_rate")
    stored = Experiment.objects.get(pk=body["id"])
    assert (stored.status, stored.metric, stored.created_by) == ("draft", "conversion_rate", staff_user)
    assert stored.variants == [{"name": "content", "share": 0.5,
                                "weights": {**dict.fromkeys(BLENDED, 0.0), "content_based": 1.0}}]
    assert body["variants"] == stored.variants and body["created_by"] == staff_user.username
    assert (body["status"], body["starts_at"], body["promoted_variant"]) == ("draft", None, "")


def test_variants_may_pin_ready_or_active_versions(staff):
    ModelVersion.objects.create(algorithm="ease", version=40, status="ready")
    # The package's trained world may hold the one active two_tower version already (tests run in any order).
    active = (ModelVersion.objects.filter(algorithm="two_tower", status="active").first()
              or ModelVersion.objects.create(algorithm="two_tower", version=2, status="active"))
    pins = {"ease": 40, "two_tower": active.version}
    body = _create(staff, variants=[{"name": "pinned", "share": 0.3, "model_versions": pins}])
    assert body["variants"] == [{"name": "pinned", "share": 0.3, "model_versions": pins}]


@pytest.mark.parametrize(("variants", "field", "says"), [
    ([], "variants", "at least one variant"),
    ([{"name": "a", "share": 0.2, "weights": CONTENT_ONLY}, {"name": "a", "share": 0.2, "weights": CONTENT_ONLY}],
     "variants", "unique; repeated: a"),
    ([{"name": "Control", "share": 0.2, "weights": CONTENT_ONLY}], "variants", '"control" names the rest'),
    ([{"name": " ", "share": 0.2, "weights": CONTENT_ONLY}], "variants", "may not be blank"),
    ([{"name": "a", "share": 0, "weights": CONTENT_ONLY}], "variants", "share must be a number in (0, 1], got 0"),
    ([{"name": "a", "share": 1.5, "weights": CONTENT_ONLY}], "variants", "share must be a number in (0, 1]"),
    ([{"name": "a", "share": 0.7, "weights": CONTENT_ONLY}, {"name": "b", "share": 0.5, "weights": CONTENT_ONLY}],
     "variants", "The shares sum to 1.2; at most 1"),
    ([{"name": "a", "share": 0.2}], "variants", "needs weights and/or model_versions"),
    ([{"name": "a", "share": 0.2, "weights": {"magic": 1}}], "variants", "Unknown algorithm(s) ['magic']"),
    ([{"name": "a", "share": 0.2, "weights": {"ease": 0}}], "variants", "At least one weight must be greater than 0"),
    ([{"name": "a", "share": 0.2, "weights": {"ease": -1}}], "variants", "must be a finite number >= 0"),
    ([{"name": "a", "share": 0.2, "model_versions": {"ease": 99}}], "variants", "no ease model version 99"),
    ([{"name": "a", "share": 0.2, "model_versions": {"ease": 1}}], "variants",
     "ease v1 is failed; only a ready or active version can be pinned"),
    ([{"name": "a", "share": 0.2, "model_versions": {"magic": 1}}], "variants", "unknown algorithm(s) magic"),
    ([{"name": "a", "share": 0.2, "weights": CONTENT_ONLY, "colour": "red"}], "variants", "Unknown field"),
])
def test_a_bad_variant_is_a_400_that_says_what_is_wrong(staff, variants, field, says):
    ModelVersion.objects.create(algorithm="ease", version=1, status="failed")
    response = staff.post(URL, _definition(variants=variants), format="json")
    assert response.status_code == 400, response.content
    assert says in str(response.json()[field])
    assert not Experiment.objects.exists()


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({"starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}, "ends_at", "must be after starts_at"),
    ({"metric": "ndcg"}, "metric", "not a valid choice"),
    ({"name": ""}, "name", "may not be blank"),
])
def test_a_bad_definition_is_a_400_naming_the_field(staff, changes, field, says):
    response = staff.post(URL, _definition(**changes), format="json")
    assert response.status_code == 400, response.content
    assert says in str(response.json()[field])


def test_a_name_is_taken_once(staff):
    _create(staff)
    response = staff.post(URL, _definition(), format="json")
    assert response.status_code == 400
    assert "exists already" in response.json()["name"][0]


def test_a_draft_is_edited_and_deleted_but_a_started_one_is_not(staff):
    draft = _create(staff)
    response = staff.patch(f"{URL}/{draft['id']}", {"name": "renamed", "ends_at": "2030-01-01T00:00:00Z"},
                           format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["variants"]) == ("renamed", draft["variants"])
    assert staff.put(f"{URL}/{draft['id']}", {"name": "only a name"}, format="json").status_code == 400
    assert staff.post(f"{URL}/{draft['id']}/start").status_code == 200
    refused = staff.patch(f"{URL}/{draft['id']}", {"name": "again"}, format="json")
    assert refused.status_code == 409
    assert "only a draft can be edited" in refused.json()["detail"]
    assert staff.delete(f"{URL}/{draft['id']}").status_code == 409
    other = _create(staff, name="other")
    assert staff.delete(f"{URL}/{other['id']}").status_code == 204
    assert list(Experiment.objects.values_list("name", flat=True)) == ["renamed"]


def test_experiments_are_listed_newest_first_and_paginated(staff):
    for name in ("one", "two", "three"):
        _create(staff, name=name)
    body = staff.get(URL, {"page_size": 2}).json()
    assert body["count"] == 3
    assert [experiment["name"] for experiment in body["results"]] == ["three", "two"]


@pytest.mark.parametrize("experiment_id", ["12345", str(2**63), str(2**70)])
def test_an_unknown_experiment_is_a_json_404(staff, experiment_id):
    for method, suffix in [("get", ""), ("patch", ""), ("delete", ""), ("post", "/start"), ("post", "/stop"),
                           ("post", "/promote"), ("get", "/results")]:
        response = getattr(staff, method)(f"{URL}/{experiment_id}{suffix}", {"variant": "a"}, format="json")
        assert response.status_code == 404, (method, suffix)
        assert "No experiment has id" in response.json()["detail"]


@pytest.mark.parametrize(("method", "suffix"), [("get", ""), ("post", ""), ("get", "/1"), ("post", "/1/start"),
                                                ("get", "/1/results")])
def test_experiments_are_for_staff_only(developer, client_for, method, suffix):
    response = getattr(client_for(developer.user), method)(f"{URL}{suffix}", {}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "Experiments and online metrics are for staff only."


# ---------------------------------------------------------------- start, stop: one running at a time


def test_start_runs_a_draft_from_now_and_stop_ends_it(staff):
    draft = _create(staff)
    before = timezone.now()
    started = staff.post(f"{URL}/{draft['id']}/start").json()
    stored = Experiment.objects.get()
    assert stored.status == "running" and stored.started_at >= before and stored.starts_at == stored.started_at
    assert started["status"] == "running"
    assert running_experiment().name == "content vs tuned"
    assert staff.post(f"{URL}/{draft['id']}/start").status_code == 409
    stopped = staff.post(f"{URL}/{draft['id']}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert Experiment.objects.get().stopped_at >= stored.started_at
    assert running_experiment() is None
    refused = staff.post(f"{URL}/{draft['id']}/stop")
    assert refused.status_code == 409 and "only a running one can be stopped" in refused.json()["detail"]


def test_a_second_experiment_does_not_start_while_one_runs(staff):
    first, second = _create(staff, name="first"), _create(staff, name="second")
    staff.post(f"{URL}/{first['id']}/start")
    response = staff.post(f"{URL}/{second['id']}/start")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"Experiment 'first' (id {first['id']}) is running; stop it")
    assert Experiment.objects.get(pk=second["id"]).status == "draft"


def test_the_database_refuses_a_second_running_experiment_under_a_race(staff, monkeypatch):
    first, second = _create(staff, name="first"), _create(staff, name="second")
    staff.post(f"{URL}/{first['id']}/start")
    real = experiments._refuse_a_second_running
    calls = []
    # The check runs before the other request's start committed: it sees nothing running.
    monkeypatch.setattr(experiments, "_refuse_a_second_running",
                        lambda experiment: real(experiment) if calls.append(1) or len(calls) > 1 else None)
    response = staff.post(f"{URL}/{second['id']}/start")
    assert response.status_code == 400
    assert "'first'" in response.json()["detail"]
    assert Experiment.objects.get(pk=second["id"]).status == "draft"


def test_an_experiment_whose_end_has_passed_is_not_started(staff):
    draft = Experiment.objects.create(name="late", variants=_definition()["variants"],
                                      ends_at=timezone.now() - timedelta(minutes=1))
    response = staff.post(f"{URL}/{draft.pk}/start")
    assert response.status_code == 400
    assert "ends_at" in response.json()["detail"] and "has passed" in response.json()["detail"]


# ---------------------------------------------------------------- promote


def test_promote_puts_the_variants_weights_and_versions_in_force_and_stops_it(world, staff, staff_user, tmp_path):
    copy = copy_as_new_version("collaborative", tmp_path)
    draft = _create(staff, variants=[{"name": "content", "share": 0.5, "weights": {"content_based": 3,
                                                                                    "collaborative": 1}},
                                     {"name": "new model", "share": 0.2,
                                      "model_versions": {"collaborative": copy.version}}])
    staff.post(f"{URL}/{draft['id']}/start")
    response = staff.post(f"{URL}/{draft['id']}/promote", {"variant": "content"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["promoted_variant"]) == ("stopped", "content")
    assert current_weights() == pytest.approx({**dict.fromkeys(BLENDED, 0.0), "content_based": 0.75,
                                               "collaborative": 0.25})
    latest = HybridWeights.objects.latest()
    assert (latest.mode, latest.changed_by) == ("manual", staff_user)
    assert latest.note == "promoted from experiment 'content vs tuned', variant 'content'"
    copy.refresh_from_db()
    assert copy.status == "ready"  # the other variant's version stays as it was
    again = staff.post(f"{URL}/{draft['id']}/promote", {"variant": "new model"}, format="json")
    assert again.status_code == 409 and "already promoted 'content'" in again.json()["detail"]


def test_promoting_pinned_versions_activates_them(world, staff, tmp_path):
    copy = copy_as_new_version("collaborative", tmp_path)
    weights_before = current_weights()
    stopped = Experiment.objects.create(name="model", status="stopped", variants=[
        {"name": "new model", "share": 0.2, "model_versions": {"collaborative": copy.version}}])
    response = staff.post(f"{URL}/{stopped.pk}/promote", {"variant": "new model"}, format="json")
    assert response.status_code == 200, response.content
    assert ModelVersion.objects.get(algorithm="collaborative", status="active").pk == copy.pk
    assert current_weights() == weights_before
    assert Experiment.objects.get().promoted_variant == "new model"


def test_a_version_that_does_not_load_undoes_the_whole_promotion(world, staff, tmp_path):
    broken = copy_as_new_version("collaborative", tmp_path, corrupt=True)
    weights_before = current_weights()
    stopped = Experiment.objects.create(name="model", status="stopped", variants=[
        {"name": "both", "share": 0.2, "weights": {"content_based": 1.0},
         "model_versions": {"collaborative": broken.version}}])
    response = staff.post(f"{URL}/{stopped.pk}/promote", {"variant": "both"}, format="json")
    assert response.status_code == 409
    assert current_weights() == weights_before
    assert Experiment.objects.get().promoted_variant == ""
    assert ModelVersion.objects.get(algorithm="collaborative", status="active").version == \
        world.versions["collaborative"]


@pytest.mark.parametrize(("variant", "says"), [("control", "The control is what is in force"),
                                               ("nope", "has no variant 'nope'; its variants: 'content'")])
def test_promoting_the_control_or_an_unknown_variant_is_a_400(staff, variant, says):
    stopped = Experiment.objects.create(name="done", status="stopped", variants=_definition()["variants"])
    response = staff.post(f"{URL}/{stopped.pk}/promote", {"variant": variant}, format="json")
    assert response.status_code == 400
    assert says in response.json()["variant"][0]


def test_a_draft_is_not_promoted(staff):
    draft = _create(staff)
    response = staff.post(f"{URL}/{draft['id']}/promote", {"variant": "content"}, format="json")
    assert response.status_code == 409
    assert HybridWeights.objects.count() == 0


# ---------------------------------------------------------------- results


def _experiment_traffic(experiment: Experiment, clicks_of: dict, users_per_group: int = 100) -> None:
    """``users_per_group`` users in each group of ``clicks_of`` ({group: f(i) -> clicks of its i-th user}), each
    shown one answer of ten positions, clicking its first f(i) items."""
    positions = [PositionFactory() for _ in range(10)]
    items = [f"position:{p.pk}" for p in positions]
    now = timezone.now()
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"{group}-{i}") for group in clicks_of for i in range(users_per_group))
    impressions, events = [], []
    for index, user in enumerate(users):
        group, i = list(clicks_of)[index // users_per_group], index % users_per_group
        impression = Impression(user=user, user_type="developer", created_at=now, experiment=experiment,
                                variant=group, fallback="none", items=items)
        impressions.append(impression)
        events += [Interaction(user=user, kind="view", position=positions[rank], created_at=now,
                               impression=impression, outcome="click", rank=rank + 1)
                   for rank in range(clicks_of[group](i))]
        if i % 10 == 0:  # a second event on an item already clicked: still one clicked item
            events += [Interaction(user=user, kind="like", position=positions[0], created_at=now,
                                   impression=impression, outcome="positive", rank=1)]
    Impression.objects.bulk_create(impressions)
    Interaction.objects.bulk_create(events)


def _running(name="results") -> Experiment:
    return Experiment.objects.create(name=name, status="running", variants=[
        {"name": "content", "share": 0.5, "weights": {"content_based": 1.0}}])


def test_results_name_the_variant_whose_users_click_more(staff):
    experiment = _running()
    _experiment_traffic(experiment, {CONTROL: lambda i: i % 3, "content": lambda i: 2 + i % 3})
    response = staff.get(f"{URL}/{experiment.pk}/results")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["experiment"] == {"id": experiment.pk, "name": "results", "status": "running",
                                  "metric": "click_rate"}
    control, (content,) = body["control"], body["variants"]
    assert (control["users"], control["impressions"], control["items_shown"]) == (100, 100, 1000)
    # Control users click 0, 1, 2, 0, ... of 10 items: 99; the likes of users 0, 30, 60 and 90, who clicked
    # nothing, are clicks too.
    assert control["rates"]["click_rate"] == pytest.approx(103 / 1000)
    assert content["rates"]["click_rate"] == pytest.approx(299 / 1000)
    assert content["rates"]["positive_rate"] == pytest.approx(10 / 1000)
    difference = content["difference_vs_control"]["click_rate"]
    assert difference["difference"] == pytest.approx(0.196)
    assert difference["interval"][0] > 0 and content["p_value"] == difference["p_value"] < 1e-6
    assert content["users_needed"] == 0
    assert body["winner"] == "content" and body["alpha"] == 0.05
    low, high = content["intervals"]["click_rate"]
    assert low < 0.299 < high


def test_results_name_no_winner_when_both_groups_behave_alike(staff):
    experiment = _running()
    _experiment_traffic(experiment, {CONTROL: lambda i: i % 3, "content": lambda i: i % 3})
    body = staff.get(f"{URL}/{experiment.pk}/results").json()
    (content,) = body["variants"]
    assert content["p_value"] == pytest.approx(1.0)
    assert content["users_needed"] is None
    assert body["winner"] is None


def test_results_name_the_control_when_it_beats_every_variant(staff):
    experiment = _running()
    _experiment_traffic(experiment, {CONTROL: lambda i: 3 + i % 3, "content": lambda i: i % 3})
    assert staff.get(f"{URL}/{experiment.pk}/results").json()["winner"] == CONTROL


def test_a_small_difference_on_few_users_says_how_many_more_are_needed(staff):
    experiment = _running()
    _experiment_traffic(experiment, {CONTROL: lambda i: i % 3, "content": lambda i: i % 3 + (i % 10 == 0)},
                        users_per_group=30)
    (content,) = staff.get(f"{URL}/{experiment.pk}/results").json()["variants"]
    assert content["p_value"] > 0.05
    assert content["users_needed"] > 0


def test_results_before_any_traffic_have_no_rates(staff):
    experiment = _running()
    body = staff.get(f"{URL}/{experiment.pk}/results").json()
    assert body["control"]["users"] == 0 and body["control"]["rates"]["click_rate"] is None
    assert body["variants"][0]["difference_vs_control"]["click_rate"] is None
    assert body["variants"][0]["p_value"] is None and body["winner"] is None


# ---------------------------------------------------------------- admin

ADMIN = "/admin/recommendations/experiment/"


def test_admin_refuses_a_bad_variant_with_the_services_message(admin_client):
    response = admin_client.post(f"{ADMIN}add/", {"name": "bad", "metric": "click_rate",
                                                  "variants": '[{"name": "a", "share": 1.5, "weights": {"ease": 1}}]'})
    assert response.status_code == 200
    assert "share must be a number in (0, 1], got 1.5" in response.content.decode()
    assert not Experiment.objects.exists()


def test_admin_creates_starts_promotes_and_lists_an_experiment(admin_client, admin_user):
    response = admin_client.post(f"{ADMIN}add/", {"name": "from admin", "metric": "click_rate",
                                                  "variants": '[{"name": "content", "share": 0.4, '
                                                              '"weights": {"content_based": 1}}]'})
    assert response.status_code == 302, response.content.decode()
    stored = Experiment.objects.get()
    assert stored.created_by == admin_user and stored.variants[0]["weights"]["content_based"] == 1.0
    admin_client.post(ADMIN, {"action": "start", "_selected_action": [stored.pk]})
    assert Experiment.objects.get().status == "running"
    listing = admin_client.get(ADMIN).content.decode()
    assert "content 40% · control 60%" in listing and "promote:content" in listing
    assert admin_client.get(f"{ADMIN}{stored.pk}/change/").status_code == 200  # read-only, with its results
    admin_client.post(ADMIN, {"action": "promote:content", "_selected_action": [stored.pk]})
    assert (Experiment.objects.get().status, Experiment.objects.get().promoted_variant) == ("stopped", "content")
    assert current_weights()["content_based"] == 1.0


def test_admin_actions_show_refusals_as_messages(admin_client):
    running = _running("one")
    draft = Experiment.objects.create(name="two", variants=running.variants)
    response = admin_client.post(ADMIN, {"action": "start", "_selected_action": [draft.pk]}, follow=True)
    assert response.status_code == 200
    assert "&#x27;one&#x27; (id" in response.content.decode()
    response = admin_client.post(ADMIN, {"action": "stop", "_selected_action": [draft.pk]}, follow=True)
    assert "only a running one can be stopped" in response.content.decode()
    assert Experiment.objects.get(pk=draft.pk).status == "draft"
