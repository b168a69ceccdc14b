"""Who may do what in the profiles API (docs/api.md, "Authentication and who may do what").

Every view also requires authentication (the project default), so these classes only decide
between users who are logged in.
"""
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import Role, Startup
from .selectors import is_founder_of, role_of


class IsOwnProfileOrStaff(BasePermission):
    message = "You may read and edit only your own profile."

    def has_object_permission(self, request, view, obj) -> bool:
        return request.user.is_staff or obj.user_id == request.user.pk


class IsStaffOrReadOnly(BasePermission):
    message = "Only staff may change the vocabulary."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or request.user.is_staff


class IsFounderToCreate(BasePermission):
    """Creating a startup makes its creator a founder of it, so only founders (and staff) create."""

    message = "Only founders may create startups; register with the role 'founder'."

    def has_permission(self, request, view) -> bool:
        return view.action != "create" or request.user.is_staff or role_of(request.user) == Role.FOUNDER


class IsStartupFounderOrReadOnly(BasePermission):
    """A startup, or a position under it, is changed only by the startup's founders (and staff)."""

    message = "Only the startup's founders may change it."

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return can_manage_startup(request.user, obj if isinstance(obj, Startup) else obj.startup)


def can_manage_startup(user, startup: Startup) -> bool:
    return user.is_staff or is_founder_of(user=user, startup=startup)


def ensure_can_manage_startup(user, startup: Startup) -> None:
    """For a position's target startup, known only once the request body is validated."""
    if not can_manage_startup(user, startup):
        raise PermissionDenied(f"Only the founders of startup {startup.pk} may add or move positions to it.")
