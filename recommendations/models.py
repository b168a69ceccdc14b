"""What the service showed, and the experiments it ran (docs/api.md, "The online loop").

An Impression is one answer of POST /api/v1/recommendations. Interactions name the impression they answer
(profiles.Interaction.impression), so that click-through and conversion rates can be counted per answer,
variant, role and rank. An Experiment splits users between variants (weight sets and/or pinned model
versions) and the control (what is in force); recommendations.experiments assigns and measures them.
"""
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Experiment(models.Model):
    """A split of the traffic: ``variants`` take consecutive shares of the users, the rest is the control.

    ``variants`` is a list of {"name", "share", "weights"?, "model_versions"?}, validated by
    recommendations.experiments (the weights stored normalised); only a draft is edited.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    class Metric(models.TextChoices):
        CLICK_RATE = "click_rate", "Click rate"
        POSITIVE_RATE = "positive_rate", "Positive rate"
        CONVERSION_RATE = "conversion_rate", "Conversion rate"

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    variants = models.JSONField(default=list)
    metric = models.CharField(max_length=20, choices=Metric.choices, default=Metric.CLICK_RATE,
                              help_text="The rate the results decide the winner on.")
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: when it is started.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until it is stopped.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    promoted_variant = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Serving follows one experiment: a second running one could never be told apart from the first.
            models.UniqueConstraint(fields=["status"], condition=Q(status="running"), name="one_running_experiment"),
            models.CheckConstraint(condition=Q(status__in=["draft", "running", "stopped"]),
                                   name="experiment_status_valid"),
            models.CheckConstraint(condition=Q(metric__in=["click_rate", "positive_rate", "conversion_rate"]),
                                   name="experiment_metric_valid"),
            models.CheckConstraint(condition=Q(starts_at__isnull=True) | Q(ends_at__isnull=True)
                                   | Q(ends_at__gt=F("starts_at")), name="experiment_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class Impression(models.Model):
    """One answer: who was shown which items, in which order, by which models and weights."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)  # the answer's recommendation_id
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="impressions")
    user_type = models.CharField(max_length=20)  # the role the user was recommended as
    created_at = models.DateTimeField()
    # The experiment the answer took part in (null: none ran) and the user's variant in it ("control": the
    # weights and versions in force). PROTECT: an experiment's results are its impressions.
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="impressions")
    variant = models.CharField(max_length=100, blank=True)
    model_versions = models.JSONField(default=dict)  # algorithm -> version served (null: none)
    weights = models.JSONField(default=dict)  # component -> weight the answer was blended with
    fallback = models.CharField(max_length=40)  # the path taken ("none" when every model served)
    items = models.JSONField(default=list)  # item keys ("position:12"), rank 1 first

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Attribution reads a user's impressions in the window, newest first; pruning reads by age.
            models.Index(fields=["user", "-created_at"], name="impression_user_recent"),
            models.Index(fields=["created_at"], name="impression_created"),
        ]

    def __str__(self) -> str:
        return f"{self.id} for {self.user_id} ({len(self.items)} items)"
