"""The per-process store of active models: it follows the registry, and spaces its checks out on request."""
import os
import shutil
import threading
from pathlib import Path

from django.utils import timezone

from ml.models import BLENDED, ModelVersion
from ml.services import hybrid_weights_set
from recommendations import model_store
from recommendations.model_store import leave_loads_to_master, recheck_serving_models, serving_models
from tests.factories import StaffUserFactory


def test_the_store_follows_the_registrys_active_versions(world, tmp_path):
    assert serving_models().serving_versions() == world.model_versions
    ModelVersion.objects.filter(algorithm="two_tower", status="active").update(artifact_path=str(tmp_path))
    models = serving_models()
    # No earlier two_tower version to fall back to: it is failed, with the reason, and does not serve.
    assert "two_tower" not in models.serving.components and models.ready
    failed = ModelVersion.objects.get(algorithm="two_tower", version=world.versions["two_tower"])
    assert failed.status == "failed" and "manifest.json is missing" in failed.failure_reason
    assert "manifest.json is missing" in models.unavailable["two_tower"]


def _earlier_readable_and_damaged_active(world, tmp_path, algorithm: str, damage) -> ModelVersion:
    """The world's version of ``algorithm`` made an earlier, ready one, and a copy of its files, damaged by
    ``damage(directory)``, the active version after it (as a training that wrote bad files would leave it)."""
    earlier = ModelVersion.objects.get(algorithm=algorithm, status="active")
    copy = shutil.copytree(earlier.artifact_path, tmp_path / f"{algorithm}-next")
    damage(copy)
    ModelVersion.objects.filter(pk=earlier.pk).update(status="ready")
    return ModelVersion.objects.create(algorithm=algorithm, version=earlier.version + 1, status="active",
                                       artifact_path=str(copy), activated_at=timezone.now())


