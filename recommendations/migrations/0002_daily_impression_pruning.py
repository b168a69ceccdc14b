"""The default pruning of impressions past IMPRESSION_RETENTION_DAYS: daily at 04:00 UTC, editable in admin."""
import json

from django.db import migrations

TASK_NAME = "Prune old impressions (daily)"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    daily, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="4", day_of_week="*", day_of_month="*",
                                                     month_of_year="*", timezone="UTC")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={"task": "recommendations.prune_impressions", "crontab": daily, "kwargs": json.dumps({}),
                  "description": "Deletes impressions older than IMPRESSION_RETENTION_DAYS."},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0001_impressions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
