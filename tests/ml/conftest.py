import pytest

from ml.artifacts import write_manifest
from ml.core.tuning import default_component
from tests.ml_core.conftest import make_world


@pytest.fixture(scope="session")
def collaborative_artifact(tmp_path_factory) -> str:
    """A real (tiny) collaborative model on disk with its manifest: activation verifies and loads a
    version's files before it switches."""
    path = tmp_path_factory.mktemp("collaborative")
    default_component("collaborative").fit(make_world()).save(path)
    write_manifest(path)
    return str(path)
