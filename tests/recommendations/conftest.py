"""One small trained world for the whole package: seeded once, trained in-process once, removed afterwards.

Training costs seconds, so the package shares it; every test still runs in its own transaction, so what a
test writes (interactions, activations, weights) is rolled back and the next test sees the same world.
"""
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings

from ml import training
from ml.core.registry import DEFAULT_WEIGHTS
from ml.models import Algorithm, HybridWeights, ModelVersion, TrainingRun
from profiles.models import Developer, Founder, Industry, Interaction, Investor, Skill, Startup

ALGORITHMS = ["content_based", "collaborative", "two_tower"]


@dataclass
class World:
    run: TrainingRun
    versions: dict[str, int]
    developer_id: int  # a developer with interactions, known to every model
    founder_id: int
    investor_id: int

    @property
    def model_versions(self) -> dict[str, int | None]:
        """As answers give them: every algorithm, None for those the world does not train."""
        return {name: self.versions.get(name) for name in Algorithm.values}


def _user_with_history(model) -> int:
    return (Interaction.objects.filter(user__in=model.objects.values("user"))
            .values_list("user_id", flat=True).order_by("user_id").first())


@pytest.fixture(scope="package")
def trained_world(django_db_setup, django_db_blocker, tmp_path_factory):
    with override_settings(MODEL_DIR=tmp_path_factory.mktemp("models"), TWO_TOWER_MAX_EPOCHS=2):
        with django_db_blocker.unblock():
            world = _seed_and_train()
        yield world
        with django_db_blocker.unblock():
            _remove_everything()


def _seed_and_train() -> World:
    call_command("seed_demo", users=70, startups=16, positions=48, interactions=1400, seed=5, verbosity=0)
    run = training.training_run_create(algorithms=ALGORITHMS, force_retrain=True, trigger="command")
    run = training.training_run_execute(run_id=run.pk, algorithms=run.algorithms)
    assert run.status == "succeeded", run.error
    versions = dict(ModelVersion.objects.filter(status="active").values_list("algorithm", "version"))
    assert set(versions) == set(ALGORITHMS), run.skipped
    # The run's tuned weights replaced by the defaults, for every role: what tests of the blend expect then
    # does not hang on what tuning chose on this tiny world (tests/ml test what tuning chooses).
    run.tuned = {**run.tuned, "weights": dict(DEFAULT_WEIGHTS), "by_role": {}}
    run.save(update_fields=["tuned"])
    return World(run, versions, _user_with_history(Developer), _user_with_history(Founder),
                 _user_with_history(Investor))


def _remove_everything() -> None:
    for model in (ModelVersion, TrainingRun, HybridWeights, Interaction, Startup, Skill):
        model.objects.all().delete()
    get_user_model().objects.all().delete()
    Industry.objects.all().delete()


@pytest.fixture
def world(trained_world, db):
    return trained_world


@pytest.fixture
def measured_run(world) -> TrainingRun:
    """A run measured as served whose held-out split is on disk now. A training keeps only the newest
    measured run's split, and other tests' trainings (rolled back in the database, not on disk) may have
    removed the world's; two quick algorithms suffice to measure weights on."""
    run = training.training_run_create(algorithms=["content_based", "collaborative"], force_retrain=True,
                                       trigger="command")
    run = training.training_run_execute(run_id=run.pk, algorithms=run.algorithms)
    assert run.status == "succeeded" and run.served, run.error
    return run
