"""Verified artifacts: every version's files are checked against its manifest, and its weights must be
finite, wherever it is loaded (activation by any path, serving)."""
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import call_command

from ml import services
from ml.artifacts import (
    MANIFEST_FILE,
    ArtifactUnreadable,
    load_version,
    rewrite_file,
    verify_manifest,
    write_manifest,
)
from ml.core.collaborative import CollaborativeRecommender
from ml.core.train import TwoTowerRecommender
from ml.core.tuning import default_component
from ml.core.two_tower import TwoTowerConfig
from ml.models import ModelVersion
from recsys_site.exceptions import Conflict
from tests.ml_core.conftest import make_world


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory) -> dict[str, Path]:
    """A tiny fitted model of three kinds (numpy arrays, sparse matrices, torch weights) with manifests."""
    data = make_world()
    two_tower = TwoTowerRecommender(replace(TwoTowerConfig(), epochs=2, batch_size=128, device="cpu"), seed=0)
    models = {"collaborative": default_component("collaborative"), "content_based": default_component(
        "content_based"), "two_tower": two_tower}
    paths = {}
    for name, model in models.items():
        path = tmp_path_factory.mktemp(name)
        model.fit(data).save(path)
        (path / "feature_spec.json").write_text("{}")  # as training writes it beside each version
        write_manifest(path)
        paths[name] = path
    return paths


def copy_of(saved_models, algorithm: str, tmp_path) -> Path:
    return Path(shutil.copytree(saved_models[algorithm], tmp_path / algorithm))


def flip_a_byte(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    path.write_bytes(bytes(data))


def every_file(saved_models) -> list[tuple[str, str]]:
    return [(algorithm, file.name) for algorithm, path in sorted(saved_models.items())
            for file in sorted(path.iterdir()) if file.name != MANIFEST_FILE]


def test_a_sound_artifact_loads_and_its_manifest_lists_every_file(saved_models):
    for algorithm, path in saved_models.items():
        assert load_version(algorithm, str(path)).name == algorithm
        assert set(verify_manifest(path)) == {f.name for f in path.iterdir()} - {MANIFEST_FILE}
    assert "weights.pt" in verify_manifest(saved_models["two_tower"])


def test_a_flipped_byte_in_any_file_is_refused_at_load_naming_the_file(saved_models, tmp_path):
    for algorithm, name in every_file(saved_models):
        path = copy_of(saved_models, algorithm, tmp_path / name)
        flip_a_byte(path / name)
        with pytest.raises(ArtifactUnreadable, match=rf"{name} is damaged"):
            load_version(algorithm, str(path))


@pytest.mark.django_db
def test_a_flipped_byte_in_any_file_is_refused_at_activation(saved_models, tmp_path):
    for number, (algorithm, name) in enumerate(every_file(saved_models), start=1):
        path = copy_of(saved_models, algorithm, tmp_path / name)
        flip_a_byte(path / name, where=0.9)
        ModelVersion.objects.create(algorithm=algorithm, version=number, status="ready", artifact_path=str(path))
        with pytest.raises(Conflict, match=rf"v{number} was not activated: .*{name} is damaged"):
            services.model_version_activate(algorithm=algorithm, version=number)
        assert ModelVersion.objects.get(algorithm=algorithm, version=number).status == "ready"


def test_a_missing_manifest_a_missing_file_and_an_extra_file_are_refused(saved_models, tmp_path):
    path = copy_of(saved_models, "collaborative", tmp_path / "no-manifest")
    (path / MANIFEST_FILE).unlink()
    with pytest.raises(ArtifactUnreadable, match="manifest.json is missing"):
        load_version("collaborative", str(path))
    path = copy_of(saved_models, "collaborative", tmp_path / "missing")
    (path / "feature_spec.json").unlink()
    with pytest.raises(ArtifactUnreadable, match="feature_spec.json is missing"):
        load_version("collaborative", str(path))
    path = copy_of(saved_models, "collaborative", tmp_path / "extra")
    (path / "arrays.npz.orig").write_bytes(b"left behind")
    with pytest.raises(ArtifactUnreadable, match="arrays.npz.orig is not in the manifest"):
        load_version("collaborative", str(path))
    path = copy_of(saved_models, "collaborative", tmp_path / "garbled")
    (path / MANIFEST_FILE).write_text("[1, 2")
    with pytest.raises(ArtifactUnreadable, match="manifest.json is unreadable"):
        load_version("collaborative", str(path))


def test_nan_weights_are_refused_even_with_a_matching_manifest(saved_models, tmp_path):
    model = load_version("collaborative", str(saved_models["collaborative"]))
    model.item_factors = model.item_factors.copy()
    model.item_factors[3, 1] = np.nan
    model.save(tmp_path / "collaborative")
    write_manifest(tmp_path / "collaborative")  # the files are as saved: only the values are wrong
    with pytest.raises(ArtifactUnreadable, match="NaN or infinite weights in item_factors"):
        load_version("collaborative", str(tmp_path / "collaborative"))

    tower = load_version("two_tower", str(saved_models["two_tower"]))
    name, parameter = next(iter(tower.model.named_parameters()))
    with torch.no_grad():
        parameter.view(-1)[:6] = float("nan")
    tower.save(tmp_path / "two_tower")
    write_manifest(tmp_path / "two_tower")
    with pytest.raises(ArtifactUnreadable, match=rf"NaN or infinite weights in model\.{name}"):
        load_version("two_tower", str(tmp_path / "two_tower"))


def test_every_component_reports_its_non_finite_weights():
    fitted = CollaborativeRecommender().fit(make_world())
    assert fitted.non_finite_parameters() == []
    fitted.user_factors[0, 0] = np.inf
    assert fitted.non_finite_parameters() == ["user_factors"]


def test_rewriting_a_file_updates_its_digest_but_never_blesses_a_damaged_neighbour(saved_models, tmp_path):
    path = copy_of(saved_models, "collaborative", tmp_path / "rewrite")
    rewrite_file(path, "feature_spec.json", '{"changed": true}')
    assert load_version("collaborative", str(path))
    flip_a_byte(path / "arrays.npz")
    with pytest.raises(ArtifactUnreadable, match="arrays.npz is damaged"):
        rewrite_file(path, "feature_spec.json", "{}")
    assert (path / "feature_spec.json").read_text() == '{"changed": true}'


@pytest.mark.django_db
def test_versions_saved_before_manifests_are_vouched_for_only_when_they_load(saved_models, tmp_path):
    sound = copy_of(saved_models, "collaborative", tmp_path / "sound")
    damaged = copy_of(saved_models, "content_based", tmp_path / "damaged")
    for path in (sound, damaged):
        (path / MANIFEST_FILE).unlink()
    (damaged / "arrays.npz").write_bytes(b"\x00 truncated")
    ModelVersion.objects.create(algorithm="collaborative", version=1, status="ready", artifact_path=str(sound))
    ModelVersion.objects.create(algorithm="content_based", version=1, status="ready", artifact_path=str(damaged))
    call_command("write_manifests", verbosity=0)
    assert load_version("collaborative", str(sound))
    assert not (damaged / MANIFEST_FILE).exists()
    with pytest.raises(Conflict, match="manifest.json is missing"):
        services.model_version_activate(algorithm="content_based", version=1)
    assert services.model_version_activate(algorithm="collaborative", version=1).status == "active"
