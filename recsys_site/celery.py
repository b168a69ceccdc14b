"""The Celery app. Broker from CELERY_BROKER_URL / REDIS_URL; without one, tasks run eagerly in-process."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_site.settings")

app = Celery("recsys_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
