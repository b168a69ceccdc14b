"""A staff member in a real browser: logs in through the admin form, finds a user, reads their
recommendations, tries and saves weights, and sees the training runs with their plots drawn."""
import re

import pytest
from django.db.models import Count
from playwright.sync_api import expect

from profiles.models import Developer, Founder, Position
from recommendations.staff import recent_events
from tests.browser.conftest import log_in
from tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def subject(trained_world):
    """The developer with the most interactions: every model knows them."""
    return Developer.objects.annotate(n=Count("user__interactions")).order_by("-n", "pk").first().user


@pytest.fixture
def latest_event_title(subject) -> str:
    return recent_events(subject.pk)[0].title


@pytest.fixture
def positions_at_startups(trained_world) -> set[tuple[str, str]]:
    """(title, startup name) of every position: what a recommended position's row may read."""
    return set(Position.objects.values_list("title", "startup__name"))


@pytest.fixture
def founder(trained_world):
    """The founder with the most startups: matched on far more skills than their own."""
    return Founder.objects.annotate(n=Count("startups")).order_by("-n", "pk").first().user


@pytest.fixture
def staff_member(db):
    return StaffUserFactory()


# The data fixtures come before ``page``: no database access while the browser runs (see conftest).
def test_a_staff_member_reads_recommendations_and_training_runs(live_server, subject, latest_event_title,
                                                                positions_at_startups, founder, staff_member,
                                                                screenshots, page):
    log_in(page, live_server, staff_member, "/staff/")
    expect(page.locator("h1")).to_have_text("Find a user")

    page.fill("#id_q", subject.username)
    page.press("#id_q", "Enter")
    page.get_by_role("link", name=subject.username, exact=True).click()
    expect(page.locator("h1")).to_contain_text(subject.username)
    expect(page.locator("h1")).to_contain_text("developer")
    expect(page.get_by_text("Fallback taken")).to_be_visible()
    expect(page.get_by_text("every serving algorithm with a weight above 0")).to_be_visible()
    expect(page.locator(".reasons li").first).to_be_visible()
    expect(page.get_by_text(latest_event_title).first).to_be_visible()
    # a recommended position reads "<title> at <its startup>"
    positions = page.locator("tbody tr").filter(has=page.locator(".badge", has_text=re.compile(r"^position$")))
    expect(positions.first).to_be_visible()
    for n in range(positions.count()):
        row = positions.nth(n)
        expect(row.locator(".startup")).to_be_visible()
        title, startup = row.locator("strong").first.inner_text(), row.locator(".startup").inner_text()
        assert startup.startswith("at ") and (title, startup.removeprefix("at ")) in positions_at_startups
    page.screenshot(path=screenshots / "user.png", full_page=True)

    page.get_by_role("link", name="Try other weights").click()
    for name in ("collaborative", "two_tower", "ease", "rp3beta", "popularity"):
        if page.locator(f"#id_{name}").count():
            page.fill(f"#id_{name}", "0")
    page.fill("#id_content_based", "1")
    page.get_by_role("button", name="Try these weights").click()
    expect(page.get_by_text("With the trial weights")).to_be_visible()
    expect(page.get_by_text("no_two_tower")).to_have_count(0)  # a weight set to 0 is no fallback
    expect(page.locator(".startup").first).to_contain_text(re.compile(r"^at \S"))  # positions there too
    page.screenshot(path=screenshots / "weights.png", full_page=True)
    page.get_by_role("button", name="Save these weights for everyone").click()
    expect(page.locator(".messages")).to_contain_text("Saved: content_based 1.00")
    expect(page.get_by_text("Saved weights now: content_based 1.00")).to_be_visible()

    page.get_by_role("link", name="Training runs").click()
    expect(page.locator("h1")).to_have_text("Training runs")
    expect(page.locator(".badge.succeeded").first).to_be_visible()
    page.wait_for_load_state("load")
    drawn = page.eval_on_selector_all("img.plot", "images => images.map(i => [i.getAttribute('src'), "
                                                  "i.complete ? i.naturalWidth : 0])")
    assert any(src.endswith("/loss.png") and width > 0 for src, width in drawn), drawn
    assert any(src.endswith("/metrics.png") and width > 0 for src, width in drawn), drawn
    page.screenshot(path=screenshots / "training_runs.png", full_page=True)

    # a founder's profile lists what their reasons count, readable beside them
    page.goto(f"{live_server.url}/staff/users/{founder.pk}/")
    expect(page.locator("h1")).to_contain_text("founder")
    matched = page.locator("dl.facts dt", has_text="Matched on: skills").locator("xpath=following-sibling::dd[1]")
    expect(matched).to_be_visible()
    assert matched.bounding_box()["width"] > 150  # not squeezed out by its label
    count = int(matched.inner_text().split(":")[0])
    skill_reasons = [text for text in page.locator(".reasons li").all_inner_texts() if "Matches " in text]
    assert skill_reasons and all(f" of the {count} skills you and your startups list" in text
                                 for text in skill_reasons), (count, skill_reasons)
    page.screenshot(path=screenshots / "founder.png", full_page=True)
