from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.crypto import salted_hmac
from knox.models import AuthToken

from . import services
from .models import Developer, Founder, Industry, Interaction, Investor, Position, Skill, Startup


@admin.register(Industry)
class IndustryAdmin(admin.ModelAdmin):
    list_display = ["name", "skill_count"]
    search_fields = ["name"]

    @admin.display(description="skills")
    def skill_count(self, industry: Industry) -> int:
        return industry.skills.count()


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "industry"]
    list_filter = ["industry"]
    search_fields = ["name"]
    autocomplete_fields = ["industry"]


@admin.register(Developer)
class DeveloperAdmin(admin.ModelAdmin):
    list_display = ["user", "headline", "years_experience", "remote_preference", "desired_salary", "location"]
    list_filter = ["remote_preference", "preferred_industries"]
    search_fields = ["user__username", "user__email", "headline", "location", "skills__name"]
    autocomplete_fields = ["user", "skills", "preferred_industries"]
    list_select_related = ["user"]


@admin.register(Founder)
class FounderAdmin(admin.ModelAdmin):
    list_display = ["user", "years_experience", "location"]
    search_fields = ["user__username", "user__email", "location"]
    autocomplete_fields = ["user", "skills"]
    list_select_related = ["user"]


@admin.register(Investor)
class InvestorAdmin(admin.ModelAdmin):
    list_display = ["user", "firm", "check_size_min", "check_size_max", "location"]
    list_filter = ["preferred_industries"]
    search_fields = ["user__username", "user__email", "firm", "location"]
    autocomplete_fields = ["user", "preferred_industries"]
    list_select_related = ["user"]


class PositionInline(admin.TabularInline):
    model = Position
    extra = 0
    fields = ["title", "status", "salary_min", "salary_max", "remote", "years_experience_required", "location"]
    show_change_link = True


@admin.register(Startup)
class StartupAdmin(admin.ModelAdmin):
    list_display = ["name", "industry", "stage", "team_size", "funding_raised", "remote_friendly", "location"]
    list_filter = ["stage", "industry", "remote_friendly"]
    search_fields = ["name", "description", "location"]
    autocomplete_fields = ["founders", "industry", "required_skills"]
    list_select_related = ["industry"]
    inlines = [PositionInline]


@admin.register(Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = ["title", "startup", "status", "salary_min", "salary_max", "remote", "created_at"]
    list_filter = ["status", "remote", "startup__industry"]
    search_fields = ["title", "description", "startup__name", "required_skills__name"]
    autocomplete_fields = ["startup", "required_skills"]
    list_select_related = ["startup"]
    date_hierarchy = "created_at"


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "kind", "position", "startup", "developer", "investor"]
    list_filter = ["kind"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user", "position", "startup", "developer", "investor"]
    list_select_related = ["user", "position", "startup", "developer__user", "investor__user"]
    date_hierarchy = "created_at"


class ReadOnlyInteractionInline(admin.TabularInline):
    """A user's history, shown for context; events are facts, not something staff edit."""

    model = Interaction
    fk_name = "user"
    extra = 0
    max_num = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "kind", "position", "startup", "developer", "investor")
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserWithHistoryAdmin(UserAdmin):
    inlines = [ReadOnlyInteractionInline]


# --- API tokens -------------------------------------------------------------------------------------
# Knox's own admin lists every token's digest and can mint tokens. Here staff see whose token it is and
# when it expires, and can revoke tokens; nothing else. The digest is the token's primary key, so it would
# otherwise appear in each row's link and checkbox and in the token's name: there is no page per token, the
# checkbox carries an opaque handle, and a token is named without it wherever Django names objects (labels,
# the list of what a user's deletion removes, messages).
def _token_name(token: AuthToken) -> str:
    return f"API token of {token.user} created {token.created:%Y-%m-%d %H:%M}"


AuthToken.__str__ = _token_name
admin.site.unregister(AuthToken)


def token_handle(digest: str) -> str:
    """Stands for the token in the page; derived from the digest with the site's secret, reveals nothing of it."""
    return salted_hmac("profiles.admin.token_handle", digest).hexdigest()[:32]


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "created", "expiry"]
    list_display_links = None
    list_select_related = ["user"]
    search_fields = ["user__username"]
    ordering = ["-created"]
    fields = readonly_fields = ("user", "created", "expiry")
    actions = ["revoke"]

    def get_urls(self):
        # No page per token: its address would hold the digest (the primary key), and links to it would appear
        # wherever Django lists tokens, e.g. in what deleting a user removes.
        return [url for url in super().get_urls() if url.name and url.name.endswith(("_changelist", "_add"))]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # its confirmation page lists the selected tokens' digests
        return actions

    def action_checkbox(self, token: AuthToken):
        # ModelAdmin's, with the handle for the primary key
        checkbox = forms.CheckboxInput({"class": "action-select", "aria-label": f"Select {token} for an action"},
                                       lambda value: False)
        return checkbox.render(ACTION_CHECKBOX_NAME, token_handle(token.digest))

    def response_action(self, request, queryset):
        # The checkboxes carry handles; the action Django runs wants primary keys.
        chosen = set(request.POST.getlist(ACTION_CHECKBOX_NAME))
        post = request.POST.copy()
        post.setlist(ACTION_CHECKBOX_NAME, [digest for digest in queryset.values_list("digest", flat=True)
                                            if token_handle(digest) in chosen])
        request.POST = post
        return super().response_action(request, queryset)

    @admin.action(description="Revoke the selected API tokens", permissions=["delete"])
    def revoke(self, request, queryset):
        tokens = list(queryset)
        for token in tokens:
            services.auth_token_revoke(token=token)
        self.message_user(request, f"Revoked {len(tokens)} API token(s).", messages.SUCCESS)

