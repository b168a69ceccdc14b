import base64
import copy
import json

from django import forms
from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ml.core.registry import POPULARITY

from . import progress, selectors, services, tasks, training
from .models import BLENDED, Algorithm, HybridWeights, ModelVersion, TrainingRun, Trigger, algorithm_label
from .templatetags.what_if import what_if

# The held-out metrics that get a column of their own in the versions' list, with their headings.
LISTED_METRICS = (("ndcg", "NDCG@10"), ("recall", "recall@10"), ("mutual", "mutual@10"), ("coverage", "coverage"),
                  ("diversity", "diversity"))
VERSIONS_COMPARED = 6  # a version's metrics chart: it and up to this many of its algorithm's newest others


def retrain_now(modeladmin, request, algorithms: list[str]) -> None:
    """Queue a forced training of ``algorithms``; the outcome (or why not) becomes a message."""
    try:
        run = tasks.training_run_request(algorithms=algorithms, force_retrain=True, trigger=Trigger.ADMIN,
                                         requested_by=request.user)
    except services.DomainError as exc:
        modeladmin.message_user(request, exc.detail, messages.ERROR)
    else:
        assert run is not None  # None only when nothing changed and the run is not forced
        labels = ", ".join(algorithm_label(a) for a in algorithms)
        modeladmin.message_user(request, f"Training run {run.pk} ({labels}) is {run.status}; the staff training-runs "
                                         "page follows its progress.", messages.SUCCESS)


# ---------------------------------------------------------------- shown on the change pages


def _picture(png: bytes, alt: str) -> str:
    """A chart inline (a data: URL): the page needs no other request, nor admin another URL, to show it."""
    encoded = base64.b64encode(png).decode()
    return format_html('<img src="data:image/png;base64,{}" alt="{}" class="ml-plot" style="max-width:100%">',
                       encoded, alt)


def _raw(value) -> str:
    """The JSON as stored, folded away: what the pictures and tables above show, for whoever needs it whole."""
    if value in (None, {}, []):
        return "—"
    text = json.dumps(value, indent=1, sort_keys=True, default=str)
    return format_html('<details><summary>raw JSON ({} characters)</summary><pre style="white-space:pre-wrap;'
                       'max-height:32em;overflow:auto">{}</pre></details>', len(text), text)


