"""What the service showed: one row per answer of POST /api/v1/recommendations (docs/api-v1.md, "The online loop").

Interactions name the impression they answer (profiles.Interaction.impression), so that click-through and
conversion rates can be counted per answer, variant, role and rank.
"""
import uuid

from django.conf import settings
from django.db import models


class Impression(models.Model):
    """One answer: who was shown which items, in which order, by which models and weights."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)  # the answer's recommendation_id
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="impressions")
    user_type = models.CharField(max_length=20)  # the role the user was recommended as
    created_at = models.DateTimeField()
    experiment = models.CharField(max_length=100, blank=True)  # "" until experiments exist
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
