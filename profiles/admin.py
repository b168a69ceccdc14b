from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

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
    fields = readonly_fields = ["created_at", "kind", "position", "startup", "developer", "investor"]
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
