"""Writes of the profiles app.

Every write goes through here, whoever calls it (API, admin actions, commands), so the rules that
the database cannot express live here once: one role per user, ordered ranges checked with a message
that names the field, skill names stored lower-case. Failures raise Django ``ValidationError`` keyed
by field, which the API's one exception handler turns into a 400 field-error map.
"""
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from knox.models import AuthToken

from ml.platform_data import item_key
from recommendations.models import Impression
from recommendations.services import impressions_flush
from recsys_site.exceptions import Conflict

from .models import (
    OUTCOME_OF_KIND,
    TARGET_FIELDS,
    Developer,
    Founder,
    Industry,
    Interaction,
    InteractionKind,
    Investor,
    ItemType,
    Position,
    Role,
    Skill,
    Stage,
    Startup,
    a_or_an,
)
from .selectors import Profile, role_of

PROFILE_MODELS: dict[str, type[Profile]] = {Role.DEVELOPER: Developer, Role.FOUNDER: Founder, Role.INVESTOR: Investor}
TARGET_MODELS: dict[str, type[models.Model]] = {
    ItemType.POSITION: Position, ItemType.STARTUP: Startup, ItemType.DEVELOPER: Developer, ItemType.INVESTOR: Investor,
}
PERSON_ITEM_TYPES = {ItemType.DEVELOPER, ItemType.INVESTOR}


def _require_ordered(*, low: int | None, high: int | None, low_field: str, high_field: str) -> None:
    if low is not None and high is not None and low > high:
        raise ValidationError({high_field: f"{high_field} ({high}) must be at least {low_field} ({low})."})


def _apply(instance: models.Model, data: dict[str, Any]) -> None:
    """Set plain fields and save, then replace many-to-many sets (they need a saved row)."""
    many_to_many = {field.name for field in instance._meta.many_to_many}
    for name, value in data.items():
        if name not in many_to_many:
            setattr(instance, name, value)
    instance.save()
    for name, value in data.items():
        if name in many_to_many:
            getattr(instance, name).set(value)


# --- users and profiles ---------------------------------------------------------------------------

@transaction.atomic
def profile_create(*, user: User, role: str) -> Profile:
    """Give a user their one role; a second profile is refused."""
    existing = role_of(user)
    if existing is not None:
        raise Conflict(f"User {user.pk} is already {a_or_an(existing)}; a user has exactly one role.")
    if role not in PROFILE_MODELS:
        raise ValidationError({"role": f"Unknown role {role!r}; expected one of {', '.join(Role.values)}."})
    return PROFILE_MODELS[role].objects.create(user=user)


class IssuedToken(NamedTuple):
    token: AuthToken
    key: str  # the secret, shown to the client once: only its digest is stored


@transaction.atomic
def user_register(*, username: str, password: str, email: str, role: str) -> tuple[User, IssuedToken]:
    """Create a user, an empty profile of their role and their first API token: all of it or none."""
    user_model = get_user_model()
    user = user_model(username=username, email=email)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from error
    if user_model.objects.filter(username=username).exists():
        raise ValidationError({"username": f"The username {username!r} is taken."})
    user.set_password(password)
    user.save()
    profile_create(user=user, role=role)
    return user, auth_token_issue(user=user)


@transaction.atomic
def auth_token_issue(*, user: User) -> IssuedToken:
    """A new API token for the user, expiring after TOKEN_TTL_HOURS. Each log-in gets its own, so revoking
    one (logging out a device) leaves the others; the user's expired tokens are dropped here."""
    AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
    return IssuedToken(*AuthToken.objects.create(user=user))


def auth_token_revoke(*, token: AuthToken) -> None:
    token.delete()


