"""Measured as served: a training run tunes its weights, measures its set through the API's own ranker on a
time-based holdout, keeps the held-out split for later weights, and the evaluate command prints and plots it.

One seeded demo world (seed 0: the oracle rebuilds it), trained once with every algorithm for the module;
each test runs in its own transaction on top of it.
"""
import json
from io import StringIO

import numpy as np
import pytest
import scipy.sparse as sp
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from ml import evaluation, selectors, services, training
from ml.artifacts import load_version
from ml.models import BLENDED, Algorithm, HybridWeights, ModelVersion, TrainingRun
from ml.serving_set import Diversify
from profiles.models import Industry, Interaction, Skill, Startup

pytestmark = pytest.mark.django_db
M_GROUPS = {"all", "by_role", "by_segment"}
GROUP_METRICS = {"ndcg", "recall", "mutual", "coverage", "diversity", "gini", "users"}


@pytest.fixture(scope="module")
def trained(django_db_setup, django_db_blocker, tmp_path_factory):
    with override_settings(MODEL_DIR=tmp_path_factory.mktemp("models"), TWO_TOWER_MAX_EPOCHS=2):
        with django_db_blocker.unblock():
            call_command("seed_demo", users=80, startups=20, positions=60, interactions=1500,
                         seed=evaluation.DEMO_SEED, verbosity=0)
            run = training.training_run_create(algorithms=list(Algorithm.values), force_retrain=True,
                                               trigger="command")
            run = training.training_run_execute(run_id=run.pk, algorithms=run.algorithms)
            assert run.status == "succeeded", run.error
        yield run
        with django_db_blocker.unblock():
            for model in (ModelVersion, TrainingRun, HybridWeights, Interaction, Startup, Skill):
                model.objects.all().delete()
            get_user_model().objects.all().delete()
            Industry.objects.all().delete()


def test_a_run_stores_the_weights_it_tuned_and_tuned_mode_serves_them(trained):
    assert set(trained.tuned) == {"weights", "by_role", "validation_ndcg", "k", "settings", "failed"}
    assert set(trained.tuned["weights"]) == set(BLENDED) and sum(trained.tuned["weights"].values()) > 0
    assert set(trained.tuned["settings"]) == set(BLENDED)
    total = sum(trained.tuned["weights"].values())
    expected = {name: trained.tuned["weights"][name] / total for name in BLENDED}
    assert selectors.current_weights() == pytest.approx(expected)
    state = selectors.weights_state()
    assert state["mode"] == "tuned" and state["weights"] == pytest.approx(expected)
    assert state["tuned"]["training_run_id"] == trained.pk
    assert state["tuned"]["validation_ndcg"] == trained.tuned["validation_ndcg"] > 0


def test_manual_weights_stay_pinned_until_the_mode_returns_to_tuned(trained):
    staff = get_user_model().objects.create_user("weights-staff", is_staff=True)
    services.hybrid_weights_set(weights={"content_based": 1, "ease": 1}, changed_by=staff)
    pinned = {**dict.fromkeys(BLENDED, 0.0), "content_based": 0.5, "ease": 0.5}
    assert selectors.current_weights() == pinned
    assert selectors.weights_state()["tuned"]["training_run_id"] == trained.pk  # still shown, not in force
    services.hybrid_weights_mode_set(mode="tuned", changed_by=staff)
    assert selectors.current_weights() == selectors.weights_state()["tuned"]["weights"]
    assert [(row["mode"], row["changed_by"]) for row in selectors.weights_state()["history"]] == [
        ("tuned", "weights-staff"), ("manual", "weights-staff")]


def test_a_web_process_serves_the_tuned_weights_of_a_newly_activated_run(trained):
    from recommendations.model_store import serving_models

    assert serving_models().weights == selectors.current_weights()
    in_force = serving_models().weights
    content = ModelVersion.objects.get(training_run=trained, algorithm="content_based")

    def newer_run(version: int, weights: dict) -> None:
        run = TrainingRun.objects.create(algorithms=["content_based"], status="succeeded", in_flight=None,
                                         tuned={"weights": weights, "validation_ndcg": 0.1})
        ModelVersion.objects.create(algorithm="content_based", version=version, status="ready", training_run=run,
                                    artifact_path=content.artifact_path)
        services.model_version_activate(algorithm="content_based", version=version)

    # a run that retrained content alone and tuned it alone would give the other active algorithms nothing
    newer_run(content.version + 1, {"content_based": 1.0})
    assert serving_models().weights == in_force
    newer_run(content.version + 2, {**dict.fromkeys(Algorithm.values, 0.0), "content_based": 1.0})
    assert serving_models().weights == {**dict.fromkeys(BLENDED, 0.0), "content_based": 1.0}


