"""Shapes of the profiles API: input validation and output representation.

Serializers validate types, ranges and names and show rows; they never write. The views hand
``validated_data`` to the services in ``services.py``.
"""
from django.db.backends.base.operations import BaseDatabaseOperations
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
# The models' check constraints allow at most this many years of experience.
MAX_YEARS_EXPERIENCE = 70


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
        queryset = self.get_queryset()
        kind = queryset.model._meta.verbose_name
        listing = f"/api/v1/{queryset.model._meta.verbose_name_plural}/"
        # PostgreSQL cannot compare a string holding NUL, so such a name is refused before the query.
        if not isinstance(data, str) or "\x00" in data:
            self.fail("invalid", kind=kind)
        name = data.strip()
        # Industry names are unique only as typed ("AI" and "ai" may both exist): the exact one wins.
        matches = {row.name: row for row in queryset.filter(name__iexact=name)}
        if not matches:
            self.fail("does_not_exist", kind=kind, value=data, listing=listing)
        return matches.get(name) or next(iter(matches.values()))


class BoundedModelSerializer(serializers.ModelSerializer):
    """Integer fields refuse numbers their column cannot hold on PostgreSQL, whatever database runs.

    DRF takes the limits from the current connection, and SQLite claims none: a salary of 10**12
    would pass on SQLite and fail on PostgreSQL.
    """

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        limits = BaseDatabaseOperations.integer_field_ranges.get(model_field.get_internal_type())
        if limits:
            kwargs["min_value"] = max(kwargs.get("min_value", limits[0]), limits[0])
            kwargs["max_value"] = min(kwargs.get("max_value", limits[1]), limits[1])
        return field_class, kwargs


def skill_names(**kwargs) -> serializers.ManyRelatedField:
    return NameField(many=True, queryset=Skill.objects.all(), required=False, **kwargs)


def industry_names(**kwargs) -> serializers.ManyRelatedField:
    return NameField(many=True, queryset=Industry.objects.all(), required=False, **kwargs)


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
        extra_kwargs = {"years_experience": {"max_value": MAX_YEARS_EXPERIENCE}}


class FounderSerializer(UserIdentityMixin, BoundedModelSerializer):
    skills = skill_names()
    startup_ids = serializers.PrimaryKeyRelatedField(source="startups", many=True, read_only=True)

    class Meta:
        model = Founder
        fields = ["user_id", "username", "skills", "years_experience", "location", "startup_ids"]
        extra_kwargs = {"years_experience": {"max_value": MAX_YEARS_EXPERIENCE}}


class InvestorSerializer(UserIdentityMixin, BoundedModelSerializer):
    preferred_industries = industry_names()
    preferred_stages = serializers.ListField(child=serializers.ChoiceField(choices=Stage.choices), required=False)

    class Meta:
        model = Investor
        fields = ["user_id", "username", "firm", "preferred_industries", "preferred_stages", "check_size_min",
                  "check_size_max", "location"]


PROFILE_SERIALIZERS = {Role.DEVELOPER: DeveloperSerializer, Role.FOUNDER: FounderSerializer,
                       Role.INVESTOR: InvestorSerializer}


class MeSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(source="pk")
    username = serializers.CharField()
    email = serializers.EmailField()
    is_staff = serializers.BooleanField()
    role = serializers.SerializerMethodField()
    profile = serializers.SerializerMethodField(allow_null=True)  # null for a user without a role

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
        extra_kwargs = {"name": {"validators": []}}


class StartupSerializer(BoundedModelSerializer):
    industry = NameField(queryset=Industry.objects.all())
    required_skills = skill_names()
    founder_ids = serializers.PrimaryKeyRelatedField(source="founders", many=True, read_only=True)

    class Meta:
        model = Startup
        fields = ["id", "name", "industry", "stage", "team_size", "funding_raised", "required_skills", "location",
                  "remote_friendly", "description", "founder_ids", "created_at", "updated_at"]


class PositionSerializer(BoundedModelSerializer):
    required_skills = skill_names()

    class Meta:
        model = Position
        fields = ["id", "startup", "title", "description", "required_skills", "salary_min", "salary_max", "remote",
                  "years_experience_required", "location", "status", "created_at", "updated_at"]
        extra_kwargs = {"years_experience_required": {"max_value": MAX_YEARS_EXPERIENCE}}


# --- interactions --------------------------------------------------------------------------------

class InteractionSerializer(BoundedModelSerializer):
    item_type = serializers.ChoiceField(choices=ItemType.choices)
    item_id = serializers.IntegerField(min_value=1, max_value=MAX_ID,
                                       help_text="The target's id; for a developer or investor, their user_id.")

    class Meta:
        model = Interaction
        fields = ["id", "user_id", "item_type", "item_id", "kind", "created_at"]
        read_only_fields = ["id", "user_id", "created_at"]


class InteractionQuerySerializer(serializers.Serializer):
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID,
                                       help_text="Staff only: whose interactions to list (default: your own).")
    kind = serializers.ChoiceField(choices=InteractionKind.choices, required=False)
    item_type = serializers.ChoiceField(choices=ItemType.choices, required=False)
