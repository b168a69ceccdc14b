"""Interaction.rank: the attributed item's position in its impression; filled in for events attributed
before it existed, so that grouping by rank counts them too."""
from django.db import migrations, models

TARGET_FIELDS = {"position": "position_id", "startup": "startup_id", "developer": "developer_id",
                 "investor": "investor_id"}


def fill_ranks(apps, schema_editor):
    Interaction = apps.get_model("profiles", "Interaction")
    attributed = Interaction.objects.filter(impression__isnull=False, rank__isnull=True).select_related("impression")
    changed = []
    for event in attributed.iterator(chunk_size=1000):
        item_type, column = next((t, c) for t, c in TARGET_FIELDS.items() if getattr(event, c) is not None)
        key = f"{item_type}:{getattr(event, column)}"
        if key in event.impression.items:
            event.rank = event.impression.items.index(key) + 1
            changed.append(event)
    Interaction.objects.bulk_update(changed, ["rank"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0003_interaction_impression_and_outcome'),
    ]

    operations = [
        migrations.AddField(
            model_name='interaction',
            name='rank',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(fill_ranks, migrations.RunPython.noop),
    ]
