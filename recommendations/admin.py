from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from recsys_site.exceptions import DomainError

from . import experiments
from .models import Experiment, Impression


@admin.register(Impression)
class ImpressionAdmin(admin.ModelAdmin):
    """Read-only: impressions are what the service showed; only pruning removes them."""

    list_display = ["id", "user", "user_type", "created_at", "fallback", "experiment", "variant"]
    list_filter = ["user_type", "fallback", "experiment"]
    search_fields = ["=id", "user__username"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "experiment"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ExperimentForm(forms.ModelForm):
    """The variants checked here by the services' own rules, so that a bad definition is a form error
    that says what is wrong; the admin then saves through the services."""

    class Meta:
        model = Experiment
        fields = ["name", "variants", "metric", "starts_at", "ends_at"]
        help_texts = {"variants": 'A list of {"name", "share", "weights"?, "model_versions"?}; the shares sum to '
                                  "at most 1 and the rest of the users is the control."}

    def clean_variants(self):
        try:
            return experiments.clean_variants(self.cleaned_data["variants"])
        except ValidationError as error:
            raise ValidationError(error.message_dict["variants"]) from error


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    list_display = ["name", "status", "metric", "shares", "starts_at", "ends_at", "started_at", "stopped_at",
                    "promoted_variant"]
    list_filter = ["status"]
    search_fields = ["name"]
    actions = ["start", "stop"]
    STARTED_READONLY = ["name", "variants", "metric", "starts_at", "ends_at", "status", "created_by", "started_at",
                        "stopped_at", "promoted_variant", "results"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if obj.status == Experiment.Status.DRAFT:
            return ["status", "created_by"]
        return self.STARTED_READONLY

    def get_fields(self, request, obj=None):
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            return self.STARTED_READONLY
        return super().get_fields(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # A draft only (the service's rule): a started experiment's impressions are its results.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Experiment.Status.DRAFT)

    @admin.display(description="shares")
    def shares(self, experiment: Experiment) -> str:
        parts = [f"{variant['name']} {variant['share']:.0%}" for variant in experiment.variants]
        rest = 1 - sum(variant["share"] for variant in experiment.variants)
        return " · ".join([*parts, f"{experiments.CONTROL} {max(rest, 0):.0%}"])

    @admin.display(description="results")
    def results(self, experiment: Experiment) -> str:
        """One aggregate query: shown on the change form only, never once per row of the list."""
        found = experiments.experiment_results(experiment=experiment)
        metric = found["experiment"]["metric"]
        lines = []
        for group in (found["control"], *found["variants"]):
            rate = group["rates"][metric]
            line = f"{group['name']}: {group['users']} users, {metric} " + ("—" if rate is None else f"{rate:.4f}")
            if "p_value" in group and group["p_value"] is not None:
                line += f" (p = {group['p_value']:.3g}, users still needed: {group['users_needed']})"
            lines.append(line)
        lines.append(f"winner: {found['winner'] or 'none yet'}")
        return "; ".join(lines)

    def save_model(self, request, obj, form, change):
        if not change:
            created = experiments.experiment_create(
                **{name: form.cleaned_data[name] for name in ExperimentForm.Meta.fields}, created_by=request.user)
            obj.pk = created.pk
            return
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in ExperimentForm.Meta.fields}
        if not data:  # a started experiment's form is read-only: saving it changes nothing
            return
        try:
            experiments.experiment_update(experiment=obj, data=data)
        except DomainError as error:  # started meanwhile
            self.message_user(request, error.detail, messages.ERROR)

    def delete_model(self, request, obj):
        experiments.experiment_delete(experiment=obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the delete button of a draft goes through the service
        for name in self._promotable_variants():
            actions[f"promote:{name}"] = (self._promoter(name), f"promote:{name}",
                                          f"Promote variant “{name}”: its weights and versions in force")
        return actions

    @admin.action(description="Start the selected draft")
    def start(self, request, queryset):
        self._each(request, queryset, experiments.experiment_start, "is running")

    @admin.action(description="Stop the selected experiments")
    def stop(self, request, queryset):
        self._each(request, queryset, experiments.experiment_stop, "is stopped")

    @staticmethod
    def _promotable_variants() -> list[str]:
        """One promote action per variant name of the running or stopped experiments not yet promoted."""
        unpromoted = Experiment.objects.filter(status__in=[Experiment.Status.RUNNING, Experiment.Status.STOPPED],
                                               promoted_variant="").values_list("variants", flat=True)
        return sorted({variant["name"] for variants in unpromoted for variant in variants})

    def _promoter(self, variant: str):
        def promote(modeladmin, request, queryset):
            modeladmin._each(request, queryset, lambda *, experiment: experiments.experiment_promote(
                experiment=experiment, variant=variant, promoted_by=request.user), f"promoted {variant!r}")
        return promote

    def _each(self, request, queryset, service, done: str) -> None:
        for experiment in queryset:
            try:
                service(experiment=experiment)
            except DomainError as error:
                self.message_user(request, error.detail, messages.ERROR)
            except ValidationError as error:
                self.message_user(request, f"{experiment.name}: {' '.join(error.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"Experiment {experiment.name!r} {done}.", messages.SUCCESS)
