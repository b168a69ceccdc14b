"""The staff pages at /staff/ on the package's small trained world: who may see them, finding a user, a
user's recommendations beside their profile and history, trying and saving weights, and training runs
with their plots and the "retrain now" button."""
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.template.defaultfilters import floatformat
from django.utils import timezone

from ml import evaluation
from ml.models import BLENDED, HybridWeights, TrainingRun
from ml.platform_data import user_records
from ml.selectors import current_weights
from profiles.models import Developer, Founder, Interaction, Investor, Position, Skill

SEARCH = "/staff/"
RUNS = "/staff/training-runs/"
RETRAIN = "/staff/training-runs/retrain/"
METRICS_PLOT = "/staff/training-runs/metrics.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def user_page(user_id) -> str:
    return f"/staff/users/{user_id}/"


def weights_page(user_id) -> str:
    return f"/staff/users/{user_id}/weights/"


def loss_plot(run_id) -> str:
    return f"/staff/training-runs/{run_id}/loss.png"


@pytest.fixture
def staff(world, client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def subject(world):
    """A developer with interactions, known to every model."""
    return Developer.objects.get(pk=world.developer_id).user


def shown_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def no_weights_saved() -> bool:
    """No request changed the weights: every change a request makes names who made it; the world's own
    set-up (whatever weights it pins) names no one."""
    return not HybridWeights.objects.filter(changed_by__isnull=False).exists()


def weights_form(**given: str) -> dict[str, str]:
    """The weights form as a browser sends it: every weight's field, "0" unless given."""
    return {name: given.get(name, "0") for name in BLENDED}


def tuned_weights(run: TrainingRun) -> dict[str, float]:
    """What tuned mode serves: the run's tuned weights over every algorithm, summing to 1."""
    total = sum(run.tuned["weights"].values())
    return {name: run.tuned["weights"].get(name, 0.0) / total for name in BLENDED}


# ---------------------------------------------------------------- staff only


def every_page(world) -> list[str]:
    return [SEARCH, f"{SEARCH}?q=a", user_page(world.developer_id), weights_page(world.developer_id), RUNS,
            loss_plot(world.run.pk), METRICS_PLOT]


def test_anonymous_visitors_are_sent_to_the_admin_login(world, client):
    for url in [*every_page(world), RETRAIN]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/?next="), url


def test_users_who_are_not_staff_are_refused(world, client, subject):
    client.force_login(subject)
    for url in every_page(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
    assert client.post(RETRAIN, {"algorithms": ["content_based"]}).status_code == 302
    assert client.post(weights_page(subject.pk), {"content_based": 1, "collaborative": 0, "two_tower": 0}
                       ).status_code == 302
    assert not TrainingRun.objects.filter(trigger="admin").exists()
    assert no_weights_saved()


# ---------------------------------------------------------------- finding a user


@pytest.mark.parametrize("query", ["username", "email", "id"])
def test_search_finds_a_user_by_username_email_or_id(staff, subject, query):
    term = {"username": subject.username[1:-1].upper(), "email": subject.email, "id": str(subject.pk)}[query]
    response = staff.get(SEARCH, {"q": term})
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="{user_page(subject.pk)}"' in page
    assert "developer" in page


@pytest.mark.parametrize("query", ["no-such-person", "99999999999999999999999999", "²", "%", "x" * 151])
def test_searches_that_match_nobody_or_are_odd_say_so(staff, query):
    response = staff.get(SEARCH, {"q": query})
    assert response.status_code == 200
    page = response.content.decode()
    assert "No user matches" in page or "at most 150 characters" in page


# ---------------------------------------------------------------- a user's page


def test_a_users_page_shows_recommendations_with_scores_reasons_and_fallback_beside_profile_and_history(
        staff, subject):
    response = staff.get(user_page(subject.pk))
    assert response.status_code == 200
    answer = response.context["answer"]
    assert answer.fallback == "none"
    assert answer.algorithms_used == [name for name, weight in current_weights().items() if weight > 0]
    assert answer.results and all(item.reasons for item in answer.results)
    page = response.content.decode()
    first = answer.results[0]
    for text in ["Fallback taken", "every serving algorithm", first.title, first.reasons[0], f"{first.score:.3f}",
                 f"{first.scores['two_tower']:.3f}", "Two-Tower"]:
        assert text in page, text
    skills = ", ".join(subject.developer.skills.values_list("name", flat=True))
    assert skills and skills in page
    latest = Interaction.objects.filter(user=subject).first()
    assert latest.get_kind_display() in page
    assert response.context["events"][0].item_id == latest.item_id
    assert response.context["events"][0].title in page


@pytest.mark.parametrize(("profile", "fact", "item_types"), [
    (Founder, "Startups", {"developer", "investor"}),
    (Investor, "Check size", {"startup"}),
])
def test_founders_and_investors_pages_show_their_profile_and_what_they_are_recommended(
        staff, world, profile, fact, item_types):
    role = profile.__name__.lower()
    # the world's investor has seen every raising startup its checks fit: some left to recommend
    Interaction.objects.filter(user_id=getattr(world, f"{role}_id"), startup__isnull=False).delete()
    response = staff.get(user_page(getattr(world, f"{role}_id")))
    assert response.status_code == 200
    assert dict(response.context["facts"])[fact] != "—"
    assert f'<span class="badge {role}">{role}</span>' in response.content.decode()
    results = response.context["answer"].results
    assert results and {item.item_type for item in results} <= item_types


def test_a_user_with_no_interactions_is_shown_the_cold_start_path(staff, subject):
    Interaction.objects.filter(user=subject).delete()
    response = staff.get(user_page(subject.pk))
    assert response.context["answer"].fallback == "cold_start"
    assert "No interactions yet." in response.content.decode()


def test_a_user_without_a_profile_gets_an_explanation_not_an_error(staff, staff_user):
    response = staff.get(user_page(staff_user.pk))
    assert response.status_code == 200
    assert "has no developer, founder or investor profile" in response.content.decode()
    assert staff.get(weights_page(staff_user.pk)).status_code == 200


@pytest.mark.parametrize("user_id", ["987654321", "0", "abc", "-1", "1.5", "99999999999999999999999"])
def test_unknown_or_malformed_user_ids_are_404(staff, user_id):
    for url in (f"/staff/users/{user_id}/", f"/staff/users/{user_id}/weights/"):
        assert staff.get(url).status_code == 404, url


# ---------------------------------------------------------------- trying and saving weights


def test_trial_weights_show_both_lists_side_by_side_and_save_nothing(staff, subject, world):
    response = staff.get(weights_page(subject.pk), weights_form(content_based="1"))
    assert response.status_code == 200
    current, trial = response.context["current"], response.context["trial"]
    assert current.weights == pytest.approx(current_weights(), abs=1e-4)
    assert trial.algorithms_used == ["content_based"]
    assert trial.weights == {"content_based": 1.0, "collaborative": 0.0, "two_tower": 0.0, "ease": 0.0,
                             "rp3beta": 0.0, "popularity": 0.0}
    assert [r.item_id for r in current.results] != [r.item_id for r in trial.results]
    page = response.content.decode()
    assert "With the saved weights" in page and "With the trial weights" in page
    assert "Save these weights for everyone" in page
    assert no_weights_saved()


def test_saving_weights_records_them_normalised_with_who_changed_them(staff, subject, staff_user):
    response = staff.post(weights_page(subject.pk), weights_form(content_based="2", collaborative="1", two_tower="1"))
    assert response.status_code == 302 and response["Location"] == weights_page(subject.pk)
    saved = HybridWeights.objects.latest()
    assert saved.changed_by == staff_user and saved.mode == "manual"
    assert saved.as_dict() == {"content_based": 0.5, "collaborative": 0.25, "two_tower": 0.25, "ease": 0.0,
                               "rp3beta": 0.0, "popularity": 0.0}
    assert any(message.startswith("Saved: content_based 0.50") for message in shown_messages(response))
    assert staff.get(weights_page(subject.pk)).context["current"].weights["content_based"] == pytest.approx(0.5)


@pytest.mark.parametrize(("weights", "error"), [
    (weights_form(), "At least one weight must be greater than 0"),
    (weights_form(content_based="-1", collaborative="1"), "greater than or equal to 0"),
    (weights_form(content_based="lots", collaborative="1"), "Enter a number"),
    (weights_form(content_based="nan", collaborative="1"), "Enter a number"),
    (weights_form(content_based="inf", collaborative="1"), "Enter a number"),
    (weights_form(content_based="1e400", collaborative="1"), "Enter a number"),
    ({"collaborative": "1", "two_tower": "1"}, "This field is required"),
])
def test_bad_weights_show_the_error_and_change_nothing(staff, subject, weights, error):
    for response in (staff.get(weights_page(subject.pk), weights), staff.post(weights_page(subject.pk), weights)):
        assert response.status_code == 200
        assert error in response.content.decode()
        assert response.context["trial"] is None
    assert no_weights_saved()


def test_trial_weights_are_measured_beside_those_in_force_before_anything_is_saved(staff, subject, measured_run):
    response = staff.get(weights_page(subject.pk), weights_form(content_based="1"))
    assert response.status_code == 200
    measured = evaluation.evaluate_weights({"content_based": 1})
    assert response.context["what_if"]["measured"] == measured
    page = " ".join(response.content.decode().split())
    assert "What-if: these weights beside those in force" in page and "Nothing has been saved" in page
    every = measured["proposed"]["all"], measured["current"]["all"]
    ndcg = [floatformat(group["ndcg"], 3) for group in every]  # as the page rounds: 0.2835 is 0.284
    assert f'<td>all users</td><td>{every[0]["users"]}</td> <td class="first">{ndcg[0]}</td> <td>{ndcg[1]}</td>' in page
    for group in [*measured["proposed"]["by_role"], *measured["proposed"]["by_segment"]]:
        assert f"<td>{group}</td>" in page
    assert no_weights_saved()


def test_the_what_if_says_when_no_run_has_a_held_out_split_and_the_trial_still_works(staff, subject, world):
    TrainingRun.objects.update(served=None)
    response = staff.get(weights_page(subject.pk), weights_form(content_based="1"))
    assert response.status_code == 200
    assert "No what-if: No training run has a held-out split to evaluate weights on yet" in response.content.decode()
    assert response.context["trial"].algorithms_used == ["content_based"]


def test_no_what_if_is_measured_before_weights_are_tried_or_for_bad_ones(staff, subject):
    assert staff.get(weights_page(subject.pk)).context["what_if"] is None
    assert staff.get(weights_page(subject.pk), weights_form()).context["what_if"] is None


# ---------------------------------------------------------------- training runs


def test_the_training_runs_page_draws_the_loss_curves_and_the_metrics_of_each_version(staff, world):
    response = staff.get(RUNS)
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<img class="plot" src="{loss_plot(world.run.pk)}"' in page
    assert f'<img class="plot" src="{METRICS_PLOT}"' in page
    assert "succeeded" in page and "Content-based, Collaborative filtering, Two-Tower" in page
    versions = [version for version, _ in response.context["versions"]]
    assert {(v.algorithm, v.version) for v in versions} == set(world.versions.items())
    ndcg = next(v for v in versions if v.algorithm == "collaborative").metrics["ndcg"]
    assert f"{ndcg:.3f}" in page


@pytest.mark.parametrize("url", ["loss", METRICS_PLOT])
def test_the_plots_are_png_images(staff, world, url):
    response = staff.get(loss_plot(world.run.pk) if url == "loss" else url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE) and len(response.content) > 5000


def test_a_run_whose_worker_died_is_shown_failed_not_running(staff, settings):
    dead = TrainingRun.objects.create(algorithms=["two_tower"], status="running", heartbeat_at=timezone.now()
                                      - timedelta(seconds=settings.TRAINING_STALE_AFTER_SECONDS + 5))
    page = staff.get(RUNS).content.decode()
    dead.refresh_from_db()
    assert dead.status == "failed" and "heartbeat" in page


def test_a_run_without_losses_has_no_plot_and_the_page_says_so(staff, world):
    TrainingRun.objects.update(progress={})
    assert staff.get(loss_plot(world.run.pk)).status_code == 404
    assert staff.get(loss_plot(987654321)).status_code == 404
    assert staff.get(loss_plot(99999999999999999999999)).status_code == 404
    assert "No run has recorded per-epoch losses yet" in staff.get(RUNS).content.decode()


@pytest.fixture
def in_process_tasks(settings):
    """No broker configured: retraining runs inside the request, so the test sees how the run ended."""
    settings.CELERY_BROKER_URL = None


def test_retrain_now_trains_and_reports_the_run(staff, staff_user, in_process_tasks):
    # Inside the test's transaction a thread could not see the run: it trains before the answer (ml.tasks);
    # tests/recommendations/test_training_progress.py follows one trained on a thread, as the demo does.
    response = staff.post(RETRAIN, {"algorithms": ["content_based"]})
    assert response.status_code == 302 and response["Location"] == RUNS
    run = TrainingRun.objects.get(trigger="admin")
    assert run.requested_by == staff_user and run.force_retrain and run.algorithms == ["content_based"]
    assert run.status == "succeeded", run.error
    assert shown_messages(response) == [f"Training run {run.pk} (Content-based) succeeded."]


def test_retrain_while_a_run_is_in_flight_says_which_and_queues_nothing(staff):
    running = TrainingRun.objects.create(algorithms=["collaborative"], status="running", trigger="api")
    response = staff.post(RETRAIN, {"algorithms": ["content_based"]}, follow=True)
    assert f"Training run {running.pk} is already running." in response.content.decode()
    assert TrainingRun.objects.count() == 2  # the world's run and the running one


def test_retrain_with_the_broker_down_says_so(staff, broker_down):
    response = staff.post(RETRAIN, {"algorithms": ["content_based"]}, follow=True)
    assert "The task broker is unreachable" in response.content.decode()
    assert TrainingRun.objects.get(trigger="admin").status == "failed"


@pytest.mark.parametrize("algorithms", [[], ["popularity"]])
def test_retrain_with_no_or_unknown_algorithms_says_so(staff, algorithms):
    response = staff.post(RETRAIN, {"algorithms": algorithms}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Choose at least one algorithm" in page or "is not one of the available choices" in page
    assert not TrainingRun.objects.filter(trigger="admin").exists()


def test_retrain_only_answers_post(staff):
    assert staff.get(RETRAIN).status_code == 405


# ---------------------------------------------------------------- items and reasons as the profile reads them


def skill_counts(results) -> list[tuple[int, int, str]]:
    """(matched, declared, whose) of each skill reason: "Matches 2 of your 7 skills", or a founder's "Matches 2
    of the 31 skills you and your startups list"."""
    found = [re.match(r"Matches (\d+) of (your|the) (\d+) skills( you and your startups list)?:", reason)
             for item in results for reason in item.reasons]
    return [(int(m[1]), int(m[3]), "founder" if m[4] else "own") for m in found if m]


def counted(fact: str) -> tuple[int, list[str]]:
    """A profile row that gives a count, "3: a, b, c", as (3, ["a", "b", "c"])."""
    count, _, listed = fact.partition(": ")
    return int(count), listed.split(", ")


def test_a_position_is_shown_with_its_startup_on_the_users_page_and_the_weights_page(staff, subject):
    startup_of = dict(Position.objects.values_list("pk", "startup__name"))
    response = staff.get(user_page(subject.pk))
    positions = [item for item in response.context["answer"].results if item.item_type == "position"]
    assert positions, "the developer should be recommended positions"
    page = response.content.decode()
    for item in positions:
        assert f'{item.title}</strong> <span class="startup">at {startup_of[item.item_id]}</span>' in page
    assert {row.startup for row in response.context["items"] if row.item.item_type != "position"} <= {""}

    trial = staff.get(weights_page(subject.pk), weights_form(content_based="1"))
    shown = [*trial.context["current"].results, *trial.context["trial"].results]
    assert any(item.item_type == "position" for item in shown)
    page = trial.content.decode()
    for item in shown:
        if item.item_type == "position":
            assert f'{item.title}</strong> <span class="startup">at {startup_of[item.item_id]}</span>' in page


def test_a_founders_skill_reasons_count_the_matched_on_row_and_say_whose_skills_those_are(staff, world):
    founder = Founder.objects.get(pk=world.founder_id)
    # what the engine matches a founder on: their skills and those their startups and open positions ask for
    matched_on = sorted(user_records([founder.pk], role="founder")[founder.pk]["skills"])
    assert founder.skills.count() < len(matched_on), "the world's founder should need skills they lack"
    response = staff.get(user_page(founder.pk))
    # the reason says whose skills it counts (it said "of your 31 skills" beside a "Skills" row of 6)
    counts = skill_counts(response.context["answer"].results)
    assert counts and all(whose == "founder" and declared == len(matched_on) for _, declared, whose in counts)
    facts = dict(response.context["facts"])
    assert counted(facts["Skills"])[0] == founder.skills.count()
    assert counted(facts["Matched on: skills"]) == (
        len(matched_on), matched_on)
    for item in response.context["answer"].results:
        for reason in item.reasons:
            if reason.startswith("Matches "):
                named = reason.split(": ", 1)[1].removesuffix(", ...").split(", ")
                assert set(named) <= set(matched_on), reason


def test_a_founders_stage_and_industry_reasons_are_their_startups_as_the_profile_lists_them(staff, world):
    # the first founder recommended investors with a stage reason (the world's own founder gets developers)
    for founder_id in Founder.objects.order_by("pk").values_list("pk", flat=True):
        response = staff.get(user_page(founder_id))
        reasons = [reason for item in response.context["answer"].results for reason in item.reasons]
        # investor wording ("A stage you invest in", "Fits your check size") is not a founder's
        assert not [r for r in reasons if r.startswith(("A stage you invest in", "Fits your check size"))]
        if any(r.startswith("Invests at your startups' stage: ") for r in reasons):
            break
    else:
        pytest.fail("no founder was given a stage reason")
    facts = dict(response.context["facts"])
    rows = {"Invests at your startups' stage: ": "Matched on: stages",
            "In your startups' industry: ": "Matched on: industries"}
    for reason in reasons:
        for start, row in rows.items():
            if reason.startswith(start):
                named = reason.removeprefix(start).removesuffix(", ...").split(", ")
                assert set(named) <= set(facts[row].split(", ")), (reason, facts[row])
    assert any(r.startswith("Checks that fit your raising round: ") for r in reasons)
    assert facts["Matched on: checks"].endswith(" USD")
    assert "the checks their raising rounds take" in response.content.decode()


def test_a_skill_added_since_training_is_counted_by_the_reasons_as_the_profile_counts_it(staff, subject):
    # a skill no model has seen: the content model's vocabulary lacks it, and its reasons counted only the
    # skills the vocabulary knew ("of your 5 skills" beside a profile of 6)
    subject.developer.skills.add(Skill.objects.create(name="a skill no model has seen"))
    skills = subject.developer.skills.count()
    response = staff.get(user_page(subject.pk))
    counts = skill_counts(response.context["answer"].results)
    assert counts and all(whose == "own" and matched < declared == skills for matched, declared, whose in counts)
    count, listed = counted(dict(response.context["facts"])["Skills"])
    assert count == skills and "a skill no model has seen" in listed


def test_the_users_page_heads_each_score_column_it_shows_and_only_those_an_answer_has(staff, subject):
    # the table headed three algorithms (content, collaborative, Two-Tower) above all seven scores, most of
    # them empty: now a column for each score some item has, under its own heading
    response = staff.get(user_page(subject.pk))
    results = response.context["answer"].results
    has = [name for name in results[0].scores if any(item.scores[name] is not None for item in results)]
    assert [name for name, _ in response.context["score_columns"]] == has
    assert "ease" not in has and {"content_based", "collaborative", "two_tower"} <= set(has)  # the world's three
    page = response.content.decode()
    head = page[page.index('<thead><tr><th class="num">#</th><th>Item and reasons</th>'):]
    head = head[:head.index("</thead>")]
    assert head.count("</th>") == 3 + len(has)
    for label in ("Content", "Collab.", "Two-Tower"):
        assert f'<th class="num">{label}</th>' in head
    for row in response.context["items"]:
        assert row.scores == [row.item.scores[name] for name in has]
