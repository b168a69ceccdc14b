"""Shapes of the profiles API: input validation and output representation.

Serializers validate types, ranges and names and show rows; they never write. The views hand
``validated_data`` to the services in ``services.py``.
"""
import operator
from collections import defaultdict
from functools import cache, reduce

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import CheckConstraint, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import (
    Developer,
    Founder,
    Industry,
    Interaction,
    InteractionKind,
    Investor,
    ItemType,
    Outcome,
    Position,
    Role,
    Skill,
    Stage,
    Startup,
)
from .selectors import role_of

# The largest id a client may send; bigger numbers are refused before they reach the database
# (SQLite raises OverflowError, not "no such row", on a number wider than 64 bits).
MAX_ID = 2**63 - 1
# The most items a list in a request may hold (names of skills or industries, stages, item types, algorithms):
# far more than any profile needs, few enough that one request stays one cheap query.
MAX_LIST_ITEMS = 100


@extend_schema_field(OpenApiTypes.STR)
class NameField(serializers.SlugRelatedField):
    """A skill or industry referred to by name, in any letter case; an unknown name is refused by name."""

    default_error_messages = {
        "does_not_exist": "Unknown {kind} {value!r}; see {listing} for the known names.",
        "invalid": "Expected a {kind} name (a string without NUL characters).",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="name", **kwargs)

    def to_internal_value(self, data):
        name = self.clean_name(data)
        row = rows_by_name(self.get_queryset(), [name]).get(name)
        if row is None:
            self.fail("does_not_exist", kind=self.kind(), value=data, listing=self.listing())
        return row

    def clean_name(self, data) -> str:
        # PostgreSQL cannot compare a string holding NUL, so such a name is refused before the query.
        if not isinstance(data, str) or "\x00" in data:
            self.fail("invalid", kind=self.kind())
        return data.strip()

    def kind(self, plural: bool = False) -> str:
        queryset = self.get_queryset()
        assert queryset is not None  # every name field is given its queryset
        meta = queryset.model._meta
        return str(meta.verbose_name_plural if plural else meta.verbose_name)

    def listing(self) -> str:
        return f"/api/v1/{self.kind(plural=True)}/"


def rows_by_name(queryset, names: list[str]) -> dict[str, models.Model]:
    """The row each name refers to in any letter case, read in one query; unknown names are left out.

    Industry names are unique only as typed ("AI" and "ai" may both exist): the exact one wins.
    """
    if not names:
        return {}
    rows_by_lower = defaultdict(list)
    for row in queryset.filter(reduce(operator.or_, (Q(name__iexact=name) for name in set(names)))):
        rows_by_lower[row.name.lower()].append(row)
    found = {}
    for name in names:
        if matches := rows_by_lower.get(name.lower()):
            found[name] = next((row for row in matches if row.name == name), matches[0])
    return found


@extend_schema_field({"type": "array", "items": {"type": "string"}, "maxItems": MAX_LIST_ITEMS})
class NameListField(serializers.ManyRelatedField):
    """A list of names as NameField reads one, resolved together in one query, at most MAX_LIST_ITEMS of them;
    every unknown name is named in one error."""

    default_error_messages = {
        "too_many": "At most {limit} names per list; got {count}.",
        "does_not_exist": "Unknown {kind} {names}; see {listing} for the known names.",
    }

    def __init__(self, *, queryset, **kwargs):
        super().__init__(child_relation=NameField(queryset=queryset), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list | tuple):
            self.fail("not_a_list", input_type=type(data).__name__)
        if not self.allow_empty and not data:
            self.fail("empty")
        if len(data) > MAX_LIST_ITEMS:
            self.fail("too_many", limit=MAX_LIST_ITEMS, count=len(data))
        names = [self.child_relation.clean_name(item) for item in data]
        found = rows_by_name(self.child_relation.get_queryset(), names)
        unknown = list(dict.fromkeys(item for item, name in zip(data, names, strict=True) if name not in found))
        if unknown:
            self.fail("does_not_exist", kind=self.child_relation.kind(plural=len(unknown) > 1),
                      names=", ".join(map(repr, unknown)), listing=self.child_relation.listing())
        return [found[name] for name in names]


