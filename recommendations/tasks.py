"""Celery tasks of the recommendations app: a thin shell over its services."""
from celery import shared_task

from . import services


@shared_task(name="recommendations.prune_impressions")
def prune_impressions() -> str:
    """Celery beat's daily pruning of impressions past IMPRESSION_RETENTION_DAYS."""
    return f"deleted {services.impressions_prune()} impressions"
