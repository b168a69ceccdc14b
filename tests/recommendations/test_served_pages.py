"""The staff pages' side of tuned weights and of the set measured as served, on the package's small trained
world: the mode and the tuned weights beside those in force, "Apply the tuned weights", and the served
evaluation's plot and table on the training-runs page."""
import pytest
from django.template.defaultfilters import floatformat
from django.test import Client

from ml.models import BLENDED, HybridWeights, TrainingRun
from ml.services import hybrid_weights_set
from profiles.models import Developer

from .test_staff_pages import PNG_SIGNATURE, RUNS, shown_messages, tuned_weights, weights_page

APPLY = "/staff/weights/apply-tuned/"


def served_plot(run_id) -> str:
    return f"/staff/training-runs/{run_id}/served.png"


@pytest.fixture
def staff(world, client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def subject(world):
    return Developer.objects.get(pk=world.developer_id).user


@pytest.fixture
def pinned(world):
    """Manual weights pinned before the test: content-based alone."""
    return hybrid_weights_set(weights={"content_based": 1})


# ---------------------------------------------------------------- the mode and the tuned weights


@pytest.mark.parametrize("page", ["runs", "weights"])
def test_both_pages_show_the_tuned_weights_beside_those_in_force_with_the_mode(staff, world, subject, pinned, page):
    response = staff.get(RUNS if page == "runs" else weights_page(subject.pk))
    assert response.status_code == 200
    panel = response.context["weights"]
    assert panel["mode"] == "manual" and panel["manual"]
    rows = {row.algorithm: row for row in panel["rows"]}
    assert set(rows) == set(BLENDED)
    assert rows["content_based"].in_force == 1.0
    assert {name: row.tuned for name, row in rows.items()} == pytest.approx(tuned_weights(world.run))
    html = response.content.decode()
    assert '<span class="badge manual">manual</span>' in html
    ndcg = floatformat(world.run.tuned["validation_ndcg"], 4)  # as the page rounds it: half up
    assert f"Tuned by training run {world.run.pk}: validation NDCG {ndcg}" in html
    assert "Tuned for developers" not in html  # no role had its own weights on this world
    assert f'action="{APPLY}"' in html and "Apply the tuned weights" in html and "csrfmiddlewaretoken" in html


def test_a_role_tuned_on_its_own_gets_its_own_column(staff, world):
    TrainingRun.objects.filter(pk=world.run.pk).update(
        tuned={**world.run.tuned, "by_role": {"founder": {"collaborative": 1}}})
    response = staff.get(RUNS)
    assert response.context["weights"]["roles"] == ["founder"]
    rows = {row.algorithm: row.tuned_by_role for row in response.context["weights"]["rows"]}
    assert rows["collaborative"] == [1.0] and rows["content_based"] == [0.0]
    assert "Tuned for founders" in response.content.decode()


def test_in_tuned_mode_there_is_nothing_to_apply(staff):
    html = staff.get(RUNS).content.decode()
    assert '<span class="badge tuned">tuned</span>' in html
    assert "Apply the tuned weights" not in html


def test_applying_the_tuned_weights_switches_the_mode_and_records_who(staff, staff_user, world, subject, pinned):
    response = staff.post(APPLY, {"next": weights_page(subject.pk)})
    assert response.status_code == 302 and response["Location"] == weights_page(subject.pk)
    latest = HybridWeights.objects.latest()
    assert latest.mode == "tuned" and latest.changed_by == staff_user and latest.pk != pinned.pk
    assert latest.as_dict() == pytest.approx(tuned_weights(world.run))
    assert any(message.startswith("Tuned weights applied") for message in shown_messages(response))
    answer = staff.get(weights_page(subject.pk)).context["current"]
    assert answer.weights == pytest.approx(tuned_weights(world.run), abs=1e-4)


@pytest.mark.parametrize("next_url", ["https://elsewhere.example.com/", "//elsewhere.example.com/", ""])
def test_applying_never_redirects_off_the_site(staff, pinned, next_url):
    response = staff.post(APPLY, {"next": next_url})
    assert response.status_code == 302 and response["Location"] == RUNS


def test_applying_takes_a_post_with_the_csrf_token_from_staff_only(world, staff_user, subject, pinned):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    assert browser.get(APPLY).status_code == 405
    assert browser.post(APPLY).status_code == 403  # no CSRF token
    anyone = Client()
    anyone.force_login(subject)
    assert anyone.post(APPLY).status_code == 302  # to the admin login
    assert HybridWeights.objects.latest().mode == "manual"


# ---------------------------------------------------------------- the served evaluation


def test_the_training_runs_page_plots_and_tabulates_the_latest_served_evaluation(staff, world):
    response = staff.get(RUNS)
    html = response.content.decode()
    assert f'<img class="plot" src="{served_plot(world.run.pk)}"' in html
    assert "no oracle (not the seeded demo world)" in html
    rows = {row.group: row for row in response.context["served_rows"]}
    assert set(rows) == {"all users", "developer", "founder", "investor", "cold", "light", "heavy"}
    served, popularity = world.run.served["metrics"]["all"], world.run.served["popularity"]["all"]
    everyone = rows["all users"]
    assert (everyone.users, everyone.served, everyone.popularity) == (served["users"], served["ndcg"],
                                                                      popularity["ndcg"])
    assert everyone.vs_popularity == pytest.approx(served["ndcg"] / popularity["ndcg"])
    assert everyone.oracle is None and everyone.vs_oracle is None
    assert f"{served['ndcg'] / popularity['ndcg']:.2f}" in html


def test_the_served_table_gives_the_ratio_to_the_oracle_when_there_is_one(staff, world):
    served = world.run.served
    oracle = {**served["metrics"], "all": {**served["metrics"]["all"], "ndcg": served["metrics"]["all"]["ndcg"] * 2}}
    TrainingRun.objects.filter(pk=world.run.pk).update(served={**served, "oracle": oracle})
    response = staff.get(RUNS)
    everyone = response.context["served_rows"][0]
    assert everyone.vs_oracle == pytest.approx(0.5)
    assert "the demo world's oracle (a ceiling)" in response.content.decode()
    assert staff.get(served_plot(world.run.pk)).content.startswith(PNG_SIGNATURE)


def test_the_served_plot_is_a_png_image(staff, world):
    response = staff.get(served_plot(world.run.pk))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE) and len(response.content) > 5000


def test_without_a_served_evaluation_there_is_no_plot_and_the_page_says_so(staff, world):
    TrainingRun.objects.update(served=None)
    for run_id in (world.run.pk, 987654321, 99999999999999999999999):
        assert staff.get(served_plot(run_id)).status_code == 404
    html = staff.get(RUNS).content.decode()
    assert "No training run has been measured as served yet" in html


def test_the_served_plot_is_for_staff_only(world, client, subject):
    assert client.get(served_plot(world.run.pk)).status_code == 302
    client.force_login(subject)
    assert client.get(served_plot(world.run.pk))["Location"].startswith("/admin/login/")
