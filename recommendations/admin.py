from django.contrib import admin

from .models import Impression


@admin.register(Impression)
class ImpressionAdmin(admin.ModelAdmin):
    """Read-only: impressions are what the service showed; only pruning removes them."""

    list_display = ["id", "user", "user_type", "created_at", "fallback", "variant"]
    list_filter = ["user_type", "fallback"]
    search_fields = ["=id", "user__username"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