def auth_tokens_revoke_all(*, user: User) -> int:
    """Revoke every API token of the user (their password changed); how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted


@transaction.atomic
def developer_update(*, developer: Developer, data: dict[str, Any]) -> Developer:
    _apply(developer, data)
    return developer


@transaction.atomic
def founder_update(*, founder: Founder, data: dict[str, Any]) -> Founder:
    _apply(founder, data)
    return founder


@transaction.atomic
def investor_update(*, investor: Investor, data: dict[str, Any]) -> Investor:
    _require_ordered(low=data.get("check_size_min", investor.check_size_min),
                     high=data.get("check_size_max", investor.check_size_max),
                     low_field="check_size_min", high_field="check_size_max")
    if "preferred_stages" in data:
        unknown = [stage for stage in data["preferred_stages"] if stage not in Stage.values]
        if unknown:
            raise ValidationError({"preferred_stages": f"Unknown stage(s) {', '.join(map(str, unknown))}; "
                                                       f"expected any of {', '.join(Stage.values)}."})
        data = {**data, "preferred_stages": list(dict.fromkeys(data["preferred_stages"]))}
    _apply(investor, data)
    return investor


# --- catalog --------------------------------------------------------------------------------------

@transaction.atomic
def startup_create(
    *,
    founder: Founder | None,
    name: str,
    industry: Industry,
    stage: str = Stage.IDEA,
    team_size: int = 1,
    funding_raised: int = 0,
    required_skills: Iterable[Skill] = (),
    location: str = "",
    remote_friendly: bool = False,
    description: str = "",
    raising: bool = False,
    round_size: int | None = None,
    round_closes_at: datetime | None = None,
) -> Startup:
    """A new startup; its creator (when a founder) becomes one of its founders."""
    startup = Startup.objects.create(
        name=name, industry=industry, stage=stage, team_size=team_size, funding_raised=funding_raised,
        location=location, remote_friendly=remote_friendly, description=description, raising=raising,
        round_size=round_size, round_closes_at=round_closes_at,
    )
    startup.required_skills.set(required_skills)
    if founder is not None:
        startup.founders.add(founder)
    return startup


@transaction.atomic
def startup_update(*, startup: Startup, data: dict[str, Any]) -> Startup:
    _apply(startup, data)
    return startup


def startup_delete(*, startup: Startup) -> None:
    startup.delete()


@transaction.atomic
def position_create(
    *,
    startup: Startup,
    title: str,
    description: str = "",
    required_skills: Iterable[Skill] = (),
    salary_min: int | None = None,
    salary_max: int | None = None,
    remote: bool = False,
    years_experience_required: int = 0,
    location: str = "",
    status: str = Position.Status.OPEN,
    openings: int = 1,
) -> Position:
    _require_ordered(low=salary_min, high=salary_max, low_field="salary_min", high_field="salary_max")
    position = Position.objects.create(
        startup=startup, title=title, description=description, salary_min=salary_min, salary_max=salary_max,
        remote=remote, years_experience_required=years_experience_required, location=location, status=status,
        openings=openings,
    )
    position.required_skills.set(required_skills)
    return position


@transaction.atomic
def position_update(*, position: Position, data: dict[str, Any]) -> Position:
    _require_ordered(low=data.get("salary_min", position.salary_min), high=data.get("salary_max", position.salary_max),
                     low_field="salary_min", high_field="salary_max")
    _apply(position, data)
    return position


def position_delete(*, position: Position) -> None:
    position.delete()


def position_applicants_refresh(*, position_ids: Iterable[int] | None = None) -> int:
    """Set the ``applicants`` counter of the positions ``position_ids`` (None: all) to the distinct users with
    an application to each; how many rows were updated. One UPDATE with a correlated count, so that the
    counter is right however often a user applies and whichever path wrote the events (the API, a bulk
    import, the seeder). ``updated_at`` is left alone: an application is no edit of the position."""
    distinct_users = (Interaction.objects.filter(position=models.OuterRef("pk"), kind=InteractionKind.APPLY)
                      .order_by().values("position").annotate(n=models.Count("user", distinct=True)).values("n"))
    positions = Position.objects.all() if position_ids is None else Position.objects.filter(pk__in=list(position_ids))
    return positions.update(applicants=Coalesce(models.Subquery(distinct_users), 0))


def _skill_name(name: str, *, excluding: Skill | None = None) -> str:
    """The stored form of a skill name; refuses a name another skill has in any letter case."""
    normalized = name.strip().lower()
    if not normalized:
        raise ValidationError({"name": "A skill needs a name."})
    clashing = Skill.objects.filter(name=normalized)
    if excluding is not None:
        clashing = clashing.exclude(pk=excluding.pk)
    if clashing.exists():
        raise ValidationError({"name": f"The skill {normalized!r} already exists."})
    return normalized


@transaction.atomic
def skill_create(*, name: str, industry: Industry | None = None) -> Skill:
    return Skill.objects.create(name=_skill_name(name), industry=industry)


@transaction.atomic
def skill_update(*, skill: Skill, data: dict[str, Any]) -> Skill:
    if "name" in data:
        data = {**data, "name": _skill_name(data["name"], excluding=skill)}
    _apply(skill, data)
    return skill


def skill_delete(*, skill: Skill) -> None:
    skill.delete()


# --- interactions ---------------------------------------------------------------------------------

# Attribution reads at most this many of the user's latest impressions in the window: a bound on its cost
# however often the user asks for recommendations.
ATTRIBUTION_CANDIDATES = 100


def interaction_record(*, user: User, item_type: str, item_id: int, kind: str,
                       impression_id: uuid.UUID | None = None) -> Interaction:
    """Record that ``user`` did ``kind`` to one item, now, attributed to the recommendation it answers.

    People (developers, investors) are recommended to founders only, so only founders act on them.
    ``impression_id`` (the API's recommendation_id) names the impression the event answers: the user's, and
    it must have shown the item. Without it, the latest impression within ATTRIBUTION_WINDOW_HOURS that
    showed the item, if any. The outcome (click, positive, ...) is stored only for an attributed event.

    An ``accept`` is the target of a contact or application accepting it (``_require_accepted_event``): it
    answers that event, not a recommendation, so it is never attributed.
    """
    accepting = kind == InteractionKind.ACCEPT
    role = role_of(user)
    if accepting:
        _require_acceptable(role, item_type)
    elif item_type in PERSON_ITEM_TYPES and role != Role.FOUNDER:
        raise ValidationError({"item_type": f"Only founders may record interactions with a {item_type}; "
                                            "others may target a position or a startup."})
    target = TARGET_MODELS[item_type]._default_manager.filter(pk=item_id).first()
    if target is None:
        raise ValidationError({"item_id": f"No {item_type} has id {item_id}."})
    if accepting:
        if impression_id is not None:
            raise ValidationError({"recommendation_id": "An accept answers a contact or application made to you, "
                                                        "not a recommendation: send it without recommendation_id."})
        assert role is not None  # _require_acceptable refuses a user without a role
        _require_accepted_event(user, role, item_type, item_id)
        impression_id, rank = None, None
    else:
        key = item_key(item_type, item_id)
        # This process's answers are written in batches (recommendations.services): the one this event answers
        # may still be held. Another process writes its own within IMPRESSION_FLUSH_SECONDS.
        impressions_flush()
        impression_id, rank = (_named_impression(user, key, impression_id) if impression_id is not None
                               else _latest_impression_showing(user, key))
    with transaction.atomic():  # the event and the position's applicant count, together
        interaction = Interaction.objects.create(user=user, kind=kind, created_at=timezone.now(),
                                                 impression_id=impression_id, rank=rank,
                                                 outcome=OUTCOME_OF_KIND.get(kind, "") if impression_id else "",
                                                 **{TARGET_FIELDS[item_type]: target})
        if kind == InteractionKind.APPLY and item_type == ItemType.POSITION:
            position_applicants_refresh(position_ids=[item_id])
    return interaction


# (accepter's role, what they accept): each is accepted when the event below was made to the accepter.
ACCEPTABLE = {(Role.FOUNDER, ItemType.DEVELOPER), (Role.FOUNDER, ItemType.INVESTOR),
              (Role.DEVELOPER, ItemType.STARTUP), (Role.INVESTOR, ItemType.STARTUP)}
_WHAT_CAN_BE_ACCEPTED = ("a founder accepts a developer who applied to a position of their startup, or an investor "
                         "who contacted (or showed investment interest in) their startup; a developer or an investor "
                         "accepts a startup whose founder contacted them")


def _require_acceptable(role: str | None, item_type: str) -> None:
    if (role, item_type) not in ACCEPTABLE:
        who = a_or_an(role) if role else "a user without a role"
        raise ValidationError({"kind": f"Only a contact or application can be accepted, and {who} cannot accept "
                                       f"{a_or_an(item_type)}: {_WHAT_CAN_BE_ACCEPTED}."})


def _require_accepted_event(user: User, role: str, item_type: str, item_id: int) -> None:
    """The contact or application that ``user`` accepts by accepting ``item_type`` ``item_id`` must exist: one
    bounded query (an EXISTS on the interactions of one user, or made to one person)."""
    founded = Startup.founders.through.objects.filter(founder_id=user.pk).values("startup_id")  # a subquery
    if role == Role.FOUNDER and item_type == ItemType.DEVELOPER:
        answered = Interaction.objects.filter(user_id=item_id, kind=InteractionKind.APPLY,
                                              position__startup__in=founded)
        missing = f"developer {item_id} has applied to no position of a startup you found"
    elif role == Role.FOUNDER:  # an investor
        answered = Interaction.objects.filter(user_id=item_id, startup__in=founded,
                                              kind__in=[InteractionKind.CONTACT, InteractionKind.INVEST_INTEREST])
        missing = (f"investor {item_id} has neither contacted nor shown investment interest in a startup you "
                   "found")
    else:  # a developer or an investor accepts a startup whose founder contacted them
        founders = Startup.founders.through.objects.filter(startup_id=item_id).values("founder_id")
        answered = Interaction.objects.filter(kind=InteractionKind.CONTACT, user__in=founders,
                                              **{TARGET_FIELDS[role]: user.pk})
        missing = f"no founder of startup {item_id} has contacted you"
    if not answered.exists():
        raise ValidationError({"kind": f"An accept answers a contact or application made to you, and {missing}: "
                                       f"{_WHAT_CAN_BE_ACCEPTED}."})


class Attribution(NamedTuple):
    impression_id: uuid.UUID | None
    rank: int | None  # the item's 1-based position in that impression


def _named_impression(user: User, key: str, recommendation_id: uuid.UUID) -> Attribution:
    items = Impression.objects.filter(pk=recommendation_id, user=user).values_list("items", flat=True).first()
    if items is None:
        raise ValidationError({"recommendation_id": f"No recommendation {recommendation_id} was made to you (or "
                                                    "not recorded yet: send it again in a second)."})
    if key not in items:
        raise ValidationError({"recommendation_id": f"Recommendation {recommendation_id} did not show {key}."})
    return Attribution(recommendation_id, items.index(key) + 1)


def _latest_impression_showing(user: User, key: str) -> Attribution:
    """One bounded read on (user, created_at): the user's latest impressions in the window, newest first."""
    since = timezone.now() - timedelta(hours=settings.ATTRIBUTION_WINDOW_HOURS)
    recent = (Impression.objects.filter(user=user, created_at__gte=since).order_by("-created_at")
              .values_list("id", "items")[:ATTRIBUTION_CANDIDATES])
    return next((Attribution(pk, items.index(key) + 1) for pk, items in recent if key in items),
                Attribution(None, None))
