"""Reads of the profiles app: querysets shaped for the API, and questions about people.

Querysets prefetch what their serializers show, so a page costs a fixed number of queries.
"""
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .models import (
    TARGET_FIELDS,
    Developer,
    Founder,
    Industry,
    Interaction,
    Investor,
    Position,
    Role,
    Skill,
    Startup,
)

Profile = Developer | Founder | Investor


def role_of(user: AbstractBaseUser | AnonymousUser) -> str | None:
    """The user's one role: which of the three profiles exists (None for a user without one)."""
    if not user.is_authenticated:
        return None
    # Each reverse one-to-one raises (an AttributeError) when the profile is missing; Django caches
    # the answer on the user object, so asking twice costs nothing.
    return next((role.value for role in Role if hasattr(user, role.value)), None)


def profile_of(user: AbstractBaseUser | AnonymousUser) -> Profile | None:
    role = role_of(user)
    return getattr(user, role) if role else None


def developer_list() -> QuerySet[Developer]:
    return (Developer.objects.select_related("user").prefetch_related("skills", "preferred_industries")
            .order_by("user_id"))


def founder_list() -> QuerySet[Founder]:
    return Founder.objects.select_related("user").prefetch_related("skills", "startups").order_by("user_id")


def investor_list() -> QuerySet[Investor]:
    return Investor.objects.select_related("user").prefetch_related("preferred_industries").order_by("user_id")


def startup_list() -> QuerySet[Startup]:
    return Startup.objects.select_related("industry").prefetch_related("required_skills", "founders")


def position_list() -> QuerySet[Position]:
    return Position.objects.prefetch_related("required_skills")


def skill_list() -> QuerySet[Skill]:
    return Skill.objects.select_related("industry")


def industry_list() -> QuerySet[Industry]:
    return Industry.objects.all()


def interaction_list(*, user_id: int, kind: str | None = None, item_type: str | None = None) -> QuerySet[Interaction]:
    """One user's events, newest first (the model's ordering)."""
    interactions = Interaction.objects.filter(user_id=user_id)
    if kind:
        interactions = interactions.filter(kind=kind)
    if item_type:
        interactions = interactions.filter(**{f"{TARGET_FIELDS[item_type]}__isnull": False})
    return interactions


def is_founder_of(*, user: AbstractBaseUser | AnonymousUser, startup: Startup) -> bool:
    return user.is_authenticated and startup.founders.filter(pk=user.pk).exists()
