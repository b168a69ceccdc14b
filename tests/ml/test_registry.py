"""The model registry: one active version per algorithm, atomic activation and roll-back, weights."""
import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from ml import selectors, services
from ml.artifacts import write_manifest
from ml.core.registry import DEFAULT_WEIGHTS
from ml.models import HybridWeights, ModelVersion
from recsys_site.exceptions import Conflict, DomainError, NotFound

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_version(collaborative_artifact):
    def make(version: int, status: str = "ready", algorithm: str = "collaborative") -> ModelVersion:
        return ModelVersion.objects.create(algorithm=algorithm, version=version, status=status,
                                           artifact_path=collaborative_artifact)
    return make


def test_a_version_whose_files_are_missing_or_corrupt_is_not_activated(make_version, tmp_path):
    make_version(1, "active")
    (tmp_path / "unverifiable").mkdir()
    (tmp_path / "unverifiable" / "meta.json").write_text("{not json")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "meta.json").write_text("{not json")
    write_manifest(tmp_path / "corrupt")  # its digests match: the file was saved so, and cannot be parsed
    for version, folder in ((2, "gone"), (3, "unverifiable"), (4, "corrupt")):
        ModelVersion.objects.create(algorithm="collaborative", version=version, status="ready",
                                    artifact_path=str(tmp_path / folder))
    with pytest.raises(Conflict, match="v2 was not activated: the collaborative artifact is missing"):
        services.model_version_activate(algorithm="collaborative", version=2)
    with pytest.raises(Conflict, match="v3 was not activated: .*manifest.json is missing"):
        services.model_version_activate(algorithm="collaborative", version=3)
    with pytest.raises(Conflict, match="v4 was not activated: .* cannot be loaded"):
        services.model_version_activate(algorithm="collaborative", version=4)
    assert dict(ModelVersion.objects.values_list("version", "status")) == {1: "active", 2: "ready", 3: "ready",
                                                                           4: "ready"}


def test_the_database_refuses_two_active_versions_of_one_algorithm(make_version):
    make_version(1, "active")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_version(2, "active")
    make_version(3, "active", algorithm="two_tower")


def test_activation_swaps_the_active_version(make_version):
    make_version(1, "active")
    make_version(2)
    services.model_version_activate(algorithm="collaborative", version=2)
    statuses = dict(ModelVersion.objects.values_list("version", "status"))
    assert statuses == {1: "ready", 2: "active"}


def test_activating_a_failed_or_missing_version_is_refused_and_changes_nothing(make_version):
    make_version(1, "active")
    make_version(2, "failed")
    with pytest.raises(Conflict, match="failed"):
        services.model_version_activate(algorithm="collaborative", version=2)
    with pytest.raises(NotFound):
        services.model_version_activate(algorithm="collaborative", version=9)
    assert ModelVersion.objects.get(version=1).status == "active"


def test_roll_back_returns_to_the_previously_active_version(make_version):
    make_version(1)
    make_version(2)
    services.model_version_activate(algorithm="collaborative", version=1)
    services.model_version_activate(algorithm="collaborative", version=2)
    assert services.model_version_roll_back(algorithm="collaborative").version == 1
    assert ModelVersion.objects.get(status="active").version == 1


def test_roll_back_without_history_is_a_conflict(make_version):
    make_version(1, "active")
    with pytest.raises(Conflict):
        services.model_version_roll_back(algorithm="collaborative")


HALF_AND_HALF = {"content_based": 0.5, "collaborative": 0.5, "two_tower": 0.0, "ease": 0.0, "rp3beta": 0.0,
                 "popularity": 0.0}


def test_weights_are_normalised_and_kept_with_their_author():
    staff = get_user_model().objects.create_user("staff", is_staff=True)
    assert selectors.current_weights() == {**DEFAULT_WEIGHTS, "ease": 0.0, "rp3beta": 0.0, "popularity": 0.0}
    services.hybrid_weights_set(weights={"content_based": 2, "collaborative": 2}, changed_by=staff)
    assert selectors.current_weights() == HALF_AND_HALF
    assert HybridWeights.objects.get().changed_by == staff


def test_weights_too_large_to_add_up_are_still_normalised():
    services.hybrid_weights_set(weights={"content_based": 1e308, "collaborative": 1e308, "two_tower": 5e-324})
    assert selectors.current_weights() == HALF_AND_HALF


@pytest.mark.parametrize("weights, message", [
    ({"content_based": 0, "collaborative": 0}, "greater than 0"),
    ({"content_based": -1, "collaborative": 2}, "finite number >= 0"),
    ({"content_based": float("nan")}, "finite number >= 0"),
    ({"content_based": "0.5"}, "finite number >= 0"),
    ({"novelty": 1}, "Unknown algorithm"),
])
def test_rejects_bad_weights(weights, message):
    with pytest.raises(DomainError, match=message):
        services.hybrid_weights_set(weights=weights)
    assert not HybridWeights.objects.exists()


def test_the_database_refuses_an_unknown_weights_mode():
    with pytest.raises(IntegrityError), transaction.atomic():
        HybridWeights.objects.create(mode="sometimes")
