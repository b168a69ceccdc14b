"""A newcomer in a real browser with no network beyond this service: the landing page and its links, the admin's
way to the staff pages and back, and the API docs, Swagger UI rendering every operation and ReDoc its page, from
the service's own static files. Every request to another host is refused and recorded: none may be made."""
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture
def offline(page) -> list[str]:
    """Refuse every request that leaves this machine, as on a network with no way out; the refused URLs."""
    refused: list[str] = []

    def only_local(route):
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_local)
    return refused


@pytest.fixture
def staff_member(db):
    return StaffUserFactory(is_superuser=True)


# The data fixtures come before ``page``: no database access while the browser runs (see conftest).
def test_the_landing_page_leads_to_the_docs_and_swagger_ui_renders_offline(live_server, staff_member, screenshots,
                                                                           page, offline):
    page.goto(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Startup ecosystem recommendations")
    for name in ("Staff pages", "Admin", "API docs (Swagger UI)", "API docs (ReDoc)", "OpenAPI schema", "Health"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    page.screenshot(path=screenshots / "landing.png", full_page=True)

    page.get_by_role("link", name="Health", exact=True).click()
    expect(page.locator("body")).to_contain_text('"database"')
    page.go_back()

    page.get_by_role("link", name="API docs (Swagger UI)", exact=True).click()
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Startup ecosystem recommendations API")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 60, operations.count()
    recommendations = page.locator(".opblock-post", has_text="/api/v1/recommendations").first
    expect(recommendations).to_be_visible()
    recommendations.locator(".opblock-summary").click()  # expands: the request body's schema is drawn
    expect(recommendations.locator(".opblock-body")).to_contain_text("user_type")
    page.screenshot(path=screenshots / "swagger_ui.png")

    page.goto(f"{live_server.url}/api/redoc/")
    expect(page.locator(".menu-content")).to_contain_text("recommendations")
    expect(page.get_by_role("heading", name="Startup ecosystem recommendations API")).to_be_visible()
    page.screenshot(path=screenshots / "redoc.png")

    assert offline == [], f"requests left the machine: {offline}"


def test_admin_links_the_staff_pages_and_view_site_is_the_landing_page(live_server, staff_member, screenshots,
                                                                       page, offline):
    log_in(page, live_server, staff_member, "/admin/")
    expect(page.locator("#site-name")).to_contain_text("Startup ecosystem recommendations: admin")
    page.screenshot(path=screenshots / "admin.png")

    page.get_by_role("link", name="Staff pages").click()
    expect(page.locator("h1")).to_have_text("Find a user")

    page.go_back()
    page.get_by_role("link", name="View site").click()
    expect(page.locator("h1")).to_have_text("Startup ecosystem recommendations")
    expect(page.locator(".who")).to_contain_text(f"Signed in as {staff_member.username} (staff)")

    assert offline == [], f"requests left the machine: {offline}"