class BoundedModelSerializer(serializers.ModelSerializer):
    """Refuses, as a 400 naming the field, numbers the database would refuse on write (where it would
    otherwise be an IntegrityError or a 500):

    - numbers their column cannot hold on PostgreSQL, whatever database runs (DRF takes the limits from the
      current connection, and SQLite claims none: a salary of 10**12 would pass on SQLite and fail on
      PostgreSQL);
    - numbers outside the model's check constraints that bound one field (``team_size >= 1``).

    (Ranges the check constraints order, ``salary_min <= salary_max``, need the stored row on a partial
    update: the services refuse them, as a 400 naming the field, before they write.)
    """

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        limits = BaseDatabaseOperations.integer_field_ranges.get(model_field.get_internal_type())
        if limits:
            kwargs["min_value"] = max(kwargs.get("min_value", limits[0]), limits[0])
            kwargs["max_value"] = min(kwargs.get("max_value", limits[1]), limits[1])
        bounds = constraint_bounds(self.Meta.model).get(model_field.name, {})
        if "min_value" in bounds:
            kwargs["min_value"] = max(kwargs.get("min_value", bounds["min_value"]), bounds["min_value"])
        if "max_value" in bounds:
            kwargs["max_value"] = min(kwargs.get("max_value", bounds["max_value"]), bounds["max_value"])
        return field_class, kwargs


BOUND_LOOKUPS = {"gte": "min_value", "lte": "max_value"}


def _check_conditions(model: type[models.Model]) -> list[Q]:
    """The conditions of ``model``'s check constraints that are Q objects (not other expressions)."""
    return [constraint.condition for constraint in model._meta.constraints
            if isinstance(constraint, CheckConstraint) and isinstance(constraint.condition, Q)]


@cache
def constraint_bounds(model: type[models.Model]) -> dict[str, dict[str, int]]:
    """{field: {"min_value" | "max_value": n}} from the check constraints that are one integer bound on one
    field: ``Q(field__gte=n)``, ``Q(field__lte=n)``."""
    bounds: dict[str, dict[str, int]] = defaultdict(dict)
    for condition in _check_conditions(model):
        if condition.negated or len(condition.children) != 1 or not isinstance(condition.children[0], tuple):
            continue
        lookup, value = condition.children[0]
        field, _, comparison = lookup.rpartition("__")
        if comparison in BOUND_LOOKUPS and type(value) is int:
            bounds[field][BOUND_LOOKUPS[comparison]] = value
    return dict(bounds)


def skill_names(**kwargs) -> NameListField:
    return NameListField(queryset=Skill.objects.all(), required=False, **kwargs)


def industry_names(**kwargs) -> NameListField:
    return NameListField(queryset=Industry.objects.all(), required=False, **kwargs)


class UserIdentityMixin(serializers.Serializer):
    user_id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)


# --- auth ----------------------------------------------------------------------------------------

