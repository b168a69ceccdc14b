"""The API docs as deployed: production settings (DEBUG off), `collectstatic` run first as the README and the
Dockerfile do, gunicorn with whitenoise serving what it gathered. Swagger UI and ReDoc (drf-spectacular-sidecar)
and the admin's styles come from the service itself, compressed, with nothing from a CDN."""
import os
import re
import subprocess
import sys

import pytest

from tests.live.conftest import _servers
from tests.live.gunicorn import REPO

ASSET = re.compile(r"""(?:src|href)=["'](/static/[^"']+)["']""")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module (its tests only read), over the files collectstatic gathered for it."""
    work = tmp_path_factory.mktemp("static-docs")
    static_root = work / "static"
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "live-test-secret-key-not-for-production",
           "STATIC_ROOT": str(static_root)}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"], cwd=REPO, env=env,
                   check=True, timeout=300)
    assert (static_root / "drf_spectacular_sidecar" / "swagger-ui-dist" / "swagger-ui-bundle.js").is_file()
    with _servers(work) as start:
        yield start(STATIC_ROOT=str(static_root))


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/", "/admin/login/"])
def test_each_page_loads_its_scripts_and_styles_from_the_service(server, page):
    html = server.request("GET", page).text

    assets = ASSET.findall(html)
    assert assets, html[:500]
    assert "https://" not in html and "cdn." not in html
    for url in assets:
        response = server.request("GET", url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, url
        suffix = url[url.rindex("."):]
        if suffix in CONTENT_TYPES:
            assert response.headers["Content-Type"].startswith(CONTENT_TYPES[suffix]), url
        if suffix in {".js", ".css"}:
            assert response.headers.get("Content-Encoding") == "gzip", url  # whitenoise's compressed copy
