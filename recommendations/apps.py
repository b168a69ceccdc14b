from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_save


def _recheck_after_commit(**_signal) -> None:
    from .model_store import recheck_serving_models

    transaction.on_commit(recheck_serving_models)


class RecommendationsConfig(AppConfig):
    name = "recommendations"

    def ready(self) -> None:
        from ml.models import HybridWeights, ModelVersion

        # A version activated or weights saved in this process serve from its next request (once committed).
        for model in (ModelVersion, HybridWeights):
            post_save.connect(_recheck_after_commit, sender=model, dispatch_uid=f"recheck-on-{model.__name__}")