def test_a_run_stores_its_set_measured_as_served_by_role_and_segment_beside_popularity_and_the_oracle(trained):
    served = trained.served
    assert set(served) == {"metrics", "one_sided", "reciprocal_weight", "popularity", "oracle", "weights",
                           "weights_by_role", "holdout", "seconds"}
    for ranking in ("metrics", "one_sided", "popularity", "oracle"):  # seed 0: the demo world's oracle is rebuilt
        metrics = served[ranking]
        assert set(metrics) == M_GROUPS
        assert set(metrics["by_role"]) == {"developer", "investor", "founder"}
        assert set(metrics["by_segment"]) == {"cold", "light", "heavy"}
        assert set(metrics["all"]) == GROUP_METRICS
        assert 0 <= metrics["all"]["ndcg"] <= 1 and 0 < metrics["all"]["coverage"] <= 1
    every = served["metrics"]["all"]["users"]
    assert every == served["holdout"]["users"] > 0
    assert sum(group["users"] for group in served["metrics"]["by_role"].values()) == every
    assert sum(group["users"] for group in served["metrics"]["by_segment"].values()) == every
    assert served["holdout"]["fraction"] == 0.2 and served["holdout"]["events"] > every
    assert served["popularity"]["all"]["users"] == served["oracle"]["all"]["users"] == every
    assert set(served["weights"]) == set(BLENDED) and sum(served["weights"].values()) == pytest.approx(1, 1e-3)


def test_each_version_records_its_component_served_alone(trained):
    for version in ModelVersion.objects.filter(training_run=trained):
        assert version.status == "active"
        assert set(version.metrics) == GROUP_METRICS and version.metrics == trained.metrics[version.algorithm]
        assert load_version(version.algorithm, version.artifact_path).metrics == version.metrics


@pytest.mark.parametrize("reciprocal_weight", [None, 0.0])  # as configured; one-sided (no interest worked out)
def test_the_evaluation_ranks_each_user_exactly_as_the_api_serves_them(trained, settings, reciprocal_weight):
    from recommendations.services import recommendations_for_user

    if reciprocal_weight is not None:
        settings.RECIPROCAL_WEIGHT = reciprocal_weight

    snapshot = evaluation.platform_snapshot()
    data = snapshot.data
    # every user, their rows as they are now, evaluated on every item: the API's view of them
    everything = evaluation.TimeSplit(data, snapshot.events, sp.csr_matrix(np.ones((data.n_users, data.n_items))),
                                      0, 0.0)
    holdout = evaluation.holdout_of(snapshot, everything)
    active = {v.algorithm: load_version(v.algorithm, v.artifact_path)
              for v in ModelVersion.objects.filter(status="active")}
    weights, by_role = selectors.weights_in_force()
    lists = evaluation.served_lists(evaluation.serving_set_of(active, holdout), weights, holdout, by_role=by_role,
                                    reciprocal_weight=reciprocal_weight)
    assert {user.segment for user in holdout.users} >= {"light", "heavy"}
    for user in holdout.users:
        answer = recommendations_for_user(user_id=user.user_id, user_type=user.role, limit=evaluation.K, explain=False)
        served = [f"{r.item_type}:{r.item_id}" for r in answer.results]
        assert [data.item_ids.ids[row] for row in lists[user.user_id]] == served, user
    # investors among them, whose candidates the market narrows (raising rounds their checks fit) on both paths
    investors = [user for user in holdout.users if user.role == "investor"]
    assert any((holdout.allowed_for(user) != holdout.allowed(user.role)).any() for user in investors)
    # and founders some of whose candidates said no to their startups (ml.serving_set.rebuffed_by), on both paths
    assert any(user.user_id in holdout.rebuffs() for user in holdout.users if user.role == "founder")
    # the held-out items are checked against the same, item by item (a million users' whole rows would not do)
    rows = np.arange(data.n_items)[::3]
    for user in holdout.users:
        np.testing.assert_array_equal(holdout.allows(user.user_id, user.role, user.checks, rows),
                                      holdout.allowed_for(user)[rows])