def _metric(value) -> str:
    """Rates with 4 decimals; counts (users, k) as integers."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return str(int(value))
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# The order a version's metrics are listed in (JSON as PostgreSQL stores it has its keys in its own order).
METRIC_ORDER = ["ndcg", "recall", "mutual", "precision", "map", "hit", "mrr", "coverage", "diversity", "novelty",
                "gini", "users", "k"]


def _metrics_table(metrics: dict) -> str:
    if not metrics:
        return "—"
    ordered = sorted(metrics.items(), key=lambda item: (METRIC_ORDER.index(item[0]) if item[0] in METRIC_ORDER
                                                        else len(METRIC_ORDER), item[0]))
    rows = format_html_join("", "<tr><th>{}</th><td style='text-align:right'>{}</td></tr>",
                            ((name, _metric(value)) for name, value in ordered))
    return format_html('<table style="width:auto">{}</table>', rows)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["algorithm", "version", "status", *(f"metric_{name}" for name, _ in LISTED_METRICS),
                    "metric_users", "failure_reason", "created_at", "device", "fitted_in", "peak_memory_mb",
                    "n_interactions"]
    list_filter = ["algorithm", "status", "device"]

    @admin.display(description="fitted in", ordering="training_seconds")
    def fitted_in(self, version: ModelVersion) -> str:
        return "—" if version.training_seconds is None else f"{version.training_seconds:.2f} s"
    readonly_fields = [*(f.name for f in ModelVersion._meta.fields if f.name not in ("config", "metrics")),
                       "metrics_shown", "metrics_chart", "loss_chart", "config_raw", "metrics_raw"]
    fieldsets = [
        (None, {"fields": ["algorithm", "version", "status", "failure_reason", "training_run", "trigger",
                           "created_at", "activated_at"]}),
        ("Held-out metrics @10, served alone", {"fields": ["metrics_shown", "metrics_chart"]}),
        ("Training", {"fields": ["loss_chart", "device", "training_seconds", "peak_memory_mb", "n_users", "n_items",
                                 "n_interactions", "data_fingerprint", "artifact_path"]}),
        ("As stored", {"fields": ["config_raw", "metrics_raw"], "classes": ["collapse"]}),
    ]
    actions = ["activate", "roll_back", "retrain"]

    @admin.display(description="metrics")
    def metrics_shown(self, version: ModelVersion) -> str:
        return _metrics_table(training.whole_counts(version.metrics or {}))

    @admin.display(description="compared")
    def metrics_chart(self, version: ModelVersion) -> str:
        """This version beside its algorithm's newest others, each metric on its own scale, values written."""
        from recommendations import plots

        if not any(isinstance(v, int | float) for v in (version.metrics or {}).values()):
            return "No held-out metrics (the version was not measured)."
        others = (ModelVersion.objects.filter(algorithm=version.algorithm).exclude(pk=version.pk)
                  .exclude(metrics={}).exclude(metrics__has_key="error").order_by("-version")[:VERSIONS_COMPARED])
        shown = sorted([version, *others], key=lambda v: -v.version)
        png = plots.metrics_png([(v.algorithm, v.version, v.metrics) for v in shown],
                                highlight=(version.algorithm, version.version))
        return _picture(png, f"Held-out metrics of {version.label} beside the other versions of "
                             f"{algorithm_label(version.algorithm)}")

    @admin.display(description="loss curves")
    def loss_chart(self, version: ModelVersion) -> str:
        from recommendations import plots

        losses = progress.final_fit_losses(getattr(version.training_run, "progress", None), version.algorithm)
        if losses is None:
            return "—" if version.algorithm != Algorithm.TWO_TOWER else "Its run recorded no losses."
        title = f"{version.label}: its fit's loss per epoch"
        return _picture(plots.loss_curves_png({title: losses}), title)

    @admin.display(description="config")
    def config_raw(self, version: ModelVersion) -> str:
        return _raw(version.config)

    @admin.display(description="metrics")
    def metrics_raw(self, version: ModelVersion) -> str:
        return _raw(version.metrics)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Activate the selected version")
    def activate(self, request, queryset):
        for version in queryset:
            self._apply(request, services.model_version_activate, algorithm=version.algorithm,
                        version=version.version)

    @admin.action(description="Roll back to the previously active version of the selected algorithm(s)")
    def roll_back(self, request, queryset):
        for algorithm in sorted(set(queryset.values_list("algorithm", flat=True))):
            self._apply(request, services.model_version_roll_back, algorithm=algorithm)

    @admin.action(description="Retrain the selected algorithms now")
    def retrain(self, request, queryset):
        retrain_now(self, request, sorted(set(queryset.values_list("algorithm", flat=True))))

    def _apply(self, request, service, **kwargs):
        try:
            version = service(**kwargs)
        except services.DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
        else:
            self.message_user(request, f"{version.label} is now serving.", messages.SUCCESS)


def _metric_column(name: str, heading: str):
    @admin.display(description=heading, ordering=f"metrics__{name}")
    def column(self, version: ModelVersion) -> str:
        value = (version.metrics or {}).get(name)
        return "—" if value is None else _metric(value)
    return column


