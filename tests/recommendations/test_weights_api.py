"""Tuned and manual weights, and the set measured as served, through the API: GET/PUT /models/weights,
POST /models/weights/evaluate, the "served" part of /algorithms/status and "tuned"/"served" of a training run,
on the package's small trained world."""
import pytest

from ml.models import BLENDED, Algorithm, HybridWeights, TrainingRun
from ml.services import hybrid_weights_set
from profiles.models import Developer

from .test_recommendations_api import recommend, user

WEIGHTS = "/api/v1/models/weights"
EVALUATE = "/api/v1/models/weights/evaluate"
STATUS = "/api/v1/algorithms/status"
SCHEMA = "/api/v1/schema/"
GROUP_KEYS = {"ndcg", "recall", "mutual", "coverage", "diversity", "gini", "users"}
ROLES = {"developer", "founder", "investor"}
SEGMENTS = {"cold", "light", "heavy"}


@pytest.fixture
def staff(world, client_for, staff_user):
    return client_for(staff_user)


def tuned_weights(run: TrainingRun) -> dict[str, float]:
    """The run's tuned weights over everything blended (0 for what it did not tune), summing to 1."""
    total = sum(run.tuned["weights"].values())
    return {name: run.tuned["weights"].get(name, 0.0) / total for name in BLENDED}


def assert_is_m(metrics: dict) -> None:
    """``metrics`` has the documented M shape, with every group measured on some users."""
    assert set(metrics) == {"all", "by_role", "by_segment"}
    assert set(metrics["by_role"]) == ROLES and set(metrics["by_segment"]) == SEGMENTS
    for group in [metrics["all"], *metrics["by_role"].values(), *metrics["by_segment"].values()]:
        assert set(group) == GROUP_KEYS
    assert metrics["all"]["users"] > 0 and 0 <= metrics["all"]["ndcg"] <= 1


# ---------------------------------------------------------------- who may


@pytest.mark.parametrize(("method", "url"), [("get", WEIGHTS), ("put", WEIGHTS), ("post", EVALUATE)])
def test_weights_endpoints_are_for_staff_only(world, api_client, client_for, method, url):
    assert getattr(api_client, method)(url, {}, format="json").status_code == 401
    response = getattr(client_for(user(Developer, world.developer_id)), method)(url, {}, format="json")
    assert response.status_code == 403 and "staff" in response.json()["detail"]


# ---------------------------------------------------------------- reading and switching the mode


def test_weights_start_tuned_by_the_training_that_serves(staff, world):
    response = staff.get(WEIGHTS)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"mode", "weights", "tuned", "history"}
    assert body["mode"] == "tuned" and body["history"] == []
    assert body["tuned"]["training_run_id"] == world.run.pk
    assert body["tuned"]["validation_ndcg"] == world.run.tuned["validation_ndcg"]
    assert body["tuned"]["weights"] == pytest.approx(tuned_weights(world.run))
    assert body["weights"] == body["tuned"]["weights"]


def test_a_roles_own_tuned_weights_are_shown_over_everything_blended(staff, world):
    TrainingRun.objects.filter(pk=world.run.pk).update(
        tuned={**world.run.tuned, "by_role": {"founder": {"collaborative": 3, "popularity": 1}}})
    by_role = staff.get(WEIGHTS).json()["tuned"]["by_role"]
    assert by_role == {"founder": {"content_based": 0.0, "collaborative": 0.75, "two_tower": 0.0, "ease": 0.0,
                                   "rp3beta": 0.0, "popularity": 0.25}}


