"""docs/api.md, the API's contract, lists every endpoint there is: its table ("Every endpoint") holds the same
paths as the URLconf under /api/, and for the operations in the OpenAPI schema the same methods. An endpoint
added, removed or given another method fails here until the page says so; the code cites the page."""
import re
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "api.md"
# A row of the table: | GET, POST | `/api/v1/startups/` | who | what |
ROW = re.compile(r"^\| (?P<methods>[A-Z]+(?:, [A-Z]+)*) \| `(?P<path>/[^`]*)` \|", re.MULTILINE)
# The modules that say they follow the contract: each cites this page.
CITING = ["profiles/apis.py", "profiles/permissions.py", "profiles/models.py", "tests/profiles/test_accept.py",
          "ml/platform_data.py", "recommendations/serializers.py", "recommendations/apis.py",
          "recommendations/similar.py", "recommendations/models.py"]


def documented() -> dict[str, set[str]]:
    rows = {match["path"]: set(match["methods"].split(", ")) for match in ROW.finditer(DOC.read_text())}
    assert rows, f"no endpoint table in {DOC}"
    return rows


def url_paths(patterns=None, prefix: str = "/") -> set[str]:
    """Every path the URLconf routes, parameters written as the schema writes them ({name})."""
    paths = set()
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        here = prefix + _route(entry)
        if isinstance(entry, URLResolver):
            paths |= url_paths(entry.url_patterns, here)
        elif isinstance(entry, URLPattern):
            paths.add(here)
    return paths


def _route(entry) -> str:
    """A path() route or a router's regex, as the schema writes the path: `<int:run_id>` and `(?P<user_id>[^/]+)`
    become `{run_id}` and `{user_id}`, a router's `pk` is `{id}`, and its optional trailing slash a slash."""
    text = str(entry.pattern)
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)  # named regex groups (a router's)
    text = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)  # path converters
    return text.removeprefix("^").removesuffix("$").replace("/?", "/").replace("{pk}", "{id}")


def api_paths() -> set[str]:
    return {path for path in url_paths() if path.startswith("/api/")}


def schema_operations() -> dict[str, set[str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {path: {method.upper() for method in operations if method != "parameters"}
            for path, operations in schema["paths"].items()}


def test_every_path_under_api_in_the_urlconf_is_documented_and_nothing_else():
    paths = api_paths()
    assert "/api/v1/models/training-runs/{run_id}" in paths and "/api/v1/developers/{user_id}/" in paths  # the walk

    assert paths - set(documented()) == set(), "routed under /api/ but missing from docs/api.md"
    assert set(documented()) - paths == set(), "in docs/api.md but routed nowhere"


@pytest.mark.django_db
def test_every_operation_of_the_schema_is_documented_with_its_methods():
    operations = schema_operations()
    rows = documented()

    assert {path: rows.get(path) for path in operations} == operations


def test_the_code_cites_the_contract_in_the_repository():
    for module in CITING:
        text = (REPO / module).read_text()
        assert "docs/api.md" in text, module
        assert "docs/api-v1.md" not in text, module
