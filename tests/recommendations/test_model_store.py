"""The per-process store of active models: it follows the registry, and spaces its checks out on request."""
import threading

from ml.models import BLENDED, ModelVersion
from ml.services import hybrid_weights_set
from recommendations import model_store
from recommendations.model_store import recheck_serving_models, serving_models


def test_the_store_follows_the_registrys_active_versions(world, tmp_path):
    assert serving_models().serving_versions() == world.model_versions
    ModelVersion.objects.filter(algorithm="two_tower", status="active").update(artifact_path=str(tmp_path))
    models = serving_models()
    assert "two_tower" not in models.serving.components and "cannot be loaded" in models.unavailable["two_tower"]
    assert models.ready


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
    assert "two_tower" in serving_models().unavailable and len(loads) == 1
