import copy

from django import forms
from django.contrib import admin, messages

from ml.core.registry import POPULARITY

from . import selectors, services, tasks, training
from .models import BLENDED, Algorithm, HybridWeights, ModelVersion, TrainingRun, Trigger
from .templatetags.what_if import what_if


def retrain_now(modeladmin, request, algorithms: list[str]) -> None:
    """Queue a forced training of ``algorithms``; the outcome (or why not) becomes a message."""
    try:
        run = tasks.training_run_request(algorithms=algorithms, force_retrain=True, trigger=Trigger.ADMIN,
                                         requested_by=request.user)
    except services.DomainError as exc:
        modeladmin.message_user(request, exc.detail, messages.ERROR)
    else:
        assert run is not None  # None only when nothing changed and the run is not forced
        modeladmin.message_user(request, f"Training run {run.pk} ({', '.join(algorithms)}) is {run.status}.",
                                messages.SUCCESS)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["algorithm", "version", "status", "failure_reason", "created_at", "activated_at", "device",
                    "training_seconds", "peak_memory_mb", "n_users", "n_items", "n_interactions"]
    list_filter = ["algorithm", "status", "device"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["activate", "roll_back", "retrain"]

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
            self.message_user(request, f"{version} is now serving.", messages.SUCCESS)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    """Read-only: runs are records of what happened (deleting an in-flight one would free the training
    lock under a running worker). "Retrain now" queues a new one."""

    list_display = ["id", "status", "algorithms", "trigger", "requested_by", "created_at", "finished_at",
                    "served_ndcg", "tuned_validation_ndcg"]
    list_filter = ["status", "trigger"]
    actions = ["retrain"]

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
