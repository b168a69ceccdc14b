"""A staff member in a real browser reads the online loop: the online metrics page with its rates plotted per
day and variant, the experiments list and a running experiment's results with its plot and winner; and the
what-if of weights, on the staff weights trial and in the admin's Preview, before anything is saved.

The traffic is written with the ORM, from a seeded random stream (clicks fall with rank, a variant clearly
better than the control), so that the numbers asserted are known before the browser starts."""
import math
import random
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone
from playwright.sync_api import expect

from ml import evaluation
from profiles.models import OUTCOME_OF_KIND, Developer, Interaction
from recommendations import experiments, online
from recommendations.models import Experiment, Impression
from tests.browser.conftest import log_in
from tests.factories import PositionFactory, StaffUserFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAYS = 14
EXPERIMENT_DAYS = 10  # the experiment runs over the last ten days; before it, no answer is in an experiment
USERS = 160
ITEMS = 10
ROLES = ("developer", "founder", "investor")
LOOK_KINDS = (("like", 0.3), ("apply", 0.1))  # after a click: the chance of a positive, then of a conversion


def clicked(rng: random.Random, rank: int, appeal: float) -> bool:
    """Position bias: the item at ``rank`` is looked at with chance 1 / log2(rank + 1), then clicked with ``appeal``."""
    return rng.random() < 1 / math.log2(rank + 1) and rng.random() < appeal


def drawn(page) -> dict[str, int]:
    """Each plot's src and its natural width once loaded (0: not drawn)."""
    page.wait_for_load_state("load")
    return dict(page.eval_on_selector_all("img.plot", "images => images.map(i => [i.getAttribute('src'), "
                                                      "i.complete ? i.naturalWidth : 0])"))


@pytest.fixture
def staff_member(db):
    return StaffUserFactory()


@pytest.fixture
def superuser(db):
    """Admin's add form of the weights needs the add permission, which a superuser has."""
    return StaffUserFactory(is_superuser=True)


@pytest.fixture
def traffic(db) -> dict:
    """Fourteen days of answers of ten items to 160 users, and their clicks, likes, applications and dismissals;
    over the last ten, a running experiment whose variant "content_only" is clicked half as much again as
    the control. Returns what the pages should show, read before the browser starts."""
    rng = random.Random(0)
    positions = PositionFactory.create_batch(ITEMS)
    items = [f"position:{position.pk}" for position in positions]
    users = UserFactory.create_batch(USERS)
    now = timezone.now()
    experiment = Experiment.objects.create(
        name="tuned vs content only", status="running", metric="click_rate",
        started_at=now - timedelta(days=EXPERIMENT_DAYS, hours=1),
        variants=[{"name": "content_only", "share": 0.5, "weights": {"content_based": 1.0}}])
    running = experiments.running_experiment()
    impressions, events = [], []
    for day in range(DAYS, 0, -1):
        in_experiment = day <= EXPERIMENT_DAYS
        for n, user in enumerate(users):
            variant = running.variant_for(user.pk) if in_experiment else None
            shown_at = now - timedelta(days=day - 1, hours=rng.uniform(1, 20))
            impression = Impression(user=user, user_type=ROLES[n % 3], created_at=shown_at, fallback="none",
                                    experiment=experiment if in_experiment else None, items=items,
                                    variant=("" if not in_experiment else variant.name if variant else "control"))
            impressions.append(impression)
            appeal = 0.3 if variant else 0.2
            for rank, item in enumerate(items, start=1):
                kinds = []
                if clicked(rng, rank, appeal):
                    kinds = ["view"] + [kind for kind, chance in LOOK_KINDS if rng.random() < chance]
                elif rng.random() < 0.03:
                    kinds = ["dismiss"]
                events += [Interaction(user=user, kind=kind, position_id=int(item.split(":")[1]), rank=rank,
                                       created_at=shown_at + timedelta(minutes=1), impression=impression,
                                       outcome=OUTCOME_OF_KIND[kind]) for kind in kinds]
    Impression.objects.bulk_create(impressions)
    Interaction.objects.bulk_create(events)
    results = experiments.experiment_results(experiment=experiment)
    assert results["winner"] == "content_only", results  # the premise: the simulated variant is clearly better
    today = timezone.now()
    by_role = online.online_metrics(since=today - timedelta(days=30), until=today + timedelta(days=1),
                                    group_by=["role"])
    return {"experiment": experiment, "results": results, "by_role": {g["key"]: g for g in by_role}}


