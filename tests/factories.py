"""factory_boy factories for every profiles model.

Each factory builds a valid row with the fewest related rows it needs. Many-to-many fields take
lists at call time: ``DeveloperFactory(skills=[python, django])``, ``StartupFactory(founders=[f])``.
A user of one role: ``DeveloperFactory().user``; the user's password is ``PASSWORD``.
"""
import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from profiles.models import (
    TARGET_FIELDS,
    Developer,
    Founder,
    Industry,
    Interaction,
    InteractionKind,
    Investor,
    ItemType,
    Position,
    Skill,
    Stage,
    Startup,
)

PASSWORD = "correct-horse-battery-staple"


def _many_to_many(field_name: str):
    """A post-generation hook that sets a many-to-many field from a list passed at call time."""

    @factory.post_generation
    def setter(obj, create, extracted, **kwargs):
        if create and extracted:
            getattr(obj, field_name).set(extracted)

    return setter


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)


class StaffUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True


class IndustryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Industry
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"industry {n}")


class SkillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Skill
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"skill{n}")
    industry = None


class DeveloperFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Developer
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, username=factory.Sequence(lambda n: f"developer{n}"))
    headline = "Backend engineer"
    years_experience = 3
    location = "Berlin"
    skills = _many_to_many("skills")
    preferred_industries = _many_to_many("preferred_industries")


class FounderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Founder
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, username=factory.Sequence(lambda n: f"founder{n}"))
    years_experience = 8
    location = "London"
    skills = _many_to_many("skills")


class InvestorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Investor
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory, username=factory.Sequence(lambda n: f"investor{n}"))
    firm = factory.Sequence(lambda n: f"Capital {n}")
    preferred_stages = factory.LazyFunction(lambda: [Stage.SEED, Stage.SERIES_A])
    check_size_min = 100_000
    check_size_max = 1_000_000
    location = "New York"
    preferred_industries = _many_to_many("preferred_industries")


class StartupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Startup
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Startup {n}")
    industry = factory.SubFactory(IndustryFactory)
    stage = Stage.SEED
    team_size = 5
    funding_raised = 500_000
    location = "Paris"
    description = "Makes something people want."
    founders = _many_to_many("founders")
    required_skills = _many_to_many("required_skills")


class PositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Position
        skip_postgeneration_save = True

    startup = factory.SubFactory(StartupFactory)
    title = factory.Sequence(lambda n: f"Software Engineer {n}")
    description = "Build the product with us."
    salary_min = 80_000
    salary_max = 120_000
    years_experience_required = 2
    location = "Remote"
    status = Position.Status.OPEN
    required_skills = _many_to_many("required_skills")


class InteractionFactory(factory.django.DjangoModelFactory):
    """An event on a new position unless a target is given: ``InteractionFactory(startup=s)``."""

    class Meta:
        model = Interaction

    user = factory.SubFactory(UserFactory)
    kind = InteractionKind.VIEW
    created_at = factory.LazyFunction(timezone.now)
    startup = None
    developer = None
    investor = None
    position = factory.Maybe(
        factory.LazyAttribute(lambda event: not any(getattr(event, field) for field in TARGET_FIELDS.values()
                                                    if field != "position")),
        yes_declaration=factory.SubFactory(PositionFactory),
        no_declaration=None,
    )

    @classmethod
    def for_target(cls, target, **kwargs) -> Interaction:
        """An event on any target row, its field chosen from the row's model."""
        item_type = ItemType(type(target).__name__.lower())
        return cls(**{TARGET_FIELDS[item_type]: target}, **kwargs)
