"""Experiments, and the impression's experiment as a key to one.

The old column held a name and was always "" (no experiment existed): it is dropped and the key added,
where altering it in place would have PostgreSQL cast "" to an integer."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('recommendations', '0002_daily_impression_pruning'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Experiment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True)),
                ('status', models.CharField(choices=[('draft', 'Draft'), ('running', 'Running'), ('stopped', 'Stopped')], default='draft', max_length=10)),
                ('variants', models.JSONField(default=list)),
                ('metric', models.CharField(choices=[('click_rate', 'Click rate'), ('positive_rate', 'Positive rate'), ('conversion_rate', 'Conversion rate')], default='click_rate', help_text='The rate the results decide the winner on.', max_length=20)),
                ('starts_at', models.DateTimeField(blank=True, help_text='Empty: when it is started.', null=True)),
                ('ends_at', models.DateTimeField(blank=True, help_text='Empty: until it is stopped.', null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('stopped_at', models.DateTimeField(blank=True, null=True)),
                ('promoted_variant', models.CharField(blank=True, max_length=100)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.RemoveField(model_name='impression', name='experiment'),
        migrations.AddField(
            model_name='impression',
            name='experiment',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='impressions', to='recommendations.experiment'),
        ),
        migrations.AddConstraint(
            model_name='experiment',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'running')), fields=('status',), name='one_running_experiment'),
        ),
        migrations.AddConstraint(
            model_name='experiment',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['draft', 'running', 'stopped'])), name='experiment_status_valid'),
        ),
        migrations.AddConstraint(
            model_name='experiment',
            constraint=models.CheckConstraint(condition=models.Q(('metric__in', ['click_rate', 'positive_rate', 'conversion_rate'])), name='experiment_metric_valid'),
        ),
        migrations.AddConstraint(
            model_name='experiment',
            constraint=models.CheckConstraint(condition=models.Q(('starts_at__isnull', True), ('ends_at__isnull', True), ('ends_at__gt', models.F('starts_at')), _connector='OR'), name='experiment_ends_after_start'),
        ),
    ]