def test_weights_measured_later_on_the_held_out_split_reproduce_the_runs_measure(trained):
    measured = evaluation.evaluate_weights(trained.served["weights"])
    assert measured["proposed"] == trained.served["metrics"]
    assert measured["current"] == trained.served["metrics"]  # tuned mode: the weights tuned for these models
    content_only = evaluation.evaluate_weights({"content_based": 1})
    assert content_only["proposed"] != trained.served["metrics"]
    services.hybrid_weights_set(weights={"content_based": 1})
    assert evaluation.evaluate_weights(trained.served["weights"])["current"] == content_only["proposed"]


def test_evaluating_invalid_weights_is_refused():
    with pytest.raises(services.DomainError, match="Unknown algorithm"):
        evaluation.evaluate_weights({"novelty": 1})


def test_the_evaluate_command_prints_the_table_and_writes_the_plot(trained, tmp_path, monkeypatch):
    _, held_out = evaluation.latest_held_out()
    monkeypatch.setattr(evaluation, "ORACLE_MAX_PAIRS", 4 * len(held_out.holdout.item_ids.ids))
    out = StringIO()
    plot = tmp_path / "plots" / "evaluation.png"
    call_command("evaluate", algorithms="content_based,collaborative", plot=str(plot), stdout=out)
    printed = out.getvalue()
    assert "Holding out each user's latest 20% of events" in printed and "Ranking" in printed
    assert "The oracle ranked a fixed sample of 4 of them" in printed
    header = next(line for line in printed.splitlines() if line.startswith("group"))
    assert header.split() == ["group", "users", "served", "popular", "oracle", "srv/pop", "srv/orc", "recall",
                              "mutual", "coverage", "divers.", "gini"]
    rows = table_rows(printed, header)
    assert set(rows) == {"all", "developer", "investor", "founder", "cold", "light", "heavy"}
    served, popularity, ratio = float(rows["all"][2]), float(rows["all"][3]), float(rows["all"][5])
    assert ratio == pytest.approx(served / popularity, abs=0.01)
    # and the reciprocal ranking beside one-sided ranking, per role: mutual matches and NDCG with their changes
    reciprocal = next(line for line in printed.splitlines() if line.startswith("group") and "mutual 1-sided" in line)
    rows = table_rows(printed, reciprocal)
    assert set(rows) == {"all", "developer", "investor", "founder"}
    one_sided, as_served, change = float(rows["all"][2]), float(rows["all"][3]), rows["all"][4]
    if one_sided:  # printed to 4 places: the change from the printed numbers agrees to their rounding
        assert float(change.rstrip("%")) == pytest.approx(100 * (as_served - one_sided) / one_sided,
                                                          abs=0.1 + 100 * 1e-4 / one_sided)
    else:
        assert change == "-"
    assert plot.read_bytes().startswith(b"\x89PNG")


def table_rows(printed: str, header: str) -> dict[str, list[str]]:
    """{group: its row's fields} of the table under ``header``, up to the next blank line."""
    lines = printed.splitlines()[printed.splitlines().index(header) + 2:]
    rows = {}
    for line in lines:
        if not line.strip():
            break
        rows[line.split()[0]] = line.split()
    return rows


def test_a_world_that_is_not_the_seeded_demo_world_has_no_oracle(trained):
    oracle, why = evaluation.demo_oracle(seed=evaluation.DEMO_SEED + 1)
    assert oracle is None and "not the demo world of seed 1" in why


def test_beyond_its_bound_of_pairs_the_oracle_ranks_a_fixed_sample_of_the_users_as_it_ranks_them_all(trained):
    oracle, _ = evaluation.demo_oracle()
    _, held_out = evaluation.latest_held_out()
    holdout = held_out.holdout
    every = evaluation.oracle_lists(oracle, holdout)
    assert len(every) == len(holdout.users) > 5
    sample = evaluation.oracle_lists(oracle, holdout, max_pairs=5 * len(holdout.item_ids.ids))
    assert len(sample) == 5 and sample.keys() < every.keys()
    assert all(np.array_equal(sample[user], every[user]) for user in sample)
    assert evaluation.oracle_lists(oracle, holdout, max_pairs=5 * len(holdout.item_ids.ids)).keys() == sample.keys()
    assert evaluation.measured(sample, holdout)["all"]["users"] == 5


