from django.apps import AppConfig
from django.db.models.signals import post_save


class RecommendationsConfig(AppConfig):
    name = "recommendations"

    def ready(self) -> None:
        from ml.models import HybridWeights, ModelVersion

        from .model_store import recheck_serving_models

        # A version activated or weights saved in this process serve from its next request.
        for model in (ModelVersion, HybridWeights):
            post_save.connect(recheck_serving_models, sender=model, dispatch_uid=f"recheck-on-{model.__name__}")