for _name, _heading in [*LISTED_METRICS, ("users", "held-out users")]:
    setattr(ModelVersionAdmin, f"metric_{_name}", _metric_column(_name, _heading))


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    """Read-only: runs are records of what happened (deleting an in-flight one would free the training
    lock under a running worker). "Retrain now" queues a new one."""

    list_display = ["id", "status", "algorithms_shown", "trigger", "requested_by", "created_at", "finished_at",
                    "seconds", "served_ndcg", "tuned_validation_ndcg"]
    list_filter = ["status", "trigger"]
    actions = ["retrain"]
    readonly_fields = ["algorithms_shown", "seconds", "skipped_shown", "phases", "loss_chart", "versions_shown",
                       "metrics_chart", "served_chart", "progress_raw", "metrics_raw", "tuned_raw", "served_raw"]
    fieldsets = [
        (None, {"fields": ["status", "algorithms_shown", "force_retrain", "trigger", "requested_by", "created_at",
                           "started_at", "finished_at", "seconds", "error", "skipped_shown", "not_activated"]}),
        ("Progress", {"fields": ["phases", "loss_chart"]}),
        ("Versions and their held-out metrics", {"fields": ["versions_shown", "metrics_chart"]}),
        ("Measured as served", {"fields": ["served_chart"]}),
        ("As stored", {"fields": ["progress_raw", "metrics_raw", "tuned_raw", "served_raw", "data_fingerprint",
                                  "celery_task_id", "heartbeat_at"], "classes": ["collapse"]}),
    ]

    @admin.display(description="algorithms")
    def algorithms_shown(self, run: TrainingRun) -> str:
        return ", ".join(algorithm_label(a) for a in run.algorithms)

    @admin.display(description="seconds")
    def seconds(self, run: TrainingRun) -> str:
        if not (run.started_at and run.finished_at):
            return "—"
        return f"{(run.finished_at - run.started_at).total_seconds():.1f}"

    @admin.display(description="skipped")
    def skipped_shown(self, run: TrainingRun) -> str:
        if not run.skipped:
            return "—"
        return format_html_join(mark_safe("<br>"), "{}: {}",
                                ((algorithm_label(a), why) for a, why in run.skipped.items()))

    @admin.display(description="phases")
    def phases(self, run: TrainingRun) -> str:
        """Each phase's time and each algorithm's progress in it (as the staff training-runs page shows it)."""
        table = progress.progress_table(run.progress, running=bool(run.in_flight))
        return mark_safe(render_to_string("ml/_run_progress.html", {"run": run, "table": table, "live": False}))

    @admin.display(description="loss curves")
    def loss_chart(self, run: TrainingRun) -> str:
        from recommendations import plots

        fits = progress.loss_fits(run.progress)
        if not fits:
            return "No fit in epochs (the Two-Tower trains in epochs)."
        return _picture(plots.loss_curves_png(dict(fits)), f"Loss per epoch of each fit of training run {run.pk}")

    @admin.display(description="versions")
    def versions_shown(self, run: TrainingRun) -> str:
        """Each version the run trained: status, NDCG@10, its final fit's time and peak memory."""
        versions = sorted(run.model_versions.all(), key=lambda v: Algorithm.values.index(v.algorithm))
        if not versions:
            return "—"
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td style='text-align:right'>{}</td>"
                                    "<td style='text-align:right'>{}</td><td style='text-align:right'>{}</td></tr>",
                                ((v.label, v.get_status_display(), _metric(v.metrics.get("ndcg")),
                                  "—" if v.training_seconds is None else f"{v.training_seconds:.2f} s",
                                  "—" if v.peak_memory_mb is None else f"{v.peak_memory_mb:.0f} MB")
                                 for v in versions))
        return format_html('<table style="width:auto"><tr><th>version</th><th>status</th><th>NDCG@10</th>'
                           '<th>final fit</th><th>peak memory</th></tr>{}</table>', rows)

    @admin.display(description="metrics")
    def metrics_chart(self, run: TrainingRun) -> str:
        from recommendations import plots

        versions = sorted(run.model_versions.all(), key=lambda v: Algorithm.values.index(v.algorithm))
        measured = [(v.algorithm, v.version, v.metrics) for v in versions
                    if any(isinstance(x, int | float) for x in (v.metrics or {}).values())]
        if not measured:
            return "No version of this run was measured."
        return _picture(plots.metrics_png(measured), f"Held-out metrics of the versions of training run {run.pk}")

    @admin.display(description="NDCG@10 as served")
    def served_chart(self, run: TrainingRun) -> str:
        from recommendations import plots

        if not run.served:
            return "Not measured (the run did not get that far, or nothing could be evaluated)."
        return _picture(plots.served_png(run.served), f"NDCG@10 as served of training run {run.pk}")

    @admin.display(description="progress")
    def progress_raw(self, run: TrainingRun) -> str:
        return _raw(run.progress)

    @admin.display(description="metrics")
    def metrics_raw(self, run: TrainingRun) -> str:
        return _raw(run.metrics)

    @admin.display(description="tuned")
    def tuned_raw(self, run: TrainingRun) -> str:
        return _raw(run.tuned)

    @admin.display(description="served")
    def served_raw(self, run: TrainingRun) -> str:
        return _raw(run.served)

    @admin.display(description="served NDCG@10 (popularity)")
    def served_ndcg(self, run: TrainingRun) -> str:
        """The set measured as the API serves it, beside popularity on the same held-out events."""
        if not run.served:
            return "—"
        served, popular = run.served["metrics"]["all"]["ndcg"], run.served["popularity"]["all"]["ndcg"]
        return "—" if served is None or popular is None else f"{served:.4f} ({popular:.4f})"

    @admin.display(description="tuned weights' validation NDCG")
    def tuned_validation_ndcg(self, run: TrainingRun) -> str:
        value = (run.tuned or {}).get("validation_ndcg")
        return "—" if value is None else f"{value:.4f}"

    def changelist_view(self, request, extra_context=None):
        training.release_stale_runs()  # a run whose worker died is listed as failed, not running for ever
        return super().changelist_view(request, extra_context)

    @admin.action(description="Retrain now (the algorithms of the selected runs)")
    def retrain(self, request, queryset):
        algorithms = sorted({a for run in queryset for a in run.algorithms})
        retrain_now(self, request, algorithms)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class _HybridWeightsForm(forms.ModelForm):
    """Mode "manual" pins the weights typed in (normalised, as the API does); "tuned" returns to each
    training's tuned weights, and the numbers are ignored."""

    class Meta:
        model = HybridWeights
        fields = ["mode", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mode"].help_text = _tuned_beside_current()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("mode") == HybridWeights.Mode.TUNED:
            self.instance.weights = selectors.tuned_weights()
            return cleaned
        raw = {name: cleaned[name] for name in BLENDED if cleaned.get(name) is not None}
        try:
            self.instance.weights = services.normalised_weights(raw)
        except services.DomainError as exc:
            raise forms.ValidationError(exc.detail) from None
        return cleaned


def _tuned_beside_current() -> str:
    """The weights in force and the latest training's tuned ones with their validation NDCG, to choose by."""
    state = selectors.weights_state()
    text = f"In force now ({state['mode']}): {_weights_text(state['weights'])}."
    tuned = state["tuned"]
    if tuned is None:
        return f"{text} No training has tuned weights yet."
    return (f"{text} Tuned by training run {tuned['training_run_id']} (validation NDCG "
            f"{tuned['validation_ndcg']}): {_weights_text(tuned['weights'])}.")


def _weights_text(weights: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in weights.items() if value > 0)


# One number per blended component, declared (through the form's metaclass) so that admin lays them out.
HybridWeightsForm = type("HybridWeightsForm", (_HybridWeightsForm,), {
    name: forms.FloatField(required=False, label=f"{label} weight")
    for name, label in [*Algorithm.choices, (POPULARITY, "Popularity")]})


@admin.register(HybridWeights)
class HybridWeightsAdmin(admin.ModelAdmin):
    """Saving creates a new row, so the list is the history of who changed the weights, when, and to which
    mode; rows are neither changed nor deleted, so that history stays whole. "Preview" measures the weights
    entered beside those in force (the what-if) and shows the form again, saving nothing."""

    form = HybridWeightsForm
    PREVIEW = "_preview"  # the name of the form's Preview button
    list_display = ["changed_at", "mode", "weights_shown", "changed_by", "note"]
    list_filter = ["mode"]

    @admin.display(description="weights")
    def weights_shown(self, obj: HybridWeights) -> str:
        return _weights_text(obj.as_dict())

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        obj.changed_by = request.user
        super().save_model(request, obj, form, change)

    def add_view(self, request, form_url="", extra_context=None):
        if request.method == "POST" and self.PREVIEW in request.POST:
            form = self.get_form(request)(request.POST)
            if form.is_valid():  # invalid weights take the usual path: the form with its errors, nothing saved
                # The add form again, filled in with what was entered (admin fills a new form from the query
                # string), with the measured weights: the ones clean() normalised, or tuned mode's.
                request = copy.copy(request)
                request.method, request.GET = "GET", request.POST.copy()
                extra_context = {**(extra_context or {}), "what_if": what_if(form.instance.weights)}
        return super().add_view(request, form_url, extra_context)