# ---------------------------------------------------------------- diversity and exposure


def test_beyond_max_users_the_holdout_is_a_fixed_sample_of_the_users_it_could_serve_and_knows_only_theirs(trained):
    snapshot = evaluation.platform_snapshot()
    split = evaluation.time_split(snapshot.data, snapshot.events)
    every = evaluation.holdout_of(snapshot, split)
    assert len(every.users) > 10
    sample = evaluation.holdout_of(snapshot, split, max_users=10)
    assert len(sample.users) == 10 and {u.user_id for u in sample.users} < {u.user_id for u in every.users}
    assert [u.row for u in sample.users] == sorted(u.row for u in sample.users)
    assert [u.user_id for u in evaluation.holdout_of(snapshot, split, max_users=10).users] == [
        u.user_id for u in sample.users]
    rows = [u.row for u in sample.users]
    assert set(np.flatnonzero(np.diff(sample.relevant.indptr))) == set(rows)
    for row in rows:  # each sampled user's relevant and mutual items as when all are evaluated
        assert np.array_equal(sample.relevant[row].indices, every.relevant[row].indices)
        assert np.array_equal(sample.mutual[row].indices, every.mutual[row].indices)


@pytest.mark.parametrize(("diversity", "cap"), [(0.0, None), (0.5, None), (0.3, 1)])
def test_the_evaluation_re_ranks_for_diversity_exactly_as_the_api_does(trained, diversity, cap):
    from recommendations.services import recommendations_for_user

    snapshot = evaluation.platform_snapshot()
    data = snapshot.data
    everything = evaluation.TimeSplit(data, snapshot.events, sp.csr_matrix(np.ones((data.n_users, data.n_items))),
                                      0, 0.0)
    holdout = evaluation.holdout_of(snapshot, everything, max_users=40)
    active = {v.algorithm: load_version(v.algorithm, v.artifact_path)
              for v in ModelVersion.objects.filter(status="active")}
    weights, by_role = selectors.weights_in_force()
    lists = evaluation.served_lists(evaluation.serving_set_of(active, holdout), weights, holdout, by_role=by_role,
                                    diversify=Diversify(diversity, cap))
    for user in holdout.users:
        answer = recommendations_for_user(user_id=user.user_id, user_type=user.role, limit=evaluation.K,
                                          explain=False, diversity=diversity, max_per_startup=cap)
        served = [f"{r.item_type}:{r.item_id}" for r in answer.results]
        assert [data.item_ids.ids[row] for row in lists[user.user_id]] == served, user


def test_exposure_gini_is_measured_per_startup_and_falls_when_each_startup_gets_one_slot(trained):
    _, held_out = evaluation.latest_held_out()
    plain = held_out.measure(trained.served["weights"], diversify=Diversify(0.0, None))
    capped = held_out.measure(trained.served["weights"], diversify=Diversify(0.0, 1))
    assert 0 < plain["by_role"]["developer"]["gini"] < 1
    assert capped["by_role"]["developer"]["gini"] < plain["by_role"]["developer"]["gini"]
    assert plain["by_role"]["founder"]["gini"] is None  # founders are served people, no startup
    assert trained.served["metrics"]["all"]["gini"] is not None


def test_the_evaluate_command_reports_the_gini_at_the_settings_asked(trained, tmp_path):
    out = StringIO()
    call_command("evaluate", "--held-out", "latest", "--diversity", "0.3", "--max-per-startup", "2",
                 "--plot", str(tmp_path / "e.png"), "--json", str(tmp_path / "e.json"), stdout=out)
    printed = out.getvalue()
    assert "Re-ranked with diversity 0.3, max_per_startup 2" in printed
    header = next(line for line in printed.splitlines() if line.startswith("group"))
    assert header.split()[-1] == "gini"
    developers = next(line.split() for line in printed.splitlines() if line.startswith("developer"))
    assert 0 < float(developers[-1]) < 1
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["diversify"] == {"diversity": 0.3, "max_per_startup": 2}
    assert result["metrics"]["by_role"]["developer"]["gini"] == pytest.approx(float(developers[-1]), abs=1e-4)


def test_the_evaluate_command_refuses_a_diversity_outside_zero_to_one(trained):
    with pytest.raises(CommandError, match="diversity"):
        call_command("evaluate", "--held-out", "latest", "--diversity", "1.5")