class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`; it is shown only once.")
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When the token stops working.")


class RegisterSerializer(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150, error_messages={
        "invalid": "Use at most 150 letters, digits and the characters @ . + - _."})
    password = serializers.CharField(trim_whitespace=False, max_length=128, style={"input_type": "password"})
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class RegisteredSerializer(TokenSerializer):
    user_id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Role.choices)


# --- profiles ------------------------------------------------------------------------------------

class DeveloperSerializer(UserIdentityMixin, BoundedModelSerializer):
    skills = skill_names()
    preferred_industries = industry_names()

    class Meta:
        model = Developer
        fields = ["user_id", "username", "headline", "skills", "years_experience", "preferred_industries",
                  "remote_preference", "desired_salary", "location"]


class FounderSerializer(UserIdentityMixin, BoundedModelSerializer):
    skills = skill_names()
    # many=True makes a ManyRelatedField, which the stubs cannot express: they type the class, generic in a model
    startup_ids = serializers.PrimaryKeyRelatedField(source="startups", many=True, read_only=True)  # type: ignore[var-annotated]

    class Meta:
        model = Founder
        fields = ["user_id", "username", "skills", "years_experience", "location", "startup_ids"]


class InvestorSerializer(UserIdentityMixin, BoundedModelSerializer):
    preferred_industries = industry_names()
    preferred_stages = serializers.ListField(child=serializers.ChoiceField(choices=Stage.choices), required=False,
                                             max_length=MAX_LIST_ITEMS)

    class Meta:
        model = Investor
        fields = ["user_id", "username", "firm", "preferred_industries", "preferred_stages", "check_size_min",
                  "check_size_max", "location"]


PROFILE_SERIALIZERS: dict[str, type[BoundedModelSerializer]] = {
    Role.DEVELOPER: DeveloperSerializer, Role.FOUNDER: FounderSerializer, Role.INVESTOR: InvestorSerializer}


class MeSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(source="pk")
    username = serializers.CharField()
    # Not EmailField: an account made without an address (createsuperuser, the admin) has "", no e-mail format.
    email = serializers.CharField(help_text="The account's e-mail address; empty when it has none.")
    is_staff = serializers.BooleanField()
    role = serializers.SerializerMethodField()
    profile = serializers.SerializerMethodField(allow_null=True)  # null for a user without a role

    @extend_schema_field(serializers.ChoiceField(choices=Role.choices, allow_null=True))
    def get_role(self, user) -> str | None:
        return role_of(user)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_profile(self, user) -> dict | None:
        """The profile of the user's role, shaped as its own endpoint shows it (null without a role)."""
        role = role_of(user)
        return PROFILE_SERIALIZERS[role](getattr(user, role)).data if role else None


# --- catalog -------------------------------------------------------------------------------------

class IndustrySerializer(BoundedModelSerializer):
    class Meta:
        model = Industry
        fields = ["id", "name"]


class SkillSerializer(BoundedModelSerializer):
    industry = NameField(queryset=Industry.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Skill
        fields = ["id", "name", "industry"]
        # Uniqueness is checked by the service, which compares the lower-cased name.
        extra_kwargs: dict[str, dict[str, list]] = {"name": {"validators": []}}


class StartupSerializer(BoundedModelSerializer):
    industry = NameField(queryset=Industry.objects.all())
    required_skills = skill_names()
    # many=True makes a ManyRelatedField, which the stubs cannot express: they type the class, generic in a model
    founder_ids = serializers.PrimaryKeyRelatedField(source="founders", many=True, read_only=True)  # type: ignore[var-annotated]

    class Meta:
        model = Startup
        fields = ["id", "name", "industry", "stage", "team_size", "funding_raised", "required_skills", "location",
                  "remote_friendly", "description", "raising", "round_size", "round_closes_at", "founder_ids",
                  "created_at", "updated_at"]
        extra_kwargs = {
            "raising": {"help_text": "Whether the startup is raising a round now: investors are recommended only "
                                     "startups that are (unless they ask include_not_raising)."},
            "round_size": {"help_text": "USD, at least 0: the round being raised; null when not said (a round of "
                                        "unknown size fits every investor's check)."},
        }


class PositionSerializer(BoundedModelSerializer):
    required_skills = skill_names()

    class Meta:
        model = Position
        fields = ["id", "startup", "title", "description", "required_skills", "salary_min", "salary_max", "remote",
                  "years_experience_required", "location", "status", "openings", "applicants", "created_at",
                  "updated_at"]
        read_only_fields = ["applicants"]
        extra_kwargs = {
            "openings": {"help_text": "How many people the position hires, at least 1 (default 1)."},
            "applicants": {"help_text": "Read-only: how many different users applied. Recommendations show a "
                                        "position less as its applicants per opening grow past "
                                        "CROWDED_APPLICANTS_PER_OPENING."},
        }


# --- interactions --------------------------------------------------------------------------------

class InteractionSerializer(BoundedModelSerializer):
    item_type = serializers.ChoiceField(choices=ItemType.choices)
    item_id = serializers.IntegerField(min_value=1, max_value=MAX_ID,
                                       help_text="The target's id; for a developer or investor, their user_id.")
    recommendation_id = serializers.UUIDField(
        source="impression_id", required=False, allow_null=True,
        help_text="The recommendation answer (its recommendation_id) that showed this item. Without it, the event "
                  "is attributed to the latest recommendation that showed the item within the attribution window. "
                  "Answered: the recommendation the event was attributed to (null: none).")
    outcome = serializers.ChoiceField(
        choices=[("", "none"), *Outcome.choices], read_only=True,
        help_text="What the event means for the recommendation it was attributed to (\"\": not attributed).")

    class Meta:
        model = Interaction
        fields = ["id", "user_id", "item_type", "item_id", "kind", "recommendation_id", "outcome", "rank",
                  "created_at"]
        read_only_fields = ["id", "user_id", "rank", "created_at"]
        extra_kwargs = {"rank": {"help_text": "The item's 1-based position in that recommendation (null: none)."}}


class InteractionQuerySerializer(serializers.Serializer):
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID,
                                       help_text="Staff only: whose interactions to list (default: your own).")
    kind = serializers.ChoiceField(choices=InteractionKind.choices, required=False)
    item_type = serializers.ChoiceField(choices=ItemType.choices, required=False)
