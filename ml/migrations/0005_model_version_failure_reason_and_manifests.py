"""Versions record why they failed; versions saved before manifests get one if their files load.

Serving and activation now refuse a version without a manifest (ml.artifacts). The versions already on
disk were written by this service and served until now, so each one whose files load, with finite
weights, is vouched for as it is (``write_manifests``); one that does not load gets none and is refused,
as it would have been anyway. The vouching only reads the files and writes ``manifest.json`` beside them,
so reversing the migration leaves them as they are."""
from django.db import migrations, models


def vouch_for_saved_versions(apps, schema_editor):
    from ml.management.commands.write_manifests import vouch_for_versions_without_manifest

    ModelVersion = apps.get_model("ml", "ModelVersion")
    vouch_for_versions_without_manifest(ModelVersion.objects.exclude(artifact_path="").exclude(status="training"))


class Migration(migrations.Migration):

    dependencies = [
        ("ml", "0004_five_algorithms_runs_tuned_and_served_weights_mode"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="failure_reason",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(vouch_for_saved_versions, migrations.RunPython.noop),
    ]
