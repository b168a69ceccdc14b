"""A staff member in a real browser presses "Retrain now" in the demo's setting (no broker): the page answers at
once and follows the run as it trains, a bar per algorithm and phase moving forward without the page reloading,
then shows the finished run; admin then pictures the run's and a version's loss curves and metrics, the JSON as
stored folded away. Screenshots of each step go to $BROWSER_SCREENSHOTS (or the test's temporary directory)."""
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import expect

from ml.progress import RunProgress
from tests.browser.conftest import log_in
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRAINING_MS = 600_000  # the whole run, on a busy machine: far more than the demo's seconds
ALGORITHMS = ["content_based", "collaborative", "two_tower"]  # steps, ALS iterations, epochs


@pytest.fixture
def demo_world(settings, tmp_path):
    """The demo's setting: no broker (a run trains on a thread of the server), a small seeded world. Written
    before the browser starts (see conftest); the training thread is waited for before the tables are emptied."""
    settings.CELERY_BROKER_URL = None
    settings.MODEL_DIR = tmp_path / "models"
    settings.TWO_TOWER_MAX_EPOCHS = 30  # its default: epochs enough to watch the bar move
    call_command("seed_demo", users=70, startups=16, positions=48, interactions=1400, seed=5, verbosity=0)
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("training-run-"):
            thread.join(timeout=TRAINING_MS / 1000)


HELD_AT_EPOCH = 3  # the run's first Two-Tower fit waits here until the page has been seen following it


@pytest.fixture
def held_at_an_epoch(monkeypatch):
    """The run waits at the first Two-Tower fit's HELD_AT_EPOCH-th epoch (its progress written) until the test
    lets it go, so the page is seen following a run in flight whatever the machine's speed: a run of the demo's
    size can end between two of the page's polls. Let go at the end in any case."""
    release = threading.Event()
    engine_event = RunProgress.__call__

    def holding(self, event: str, info: dict) -> None:
        engine_event(self, event, info)
        if event == "epoch" and info.get("epoch") == HELD_AT_EPOCH and not release.is_set():
            self._write()
            release.wait(timeout=TRAINING_MS / 1000)

    monkeypatch.setattr(RunProgress, "__call__", holding)
    yield release
    release.set()


@pytest.fixture
def admin_member(db):
    return get_user_model().objects.create_superuser("boss", "boss@example.com", PASSWORD)


def drawn(page, selector: str) -> list[int]:
    """The natural widths of the images ``selector`` finds, once loaded (0: not drawn)."""
    return page.eval_on_selector_all(selector, "images => images.map(i => i.complete ? i.naturalWidth : 0)")


def test_retrain_now_shows_live_progress_then_admin_pictures_the_run(live_server, demo_world, held_at_an_epoch,
                                                                      admin_member, screenshots, page):
    log_in(page, live_server, admin_member, "/staff/training-runs/")
    expect(page.locator("h1")).to_have_text("Training runs")
    for box in page.locator("input[name=algorithms]").all():
        if box.get_attribute("value") not in ALGORITHMS:
            box.uncheck()
    page.get_by_role("button", name="Retrain now").click()

    # Answered at once: the page is back with the run in flight, its card following it.
    expect(page.locator(".messages")).to_contain_text("its progress is below")
    card = page.locator("#live-run")
    expect(card).to_be_visible()
    run_id = card.locator(".run-progress").get_attribute("data-run")
    page.evaluate("window.notReloaded = true")  # gone if the page reloads
    # The Two-Tower's bar moves while the page stays: its epochs counted in the phase it is in, no reload.
    two_tower = card.locator(".phase.running td:nth-child(4) .small", has_text="epoch")
    expect(two_tower).to_be_visible(timeout=TRAINING_MS)
    page.screenshot(path=screenshots / "training_live.png", full_page=True)
    assert page.evaluate("window.notReloaded === true")
    expect(card.locator("th").nth(3)).to_have_text("Two-Tower")
    expect(two_tower).to_contain_text(f"epoch {HELD_AT_EPOCH} of")
    held = page.evaluate("document.querySelector('#live-run .bar.overall').getAttribute('aria-valuenow')")
    held_at_an_epoch.set()  # the run goes on: its share done only grows from here
    shares = [int(held)]
    for _ in range(4):
        share = page.evaluate("document.querySelector('#live-run .bar.overall')?.getAttribute('aria-valuenow')")
        if share is None:  # the run ended and the page reloaded
            break
        shares.append(int(share))
        page.wait_for_timeout(700)
    assert shares and shares == sorted(shares), shares  # the run's share done only grows
    assert shares[0] < 100

    # When the run ends the page reloads once and lists it, succeeded, with its phases and loss curves.
    expect(page.locator("#live-run")).to_have_count(0, timeout=TRAINING_MS)
    expect(page.locator(".badge.succeeded").first).to_be_visible()
    phases = page.locator("details[open] .progress-table")
    expect(phases).to_contain_text("Final fit on all the data")
    expect(phases).to_contain_text("MB")  # each algorithm's peak memory in the final fit
    page.wait_for_load_state("load")
    assert all(width > 0 for width in drawn(page, "img.plot")), drawn(page, "img.plot")
    page.screenshot(path=screenshots / "training_finished.png", full_page=True)

    # Admin: the run's page pictures its progress, losses, metrics and served evaluation; raw JSON folded.
    page.goto(f"{live_server.url}/admin/ml/trainingrun/{run_id}/change/")
    expect(page.get_by_text("Choosing settings on validation").first).to_be_visible()
    pictures = page.locator("img.ml-plot")
    expect(pictures).to_have_count(3)
    assert all(width > 0 for width in drawn(page, "img.ml-plot"))
    raw = page.locator("details summary", has_text="raw JSON").first
    expect(raw).to_be_attached()
    page.screenshot(path=screenshots / "admin_training_run.png", full_page=True)

    # The versions' list has a column per metric; a version's page its metrics beside its others and its losses.
    page.goto(f"{live_server.url}/admin/ml/modelversion/")
    expect(page.locator("th", has_text="NDCG@10")).to_be_visible()
    page.screenshot(path=screenshots / "admin_versions.png", full_page=True)
    page.get_by_role("link", name="Two-Tower").first.click()
    expect(page.locator("img.ml-plot")).to_have_count(2)
    assert all(width > 0 for width in drawn(page, "img.ml-plot"))
    page.screenshot(path=screenshots / "admin_version.png", full_page=True)
