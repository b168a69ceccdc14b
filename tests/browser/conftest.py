"""Headless Chromium from Debian (/usr/bin/chromium) driven by Playwright's sync API against pytest-django's
live server. No test-tool browser download: CI installs the distribution's package (see .ci/run)."""
import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect, sync_playwright

from ml.models import ModelVersion
from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
# Actions and assertions wait for their condition. A busy machine can take several seconds to load the models
# and serve a page, so every wait is bounded generously instead of by Playwright's defaults (5 s for an
# assertion, 30 s for an action).
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)

# No network, no background services, no GPU: a quiet, repeatable browser in a container.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(autouse=True)
def chromium() -> Path:
    """Debian's Chromium; its absence fails the run in CI (CI=true) and skips the test elsewhere.

    Autouse, so that the check comes before any costly data fixture."""
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing; install Debian's browser with `apt-get install -y chromium`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def live_server_settings(settings):
    """The live server speaks plain HTTP, so the session and CSRF cookies must not be marked secure."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def page(chromium, live_server_settings):
    """A fresh 1400x900 tab.

    Playwright's sync API keeps an asyncio loop running in this thread while the browser is open, so
    Django takes the thread for async code and refuses ORM calls (SynchronousOnlyOperation); forcing them
    through with DJANGO_ALLOW_ASYNC_UNSAFE would open a second, never-closed connection in the loop's
    context. So tests write and read their data in fixtures requested before this one.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.set_default_timeout(WAIT_MS)
            yield tab
        finally:
            browser.close()


@pytest.fixture
def screenshots(tmp_path, capsys) -> Path:
    """Where screenshots go: $BROWSER_SCREENSHOTS, else the test's temporary directory (printed either way)."""
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    with capsys.disabled():
        print(f"\nbrowser screenshots: {folder}")
    return folder


@pytest.fixture
def trained_world(settings, tmp_path):
    """A small world trained with every algorithm (the Two-Tower for two epochs), written before the browser
    starts; its run keeps a held-out split."""
    settings.MODEL_DIR = tmp_path / "models"
    settings.TWO_TOWER_MAX_EPOCHS = 2
    call_command("seed_demo", users=70, startups=16, positions=48, interactions=1400, seed=5, verbosity=0)
    call_command("train_models", stdout=StringIO())
    assert ModelVersion.objects.filter(status="active").count() == 5, "every algorithm should be serving"


def log_in(page, live_server, user, next_url: str) -> None:
    """Through admin's log-in form (the staff pages use it), landing on ``next_url``."""
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
