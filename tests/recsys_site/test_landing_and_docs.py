"""What a newcomer meets first: the landing page at /, admin's way back to it and to the staff pages, the API's
root, and the API docs (Swagger UI and ReDoc) loading nothing from outside the service."""
import re

import pytest
from django.contrib import admin
from django.contrib.staticfiles import finders

from tests.factories import PASSWORD, DeveloperFactory, StaffUserFactory

ATTRIBUTE_URLS = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def linked(html: str) -> list[str]:
    return ATTRIBUTE_URLS.findall(html)


@pytest.mark.django_db
def test_the_landing_page_links_the_staff_pages_admin_docs_and_health(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    links = linked(response.content.decode())
    for where in ("/staff/", "/admin/", "/api/docs/", "/api/redoc/", "/api/v1/schema/", "/api/v1/health"):
        assert where in links, where
    assert not [url for url in links if "//" in url], "the landing page loads nothing from elsewhere"


@pytest.mark.django_db
def test_the_landing_page_says_who_is_signed_in(client):
    staff = StaffUserFactory()
    client.login(username=staff.username, password=PASSWORD)

    page = client.get("/").content.decode()

    assert f"Signed in as <strong>{staff.username}</strong> (staff)" in page


@pytest.mark.django_db
def test_admin_view_site_is_the_landing_page_and_admin_links_the_staff_pages(client):
    staff = StaffUserFactory()
    client.login(username=staff.username, password=PASSWORD)

    page = client.get("/admin/").content.decode()

    assert admin.site.site_url == "/"
    assert '<a href="/">View site</a>' in page
    assert '<a href="/staff/">Staff pages</a>' in page
    assert "Startup ecosystem recommendations: admin" in page


@pytest.mark.django_db
def test_admin_pages_below_the_index_keep_the_link_to_the_staff_pages(client):
    staff = StaffUserFactory(is_superuser=True)
    client.login(username=staff.username, password=PASSWORD)

    page = client.get("/admin/profiles/startup/").content.decode()

    assert '<a href="/staff/">Staff pages</a>' in page


@pytest.mark.django_db
def test_the_api_root_says_where_the_docs_schema_and_health_are_without_credentials(api_client):
    response = api_client.get("/api/v1/")

    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "http://testserver/api/docs/"
    assert body["redoc"] == "http://testserver/api/redoc/"
    assert body["schema"] == "http://testserver/api/v1/schema/"
    assert body["health"] == "http://testserver/api/v1/health"
    assert body["contract"] == "docs/api.md"


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_load_only_the_services_own_static_files(client, page):
    response = client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    assets = [url for url in linked(html) if not url.startswith("/api/")]
    assert assets, html
    for url in assets:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file of this project"
    assert "cdn." not in html and "googleapis" not in html and "https://" not in html


@pytest.mark.django_db
def test_swagger_ui_asks_no_public_validator(client):
    html = client.get("/api/docs/").content.decode()

    assert '"validatorUrl": null' in html


@pytest.mark.django_db
def test_the_landing_page_and_docs_need_no_log_in_but_the_api_does(client):
    developer = DeveloperFactory()

    assert client.get("/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert client.get(f"/api/v1/developers/{developer.user_id}/").status_code == 401
