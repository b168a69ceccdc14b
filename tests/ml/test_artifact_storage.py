"""Model versions through the model store (``MODEL_STORAGE=s3``), against a real S3 server: moto's, in a
thread on a port the OS chooses, spoken to over HTTP by django-storages and boto3 as a bucket would be.

A version trained on one machine loads on another whose ``MODEL_DIR`` is empty, checked against its
manifest; a file damaged in the bucket is refused naming it, and leaves no half-download that could pass
for a copy; the store that cannot be reached is not mistaken for a damaged version. Without
``MODEL_STORAGE`` nothing is uploaded or fetched (the rest of tests/ml and tests/recommendations)."""
import json
import shutil
import socket
import uuid
from pathlib import Path

import boto3
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from moto.server import ThreadedMotoServer

from ml import evaluation, services, training
from ml.artifacts import MANIFEST_FILE, ArtifactUnreadable, load_version, publish, rewrite_file, write_manifest
from ml.core.base import META_FILE
from ml.core.tuning import default_component
from ml.models import ModelVersion
from recommendations.model_store import recheck_serving_models, serving_models
from recsys_site.env import model_storage
from tests.ml_core.conftest import make_world

PREFIX = "models"


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the socket listens
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server, settings, monkeypatch, tmp_path) -> str:
    """A fresh bucket, and settings as ``MODEL_STORAGE=s3`` with it makes them; MODEL_DIR empty."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3(s3_server).create_bucket(Bucket=name)
    for variable, value in {"MODEL_STORAGE_BUCKET": name, "MODEL_STORAGE_ENDPOINT_URL": s3_server,
                            "MODEL_STORAGE_PREFIX": PREFIX}.items():
        monkeypatch.setenv(variable, value)
    settings.MODEL_DIR = tmp_path / "machine-1"
    settings.MODEL_STORAGE = "s3"
    settings.STORAGES = {**settings.STORAGES, "models": model_storage("s3", settings.MODEL_DIR)}  # resets storages
    settings.TWO_TOWER_MAX_EPOCHS = 2
    return name


def s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def keys(endpoint: str, bucket: str, prefix: str = "") -> set[str]:
    listed = s3(endpoint).list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{prefix}")
    return {item["Key"].removeprefix(f"{PREFIX}/") for item in listed.get("Contents", [])}


@pytest.fixture(scope="module")
def fitted():
    return default_component("collaborative").fit(make_world())


def another_machine(settings, tmp_path, name: str) -> Path:
    """What the processes of another machine see: their own, empty MODEL_DIR (this one's is gone)."""
    shutil.rmtree(settings.MODEL_DIR, ignore_errors=True)
    settings.MODEL_DIR = tmp_path / name
    return settings.MODEL_DIR


def save_version(fitted, settings, version: int = 1) -> Path:
    """As training saves a version: its files, the feature spec, the manifest, published."""
    path = Path(settings.MODEL_DIR) / "collaborative" / str(version)
    fitted.save(path)
    (path / "feature_spec.json").write_text("{}")
    write_manifest(path)
    publish(path)
    return path


def test_a_published_version_loads_on_a_machine_whose_model_dir_is_empty(s3_server, bucket, fitted, settings,
                                                                          tmp_path):
    path = save_version(fitted, settings)
    files = {f.name for f in path.iterdir()}
    assert keys(s3_server, bucket) == {f"collaborative/1/{name}" for name in files}

    shutil.rmtree(path)  # this machine lost its copy: fetched again, verified, cached
    assert load_version("collaborative", str(path)).name == "collaborative"
    assert {f.name for f in path.iterdir()} == files

    another_machine(settings, tmp_path, "machine-2")  # another MODEL_DIR; the row's path as recorded
    model = load_version("collaborative", str(path))
    assert model.name == "collaborative" and model.item_ids.ids == fitted.item_ids.ids
    assert {f.name for f in (tmp_path / "machine-2" / "collaborative" / "1").iterdir()} == files


def test_a_damaged_local_copy_is_replaced_by_the_stores(bucket, fitted, settings):
    path = save_version(fitted, settings)
    (path / "arrays.npz").write_bytes(b"not the model")
    assert load_version("collaborative", str(path)).name == "collaborative"
    assert write_manifest(path)  # the copy verifies again: the store's bytes replaced the damaged file


def test_a_file_damaged_in_the_bucket_is_refused_naming_it_and_leaves_no_copy(s3_server, bucket, fitted,
                                                                               settings):
    path = save_version(fitted, settings)
    key = f"{PREFIX}/collaborative/1/arrays.npz"
    data = bytearray(s3(s3_server).get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3(s3_server).put_object(Bucket=bucket, Key=key, Body=bytes(data))
    shutil.rmtree(path)
    with pytest.raises(ArtifactUnreadable, match=r"collaborative/1/arrays\.npz in the model store is damaged"):
        load_version("collaborative", str(path))
    assert list(path.parent.iterdir()) == []  # no half-download left to pass for a copy


def test_a_version_missing_from_the_store_is_unreadable(bucket, settings):
    path = Path(settings.MODEL_DIR) / "collaborative" / "7"
    with pytest.raises(ArtifactUnreadable, match=r"collaborative/7/manifest\.json is missing from the model store"):
        load_version("collaborative", str(path))


def test_a_rewritten_file_is_published_with_its_manifest(bucket, fitted, settings, tmp_path):
    path = save_version(fitted, settings)
    meta = json.loads((path / META_FILE).read_text())
    rewrite_file(path, META_FILE, json.dumps({**meta, "metrics": {"ndcg@10": 0.5}}))
    another_machine(settings, tmp_path, "machine-2")
    load_version("collaborative", str(path))
    fetched = tmp_path / "machine-2" / "collaborative" / "1"
    assert json.loads((fetched / META_FILE).read_text())["metrics"] == {"ndcg@10": 0.5}


def test_a_store_that_cannot_be_reached_is_not_taken_for_a_damaged_version(bucket, fitted, settings):
    path = save_version(fitted, settings)
    shutil.rmtree(path)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    models = model_storage("s3", settings.MODEL_DIR)
    models["OPTIONS"]["endpoint_url"] = f"http://127.0.0.1:{closed}"
    settings.STORAGES = {**settings.STORAGES, "models": models}
    with pytest.raises(Exception) as raised:
        load_version("collaborative", str(path))
    assert not isinstance(raised.value, ArtifactUnreadable)  # serving keeps its models and tries again


@pytest.mark.django_db
def test_activation_and_fail_over_load_versions_from_the_store(s3_server, bucket, fitted, settings, tmp_path):
    first, second = save_version(fitted, settings, 1), save_version(fitted, settings, 2)
    for version, path in ((1, first), (2, second)):
        ModelVersion.objects.create(algorithm="collaborative", version=version, status="ready",
                                    artifact_path=str(path))
    another_machine(settings, tmp_path, "web-machine")  # activated and served where neither was trained
    assert services.model_version_activate(algorithm="collaborative", version=2).status == "active"
    s3(s3_server).delete_object(Bucket=bucket, Key=f"{PREFIX}/collaborative/2/arrays.npz")
    shutil.rmtree(tmp_path / "web-machine" / "collaborative" / "2")
    with pytest.raises(ArtifactUnreadable, match=r"collaborative/2/arrays\.npz is missing from the model store"):
        load_version("collaborative", str(second))
    replacement = services.model_version_fail_over(algorithm="collaborative", version=2, reason="unreadable")
    assert replacement.version == 1 and replacement.status == "active"


@pytest.mark.django_db
def test_a_run_trained_in_parts_on_two_machines_serves_and_evaluates_on_a_third(s3_server, bucket, settings,
                                                                               tmp_path):
    call_command("seed_demo", users=80, startups=20, positions=60, interactions=1500, seed=1, verbosity=0)
    run = training.training_run_create(algorithms=["content_based", "collaborative"], force_retrain=True,
                                       trigger="command")
    training.training_run_execute(run_id=run.pk, algorithms=["content_based"], finish=False)
    another_machine(settings, tmp_path, "machine-2")  # the last part reads the first's held-out models from the store
    run = training.training_run_execute(run_id=run.pk, algorithms=["collaborative"])
    assert run.status == "succeeded" and set(run.metrics) == {"content_based", "collaborative"}, run.error
    assert f"runs/{run.pk}/holdout/content_based/{MANIFEST_FILE}" in keys(s3_server, bucket, "runs/")

    another_machine(settings, tmp_path, "web-machine")
    for version in ModelVersion.objects.filter(status="active"):
        assert load_version(version.algorithm, version.artifact_path).name == version.algorithm
    shutil.rmtree(settings.MODEL_DIR)
    recheck_serving_models()  # serving loads them from the store as well
    served = serving_models()
    assert not served.broken and {"content_based", "collaborative"} <= set(served.serving.components)
    measured, held_out = evaluation.latest_held_out()  # the what-if API's and `evaluate --held-out latest`'s
    assert measured.pk == run.pk and set(held_out.models) == {"content_based", "collaborative"}

    again = training.training_run_create(algorithms=["content_based"], force_retrain=True, trigger="command")
    again = training.training_run_execute(run_id=again.pk, algorithms=["content_based"])
    assert {key.split("/")[1] for key in keys(s3_server, bucket, "runs/")} == {str(again.pk)}


def test_model_storage_is_checked_at_start_up(monkeypatch, tmp_path):
    assert model_storage("", tmp_path)["OPTIONS"]["location"] == str(tmp_path)
    with pytest.raises(ImproperlyConfigured, match="MODEL_STORAGE must be"):
        model_storage("gcs", tmp_path)
    monkeypatch.delenv("MODEL_STORAGE_BUCKET", raising=False)
    with pytest.raises(ImproperlyConfigured, match="MODEL_STORAGE_BUCKET"):
        model_storage("s3", tmp_path)
    monkeypatch.setenv("MODEL_STORAGE_BUCKET", "recsys")
    options = model_storage("s3", tmp_path)["OPTIONS"]
    assert (options["bucket_name"], options["location"], options["endpoint_url"]) == ("recsys", "models", None)


@pytest.mark.django_db
def test_publish_models_uploads_the_versions_saved_before_the_store(s3_server, bucket, fitted, settings):
    path = Path(settings.MODEL_DIR) / "collaborative" / "3"
    fitted.save(path)
    write_manifest(path)  # saved while MODEL_DIR was the store
    ModelVersion.objects.create(algorithm="collaborative", version=3, status="active", artifact_path=str(path))
    call_command("publish_models", verbosity=0)
    assert keys(s3_server, bucket) == {f"collaborative/3/{f.name}" for f in path.iterdir()}


def test_a_manifest_in_the_bucket_naming_files_outside_its_version_is_refused(s3_server, bucket, settings):
    manifest = json.dumps({"sha256": {"../../outside": "0" * 64}})
    s3(s3_server).put_object(Bucket=bucket, Key=f"{PREFIX}/collaborative/4/{MANIFEST_FILE}", Body=manifest)
    with pytest.raises(ArtifactUnreadable, match="outside the version's directory"):
        load_version("collaborative", str(Path(settings.MODEL_DIR) / "collaborative" / "4"))