# The data fixtures come before ``page``: no database access while the browser runs (see conftest).
def test_a_staff_member_reads_the_online_metrics_and_an_experiments_results(live_server, traffic, staff_member,
                                                                             screenshots, page):
    log_in(page, live_server, staff_member, "/staff/")
    page.get_by_role("link", name="Online metrics").click()
    expect(page.locator("h1")).to_have_text("Online metrics")
    developers = traffic["by_role"]["developer"]
    row = page.locator("#by-role tr", has_text="developer")
    expect(row).to_contain_text(f"{developers['items_shown']}")
    expect(row).to_contain_text(f"{developers['click_rate'] * 100:.2f}%")
    expect(page.locator("#by-variant")).to_contain_text("tuned vs content only/content_only")
    expect(page.locator("#by-variant")).to_contain_text("outside experiments")
    expect(page.locator("#by-rank tbody tr")).to_have_count(ITEMS)
    plots = drawn(page)
    assert any("/staff/online/rates.png" in src and width > 0 for src, width in plots.items()), plots
    page.screenshot(path=screenshots / "online.png", full_page=True)

    page.get_by_role("link", name="Experiments").click()
    expect(page.locator("h1")).to_have_text("Experiments")
    expect(page.locator(".badge.running")).to_be_visible()
    page.screenshot(path=screenshots / "experiments.png", full_page=True)

    page.get_by_role("link", name="tuned vs content only").click()
    expect(page.locator("h1")).to_contain_text("tuned vs content only")
    expect(page.locator(".verdict")).to_contain_text("Winner on click rate: content_only")
    results = traffic["results"]
    control, variant = results["control"], results["variants"][0]
    expect(page.locator("#primary tr.control")).to_contain_text(str(control["users"]))
    expect(page.locator("#primary tbody tr", has_text="content_only")).to_contain_text(
        f"{variant['rates']['click_rate'] * 100:.2f}%")
    difference = variant["difference_vs_control"]["click_rate"]["difference"]
    expect(page.locator("#results")).to_contain_text(f"{difference * 100:+.2f} pts")
    plots = drawn(page)
    assert any(src.endswith("/results.png") and width > 0 for src, width in plots.items()), plots
    page.screenshot(path=screenshots / "experiment.png", full_page=True)


@pytest.fixture
def what_if(trained_world) -> dict:
    """The subject of the weights trial, and content-only weights measured beside those in force."""
    subject = Developer.objects.annotate(n=Count("user__interactions")).order_by("-n", "pk").first().user
    return {"subject": subject, "measured": evaluation.evaluate_weights({"content_based": 1})}


def test_a_staff_member_sees_the_what_if_of_weights_before_saving_them(live_server, what_if, superuser,
                                                                         screenshots, page):
    proposed = what_if["measured"]["proposed"]["all"]
    log_in(page, live_server, superuser, f"/staff/users/{what_if['subject'].pk}/weights/")
    for name in ("collaborative", "two_tower", "ease", "rp3beta", "popularity"):
        page.fill(f"#id_{name}", "0")
    page.fill("#id_content_based", "1")
    page.get_by_role("button", name="Try these weights").click()
    table = page.locator("table.what-if")
    expect(table.locator("tr", has_text="all users")).to_contain_text(f"{proposed['ndcg']:.3f}")
    expect(table).to_contain_text("heavy")
    expect(page.get_by_text("Nothing has been saved")).to_be_visible()
    page.screenshot(path=screenshots / "weights_what_if.png", full_page=True)

    page.goto(f"{live_server.url}/admin/ml/hybridweights/add/")
    page.select_option("#id_mode", "manual")
    page.fill("#id_content_based", "1")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("table.what-if tr", has_text="all users")).to_contain_text(f"{proposed['ndcg']:.3f}")
    expect(page.locator("#id_content_based")).to_have_value("1")
    page.screenshot(path=screenshots / "admin_preview.png", full_page=True)
