"""The model registry: trained versions, training runs, and the hybrid's weights with their history."""
from django.conf import settings
from django.db import models
from django.db.models import Q

from ml.core.registry import DEFAULT_WEIGHTS, POPULARITY


class Algorithm(models.TextChoices):
    CONTENT_BASED = "content_based", "Content-based"
    COLLABORATIVE = "collaborative", "Collaborative filtering"
    TWO_TOWER = "two_tower", "Two-Tower"
    EASE = "ease", "EASE"
    RP3BETA = "rp3beta", "RP3beta"


def algorithm_label(name: str) -> str:
    """An algorithm's name as people read it ("Two-Tower", "Content-based"), popularity's and the blend's too."""
    labels = {**dict(Algorithm.choices), POPULARITY: "Popularity", "hybrid": "Hybrid"}
    return str(labels.get(name) or name.replace("_", " ").capitalize())


class Trigger(models.TextChoices):
    API = "api", "API"
    BEAT = "beat", "Schedule"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Command line"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        ACTIVE = "active", "Active"
        FAILED = "failed", "Failed"
        ARCHIVED = "archived", "Archived"

    algorithm = models.CharField(max_length=20, choices=Algorithm.choices)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINING)
    artifact_path = models.CharField(max_length=500, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    data_fingerprint = models.CharField(max_length=64, blank=True)
    n_users = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    n_interactions = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=20, blank=True)
    training_seconds = models.FloatField(null=True, blank=True)
    # The training process's peak resident memory while this version was fitted, in MB (ml.training.PeakMemory)
    peak_memory_mb = models.FloatField(null=True, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.API)
    training_run = models.ForeignKey("TrainingRun", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="model_versions")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # Why the version is failed: its training broke, or serving could not load it while it was active
    # (recommendations.model_store then activated the newest earlier readable version in its place).
    failure_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["algorithm", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["algorithm", "version"], name="model_version_unique"),
            # Serving must never have to choose between two active versions of one algorithm.
            models.UniqueConstraint(fields=["algorithm"], condition=Q(status="active"),
                                    name="one_active_version_per_algorithm"),
            models.CheckConstraint(condition=Q(algorithm__in=Algorithm.values), name="model_version_algorithm_valid"),
            models.CheckConstraint(condition=Q(status__in=["training", "ready", "active", "failed", "archived"]),
                                   name="model_version_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{algorithm_label(self.algorithm)} v{self.version} ({self.status})"

    @property
    def label(self) -> str:
        """"Two-Tower v3": the version as messages and pages name it."""
        return f"{algorithm_label(self.algorithm)} v{self.version}"


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    algorithms = models.JSONField(default=list)
    force_retrain = models.BooleanField(default=False)
    # {"algorithm", "epoch", "epochs", "train_loss": [...], "val_loss": [...]}, written each epoch.
    progress = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    skipped = models.JSONField(default=dict, blank=True, help_text="Algorithm -> why it was not trained.")
    error = models.TextField(blank=True)
    # What tuning chose on validation carved from the data (ml.training): {"weights", "validation_ndcg", "k",
    # "settings", "failed"}; the weights are those tuned mode serves while this run's versions are active.
    tuned = models.JSONField(null=True, blank=True)
    # The set measured as the API serves it on a time-based holdout (ml.evaluation.served_evaluation):
    # {"metrics", "popularity", "oracle", "weights", "holdout", "seconds"}.
    served = models.JSONField(null=True, blank=True)
    not_activated = models.TextField(blank=True, help_text="Why this run's versions were kept ready instead of "
                                                           "replacing the active ones; empty when they were not.")
    # The data (and parameters) it trained on, ml.training.data_fingerprint: what "up to date" compares.
    data_fingerprint = models.CharField(max_length=64, blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    # True while queued or running, NULL afterwards: the unique constraint below makes it the training
    # lock, so two runs can never be in flight at once whatever process asks.
    in_flight = models.BooleanField(null=True, default=True, editable=False)
    # Written every few seconds by the worker while it trains; a stale heartbeat means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.API)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="training_runs")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["queued", "running", "succeeded", "failed", "skipped"]),
                                   name="training_run_status_valid"),
            models.UniqueConstraint(fields=["in_flight"], name="one_training_run_in_flight"),
            models.CheckConstraint(
                condition=Q(in_flight=True, status__in=["queued", "running"])
                | Q(in_flight__isnull=True, status__in=["succeeded", "failed", "skipped"]),
                name="training_run_in_flight_matches_status"),
        ]
        indexes = [models.Index(fields=["status"], name="training_run_status")]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"


# What the hybrid's weights blend: every algorithm, and item popularity, which the ranker holds itself.
BLENDED = [*Algorithm.values, POPULARITY]


def default_weights() -> dict[str, float]:
    """The blend's weights before any training tuned them, for every blended component."""
    return {name: DEFAULT_WEIGHTS.get(name, 0.0) for name in BLENDED}


class HybridWeights(models.Model):
    """Every change of the weights is a row; the newest says which are in force, the rest are its history.

    ``mode`` "manual" pins the row's ``weights``; "tuned" serves each training's tuned weights (those of the
    run whose versions are active, ml.selectors.current_weights), and ``weights`` records the ones in force
    when the mode was chosen.
    """

    class Mode(models.TextChoices):
        TUNED = "tuned", "Tuned by each training"
        MANUAL = "manual", "Manual (pinned)"

    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.TUNED)
    weights = models.JSONField(default=default_weights, help_text="Algorithm -> weight, summing to 1.")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name_plural = "hybrid weights"
        get_latest_by = ["changed_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(mode__in=["tuned", "manual"]), name="hybrid_weights_mode_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.mode} weights {self.as_dict()} at {self.changed_at:%Y-%m-%d %H:%M}"

    def as_dict(self) -> dict[str, float]:
        return {name: float(self.weights.get(name, 0.0)) for name in BLENDED}
