from django.conf import settings
from django.core.management.base import BaseCommand

from recommendations.services import impressions_prune


class Command(BaseCommand):
    help = "Delete impressions older than IMPRESSION_RETENTION_DAYS (Celery beat also runs this daily)."

    def handle(self, *args, **options):
        deleted = impressions_prune()
        self.stdout.write(f"Deleted {deleted} impressions older than {settings.IMPRESSION_RETENTION_DAYS} days.")