def _flip_a_byte(name: str):
    def damage(directory: Path) -> None:
        data = bytearray((directory / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (directory / name).write_bytes(bytes(data))
    return damage


def test_an_active_version_that_cannot_load_fails_over_to_the_earlier_readable_one(world, tmp_path, api_client):
    broken = _earlier_readable_and_damaged_active(world, tmp_path, "content_based", _flip_a_byte("arrays.npz"))
    recheck_serving_models()
    models = serving_models()
    assert models.serving_versions()["content_based"] == world.versions["content_based"]
    assert "content_based" in models.serving.components and not models.broken
    broken.refresh_from_db()
    assert broken.status == "failed" and "arrays.npz is damaged" in broken.failure_reason
    # The registry says so too, so that every other process serves the earlier version as well.
    assert ModelVersion.objects.get(algorithm="content_based", status="active").version == world.versions[
        "content_based"]

    api_client.force_authenticate(StaffUserFactory())
    status = api_client.get("/api/v1/algorithms/status").json()["algorithms"]["content_based"]
    api_client.force_authenticate(None)
    assert status["available"] and status["active_version"] == world.versions["content_based"]
    assert status["failed_version"] == broken.version and "arrays.npz is damaged" in status["failure_reason"]

    health = api_client.get("/api/v1/health").json()
    assert health["status"] == "degraded"
    assert health["models"]["content_based"]["state"] == "earlier version"
    assert health["models"]["content_based"]["serving_version"] == world.versions["content_based"]
    assert any(f"content_based v{broken.version} failed" in problem and "arrays.npz" in problem
               for problem in health["problems"])


def test_the_fail_over_skips_earlier_versions_that_do_not_load_either(world, tmp_path):
    first = ModelVersion.objects.get(algorithm="collaborative", status="active")
    unreadable = ModelVersion.objects.create(algorithm="collaborative", version=first.version + 1, status="archived",
                                             artifact_path=str(tmp_path / "gone"), activated_at=timezone.now())
    ModelVersion.objects.filter(pk=first.pk).update(status="archived")
    broken = ModelVersion.objects.create(algorithm="collaborative", version=first.version + 2, status="active",
                                         artifact_path=str(tmp_path / "also-gone"), activated_at=timezone.now())
    recheck_serving_models()
    assert serving_models().serving_versions()["collaborative"] == first.version
    assert ModelVersion.objects.get(pk=broken.pk).status == "failed"
    assert ModelVersion.objects.get(pk=unreadable.pk).status == "archived"  # refused, left as it was


def test_checks_can_be_spaced_out_and_the_store_told_to_forget(world, settings, tmp_path):
    settings.MODEL_REGISTRY_CHECK_SECONDS = 3600
    recheck_serving_models()
    held = serving_models()
    ModelVersion.objects.filter(algorithm="two_tower", status="active").update(artifact_path=str(tmp_path))
    assert serving_models() is held
    recheck_serving_models()
    assert "two_tower" in serving_models().unavailable


def test_without_a_content_model_the_others_serve_and_content_says_why(world):
    ModelVersion.objects.filter(algorithm="content_based", status="active").update(status="ready")
    models = serving_models()
    assert models.ready and set(models.serving.components) == {"collaborative", "two_tower"}
    assert models.unavailable["content_based"].startswith("no active content_based version")
    assert "failed" not in models.unavailable["content_based"]
    assert models.serving.vocabulary is None and len(models.serving.item_ids) > 0


def test_weights_saved_in_this_process_serve_from_the_next_request_however_checks_are_spaced(
        world, settings, django_capture_on_commit_callbacks):
    settings.MODEL_REGISTRY_CHECK_SECONDS = 3600
    recheck_serving_models()
    held = serving_models()
    with django_capture_on_commit_callbacks(execute=True):
        hybrid_weights_set(weights={"content_based": 1, "collaborative": 0, "two_tower": 0})
        assert serving_models() is held  # not before the save is committed
    models = serving_models()
    assert models.weights == {**dict.fromkeys(BLENDED, 0.0), "content_based": 1.0}
    assert models.serving.components is held.serving.components  # new weights, same loaded models: nothing reloaded


def test_a_due_check_of_the_registry_runs_in_a_thread_and_no_request_waits_for_it(world, settings, monkeypatch):
    held = serving_models()
    settings.MODEL_REGISTRY_CHECK_SECONDS = 1e-6  # due at every request
    release, checkers = threading.Event(), []

    def slow_check(store):
        checkers.append(threading.current_thread().name)
        release.wait(10)

    monkeypatch.setattr(model_store._Store, "_check", slow_check)
    assert serving_models() is held  # the check is due: a thread makes it, and the request goes on
    assert serving_models() is held  # nor does the next one start a second check
    release.set()
    model_store._store._checker.join(10)
    assert checkers == ["serving-models-check"]


def _activate_a_copy_of_content(tmp_path) -> ModelVersion:
    """A copy of the active content version's files made the active version after it; the earlier one."""
    earlier = ModelVersion.objects.get(algorithm="content_based", status="active")
    copy = shutil.copytree(earlier.artifact_path, tmp_path / "content-next")
    ModelVersion.objects.filter(pk=earlier.pk).update(status="ready")
    ModelVersion.objects.create(algorithm="content_based", version=earlier.version + 1, status="active",
                                artifact_path=str(copy), activated_at=timezone.now())
    return earlier


def test_a_swap_reads_the_database_in_the_loader_thread_and_no_request_waits_for_it(world, tmp_path, monkeypatch):
    held = serving_models()
    earlier = _activate_a_copy_of_content(tmp_path)
    # What the loader's own connection would read, were the test's rows committed: read here, handed over
    # in the thread that asks, which is recorded
    inputs = model_store._database_inputs(model_store._active_key(None))
    readers = []

    def read(key):
        readers.append(threading.current_thread().name)
        return inputs

    monkeypatch.setattr(model_store, "_database_inputs", read)
    monkeypatch.setattr(model_store._Store, "SWAP_WAIT_SECONDS", 0.0)  # as served
    monkeypatch.setattr(model_store._Store, "READ_IN_REQUEST", False)
    release = threading.Event()
    real_load = model_store._load
    def slow_load(*args):
        release.wait(10)
        return real_load(*args)

    monkeypatch.setattr(model_store, "_load", slow_load)
    assert serving_models() is held  # the request that found the change neither read nor loaded anything
    release.set()
    model_store._store._loader.join(10)
    assert readers == ["serving-models-load"]
    assert serving_models().serving_versions()["content_based"] == earlier.version + 1


def test_a_slow_load_happens_in_the_background_while_the_held_models_keep_serving(world, monkeypatch):
    held = serving_models()
    release, loads = threading.Event(), []
    real_load = model_store._load

    def slow_load(key, weights, inputs):
        loads.append(key)
        release.wait(10)
        return real_load(key, weights, inputs)

    monkeypatch.setattr(model_store, "_load", slow_load)
    monkeypatch.setattr(model_store._Store, "SWAP_WAIT_SECONDS", 0.05)
    ModelVersion.objects.filter(algorithm="two_tower", status="active").update(artifact_path="/nonexistent")
    assert serving_models() is held  # the load has started; the request did not wait for it
    assert serving_models() is held  # nor does the next one start a second load
    loader = model_store._store._loader
    release.set()
    loader.join(10)
    # That load found two_tower unreadable and failed it over (no earlier version): the set without it was
    # then loaded once more, in the request, so that no load of the failed set could still be in flight.
    assert "two_tower" in serving_models().unavailable and len(loads) == 2
    assert [algorithm for algorithm, *_ in loads[1][0]] == ["collaborative", "content_based"]


def test_a_worker_leaves_a_changed_set_to_the_master_and_still_takes_new_weights(
        world, tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    held = serving_models()
    monkeypatch.setattr(model_store._store, "_loads_changes", True)  # restored after the test
    leave_loads_to_master()
    earlier = _activate_a_copy_of_content(tmp_path)
    models = serving_models()
    assert models.serving is held.serving and models.serving_versions()["content_based"] == earlier.version
    with django_capture_on_commit_callbacks(execute=True):
        hybrid_weights_set(weights={"content_based": 1, "collaborative": 0, "two_tower": 0})
    models = serving_models()
    assert models.weights["content_based"] == 1.0 and models.serving is held.serving


def test_the_masters_watch_tells_a_newly_loaded_set_and_not_new_weights(
        world, tmp_path, django_capture_on_commit_callbacks):
    watch = model_store.LoadedSetWatch()
    assert not watch.new_set_loaded()  # the first answer only notes what is held
    with django_capture_on_commit_callbacks(execute=True):
        hybrid_weights_set(weights={"content_based": 1, "collaborative": 0, "two_tower": 0})
    assert not watch.new_set_loaded()
    earlier = _activate_a_copy_of_content(tmp_path)
    assert watch.new_set_loaded() and serving_models().serving_versions()["content_based"] == earlier.version + 1
    assert not watch.new_set_loaded()


def test_a_child_forked_while_the_stores_lock_was_held_can_take_it():
    # gunicorn forks workers from a master whose threads check and load models under this lock
    with model_store._store._lock:
        pid = os.fork()
        if pid == 0:
            os._exit(0 if model_store._store._lock.acquire(timeout=5) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_answer_that_commits_after_a_later_one_was_seen_still_counts(world, monkeypatch):
    from dataclasses import replace

    from ml.platform_data import catalog_version
    from profiles.models import Developer, Startup
    from tests.factories import InteractionFactory

    startup = Startup.objects.filter(founders__isnull=False).order_by("pk").first()
    founder = startup.founders.order_by("pk").first().pk
    developer = Developer.objects.exclude(user__interactions__startup=startup).order_by("pk").first()
    other = Developer.objects.exclude(pk=developer.pk).order_by("pk").first()
    before = serving_models()
    InteractionFactory(user=developer.user, startup=startup, kind="dismiss")
    InteractionFactory(user=other.user, startup=startup, kind="dismiss")  # a later answer
    now = before.key[:1] + ((*before.key[1][:2], catalog_version()[2]),) + before.key[2:]
    # The set held saw the later answer but not the first: the first one's transaction committed after it.
    held = replace(before, key=now)
    me = held.serving.item_numbering().index[f"developer:{developer.pk}"]
    assert me not in held.serving.rebuffs.get(founder, [])

    def rebuffs_founder() -> bool:
        return me in model_store._with_new_answers(held, now).serving.rebuffs.get(founder, [])

    assert rebuffs_founder()
    monkeypatch.setattr(model_store, "ANSWERS_OVERLAP", 0)
    assert not rebuffs_founder()
