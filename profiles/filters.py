"""List filters of the catalog. A malformed value is a 400 naming the parameter, never ignored."""
from django import forms
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from .models import Position, Skill, Stage, Startup
from .serializers import MAX_ID

BOOLEAN_CHOICES = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]


# The schema says boolean: a client sends true or false (1 and 0 are read too); a string enum of the
# choices would declare the type and its values at odds.
@extend_schema_field({"type": "boolean", "description": "true or false (1 and 0 are accepted too)."})
class StrictBooleanFilter(filters.TypedChoiceFilter):
    """django-filter's BooleanFilter reads "maybe" as "no filter"; this one refuses it."""

    def __init__(self, **kwargs):
        super().__init__(choices=BOOLEAN_CHOICES, coerce=lambda value: value in ("true", "1"), **kwargs)


class IntegerFilter(filters.NumberFilter):
    """NumberFilter accepts decimals such as 1.5; ids and salaries are whole numbers that fit a column."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
        # The schema shows the bounds the form field enforces (for a foreign key's id the generator would
        # otherwise guess "number").
        schema = {"type": "integer", "minimum": kwargs.get("min_value"), "maximum": kwargs["max_value"],
                  "description": kwargs.get("help_text")}
        extend_schema_field({key: value for key, value in schema.items() if value is not None})(self)


class StartupFilter(filters.FilterSet):
    industry = filters.CharFilter(field_name="industry__name", lookup_expr="iexact", help_text="Industry name.")
    stage = filters.ChoiceFilter(choices=Stage.choices)
    remote_friendly = StrictBooleanFilter()
    skill = filters.CharFilter(field_name="required_skills__name", lookup_expr="iexact", distinct=True,
                               help_text="Startups that require this skill (by name).")

    class Meta:
        model = Startup
        fields = ["industry", "stage", "remote_friendly", "skill"]


class PositionFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Position.Status.choices)
    remote = StrictBooleanFilter()
    startup = IntegerFilter(field_name="startup_id", min_value=1, help_text="Startup id.")
    skill = filters.CharFilter(field_name="required_skills__name", lookup_expr="iexact", distinct=True,
                               help_text="Positions that require this skill (by name).")
    salary_min = IntegerFilter(field_name="salary_min", lookup_expr="gte", min_value=0,
                               help_text="Positions whose salary_min is at least this (USD).")
    salary_max = IntegerFilter(field_name="salary_max", lookup_expr="lte", min_value=0,
                               help_text="Positions whose salary_max is at most this (USD).")

    class Meta:
        model = Position
        fields = ["status", "remote", "startup", "skill", "salary_min", "salary_max"]


class SkillFilter(filters.FilterSet):
    industry = filters.CharFilter(field_name="industry__name", lookup_expr="iexact", help_text="Industry name.")

    class Meta:
        model = Skill
        fields = ["industry"]
