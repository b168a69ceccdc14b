"""EASE and RP3beta become platform algorithms; runs record what tuning chose, how the set measured as
served and why it was not activated; hybrid weights hold every algorithm's weight and a mode.

Weights saved before this migration were set by hand and were in force as such: they become manual
(pinned) rows, so serving does not change until someone returns to tuned mode."""
from django.conf import settings
from django.db import migrations, models

import ml.models

OLD_WEIGHT_COLUMNS = ("content_based", "collaborative", "two_tower")


def weights_as_manual_rows(apps, schema_editor):
    HybridWeights = apps.get_model("ml", "HybridWeights")
    for row in HybridWeights.objects.all():
        row.weights = {**dict.fromkeys(("content_based", "collaborative", "two_tower", "ease", "rp3beta"), 0.0),
                       **{name: getattr(row, name) for name in OLD_WEIGHT_COLUMNS}}
        row.mode = "manual"
        row.save(update_fields=["weights", "mode"])


def weights_as_columns(apps, schema_editor):
    HybridWeights = apps.get_model("ml", "HybridWeights")
    for row in HybridWeights.objects.all():
        old = {name: float(row.weights.get(name, 0.0)) for name in OLD_WEIGHT_COLUMNS}
        if not any(old.values()):  # only EASE / RP3beta weighed: the old columns cannot say so
            old = {"content_based": 0.4, "collaborative": 0.35, "two_tower": 0.25}
        for name, value in old.items():
            setattr(row, name, value)
        row.save(update_fields=list(OLD_WEIGHT_COLUMNS))


class Migration(migrations.Migration):

    dependencies = [
        ('ml', '0003_training_run_data_fingerprint'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='hybridweights',
            name='mode',
            field=models.CharField(choices=[('tuned', 'Tuned by each training'), ('manual', 'Manual (pinned)')], default='tuned', max_length=10),
        ),
        migrations.AddField(
            model_name='hybridweights',
            name='weights',
            field=models.JSONField(default=ml.models.default_weights, help_text='Algorithm -> weight, summing to 1.'),
        ),
        migrations.RunPython(weights_as_manual_rows, weights_as_columns),
        migrations.RemoveConstraint(
            model_name='hybridweights',
            name='hybrid_weights_non_negative',
        ),
        migrations.RemoveConstraint(
            model_name='hybridweights',
            name='hybrid_weights_not_all_zero',
        ),
        migrations.RemoveConstraint(
            model_name='modelversion',
            name='model_version_algorithm_valid',
        ),
        migrations.RemoveField(
            model_name='hybridweights',
            name='collaborative',
        ),
        migrations.RemoveField(
            model_name='hybridweights',
            name='content_based',
        ),
        migrations.RemoveField(
            model_name='hybridweights',
            name='two_tower',
        ),
        migrations.AddField(
            model_name='trainingrun',
            name='not_activated',
            field=models.TextField(blank=True, help_text="Why this run's versions were kept ready instead of replacing the active ones; empty when they were not."),
        ),
        migrations.AddField(
            model_name='trainingrun',
            name='served',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='trainingrun',
            name='tuned',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='modelversion',
            name='algorithm',
            field=models.CharField(choices=[('content_based', 'Content-based'), ('collaborative', 'Collaborative filtering'), ('two_tower', 'Two-Tower'), ('ease', 'EASE'), ('rp3beta', 'RP3beta')], max_length=20),
        ),
        migrations.AddConstraint(
            model_name='hybridweights',
            constraint=models.CheckConstraint(condition=models.Q(('mode__in', ['tuned', 'manual'])), name='hybrid_weights_mode_valid'),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.CheckConstraint(condition=models.Q(('algorithm__in', ['content_based', 'collaborative', 'two_tower', 'ease', 'rp3beta'])), name='model_version_algorithm_valid'),
        ),
    ]