def test_manual_weights_are_pinned_normalised_and_kept_with_who_and_when(staff, staff_user, world, client_for):
    response = staff.put(WEIGHTS, {"weights": {"content_based": 3, "collaborative": 1}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    pinned = {"content_based": 0.75, "collaborative": 0.25, "two_tower": 0.0, "ease": 0.0, "rp3beta": 0.0,
              "popularity": 0.0}
    assert body["mode"] == "manual" and body["weights"] == pinned
    assert body["tuned"]["weights"] == pytest.approx(tuned_weights(world.run))  # still shown beside them
    [change] = body["history"]
    assert change["mode"] == "manual" and change["weights"] == pinned
    assert change["changed_by"] == staff_user.username and change["changed_at"]
    saved = HybridWeights.objects.get()
    assert (saved.mode, saved.as_dict(), saved.changed_by) == ("manual", pinned, staff_user)
    assert staff.get(WEIGHTS).json() == body
    served = recommend(client_for(user(Developer, world.developer_id)), world.developer_id, "developer")
    assert served["weights"] == pinned


def test_mode_tuned_returns_to_the_tuned_weights_and_both_changes_are_history(staff, staff_user, world, client_for):
    staff.put(WEIGHTS, {"weights": {"content_based": 1}}, format="json")
    response = staff.put(WEIGHTS, {"mode": "tuned"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mode"] == "tuned"
    assert body["weights"] == pytest.approx(tuned_weights(world.run))
    assert [change["mode"] for change in body["history"]] == ["tuned", "manual"]  # newest first
    assert body["history"][0]["weights"] == pytest.approx(tuned_weights(world.run))
    assert all(change["changed_by"] == staff_user.username for change in body["history"])
    assert HybridWeights.objects.latest().mode == "tuned"
    served = recommend(client_for(user(Developer, world.developer_id)), world.developer_id, "developer")
    assert served["weights"] == pytest.approx(tuned_weights(world.run), abs=1e-4)


def test_mode_manual_pins_the_weights_in_force(staff, world):
    body = staff.put(WEIGHTS, {"mode": "manual"}, format="json").json()
    assert body["mode"] == "manual"
    assert body["weights"] == pytest.approx(tuned_weights(world.run))
    assert HybridWeights.objects.get().mode == "manual"


@pytest.mark.parametrize("body", [{}, {"weights": {"content_based": 1}, "mode": "tuned"}])
def test_a_body_with_both_or_neither_says_what_is_accepted_and_changes_nothing(staff, body):
    response = staff.put(WEIGHTS, body, format="json")
    assert response.status_code == 400, response.content
    [message] = response.json()["non_field_errors"]
    assert '{"weights": {...}}' in message and '{"mode": "tuned"}' in message
    assert not HybridWeights.objects.exists()


@pytest.mark.parametrize("mode", ["popular", "", None, 1])
def test_an_unknown_mode_is_refused(staff, mode):
    response = staff.put(WEIGHTS, {"mode": mode}, format="json")
    assert response.status_code == 400 and "mode" in response.json()
    assert not HybridWeights.objects.exists()


def test_a_manual_weight_for_an_unknown_algorithm_is_named(staff):
    response = staff.put(WEIGHTS, {"weights": {"random": 1}}, format="json")
    assert response.status_code == 400 and "random" in response.json()["detail"]
    assert not HybridWeights.objects.exists()


# ---------------------------------------------------------------- evaluating weights as served


def test_proposed_weights_are_measured_beside_the_tuned_ones_on_the_latest_holdout(staff, measured_run):
    response = staff.post(EVALUATE, {"weights": {"content_based": 1}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"proposed", "current"}
    assert_is_m(body["proposed"]) and assert_is_m(body["current"])
    # In tuned mode "current" is the run's own served evaluation; content alone ranks differently.
    assert body["current"] == measured_run.served["metrics"]
    assert body["proposed"]["all"]["users"] == measured_run.served["holdout"]["users"]
    assert body["proposed"] != body["current"]
    assert not HybridWeights.objects.exists()  # measuring saves nothing


def test_in_manual_mode_current_is_the_pinned_weights(staff, measured_run):
    pinned = {"content_based": 1, "collaborative": 1}
    hybrid_weights_set(weights=pinned)
    response = staff.post(EVALUATE, {"weights": pinned}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["proposed"] == response.json()["current"]
    other = staff.post(EVALUATE, {"weights": {"collaborative": 1}}, format="json").json()
    assert other["current"] == response.json()["current"] and other["proposed"] != other["current"]


def test_evaluating_before_any_served_evaluation_is_409(staff):
    TrainingRun.objects.update(served=None)
    response = staff.post(EVALUATE, {"weights": {"content_based": 1}}, format="json")
    assert response.status_code == 409
    assert "train" in response.json()["detail"]


@pytest.mark.parametrize(("body", "field"), [
    ({"weights": {"content_based": 0}}, "greater than 0"),
    ({"weights": {"random": 1}}, "random"),
    ({"weights": {"content_based": -1, "collaborative": 1}}, "content_based"),
    ({}, "weights"),
    ({"weights": {"content_based": 1}, "mode": "tuned"}, "mode"),
])
def test_bad_weights_to_evaluate_are_400_naming_what_is_wrong(staff, body, field):
    response = staff.post(EVALUATE, body, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json())


# ---------------------------------------------------------------- status and training runs


def test_status_lists_the_five_algorithms_and_the_served_evaluation_of_the_set_that_serves(staff, world):
    body = staff.get(STATUS).json()
    assert set(body["algorithms"]) == set(Algorithm.values)
    assert body["algorithms"]["ease"]["available"] is False
    assert body["weights"] == pytest.approx(tuned_weights(world.run))
    served = body["served"]
    assert set(served) == {"training_run_id", "metrics", "popularity"}
    assert served["training_run_id"] == world.run.pk
    assert served["metrics"] == world.run.served["metrics"]
    assert served["popularity"] == world.run.served["popularity"]
    assert_is_m(served["metrics"]) and assert_is_m(served["popularity"])


def test_status_served_is_null_before_any_served_evaluation(staff):
    TrainingRun.objects.update(served=None)
    assert staff.get(STATUS).json()["served"] is None


def test_a_training_run_shows_what_it_tuned_and_how_it_measured_as_served(staff, world):
    body = staff.get(f"/api/v1/models/training-runs/{world.run.pk}").json()
    assert body["tuned"]["weights"] == world.run.tuned["weights"]
    assert body["tuned"]["validation_ndcg"] == world.run.tuned["validation_ndcg"]
    assert set(world.run.algorithms) <= set(body["tuned"]["settings"])
    assert body["tuned"]["by_role"] == world.run.tuned["by_role"]
    served = body["served"]
    assert set(served) == {"metrics", "one_sided", "reciprocal_weight", "popularity", "oracle", "weights",
                           "weights_by_role", "holdout", "seconds"}
    assert served == world.run.served
    assert served["oracle"] is None  # seed 5 is not the demo world's seed
    assert body["not_activated"] == ""


def test_a_queued_run_has_no_tuned_weights_or_served_evaluation_yet(staff):
    run = TrainingRun.objects.create(algorithms=["content_based"])
    body = staff.get(f"/api/v1/models/training-runs/{run.pk}").json()
    assert body["tuned"] is None and body["served"] is None


# ---------------------------------------------------------------- the schema


def test_the_schema_describes_the_weights_modes_and_the_served_evaluation(api_client):
    schema = api_client.get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    assert {"get", "put"} <= set(paths["/api/v1/models/weights"])
    evaluate = paths["/api/v1/models/weights/evaluate"]["post"]
    assert {"200", "409"} <= set(evaluate["responses"])
    assert set(components["WeightsState"]["properties"]) == {"mode", "weights", "tuned", "history"}
    assert set(components["WeightsRequest"]["properties"]) == {"weights", "mode"}
    assert set(components["ModeEnum"]["enum"]) == {"tuned", "manual"}
    assert set(components["WeightsEvaluation"]["properties"]) == {"proposed", "current"}
    assert set(components["ServedMetrics"]["properties"]) == {"all", "by_role", "by_segment"}
    assert set(components["ServedMetricsByRole"]["properties"]) == ROLES
    assert set(components["ServedMetricsBySegment"]["properties"]) == SEGMENTS
    assert set(components["GroupMetrics"]["properties"]) == GROUP_KEYS
    assert "served" in components["AlgorithmsStatus"]["properties"]
    assert set(components["ServedStatus"]["properties"]) == {"training_run_id", "metrics", "popularity"}
    assert {"tuned", "served", "not_activated"} <= set(components["TrainingRun"]["properties"])
    assert set(components["BlendWeights"]["properties"]) == set(BLENDED)
    assert components["TunedWeights"]["properties"]["by_role"]["additionalProperties"] == {
        "$ref": "#/components/schemas/BlendWeights"}
    fallbacks = components["FallbackEnum"]["enum"]
    assert {"popular", "no_content", "no_collaborative", "no_ease", "no_rp3beta"} <= set(fallbacks)
