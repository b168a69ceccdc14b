"""The database itself refuses bad rows, whichever code path tries to write them."""
import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from profiles.models import Developer, Founder, Industry, Interaction, Investor, Position, Skill, Startup

pytestmark = pytest.mark.django_db


def refuses(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


@pytest.fixture
def user():
    return get_user_model().objects.create_user("ada", password="pw-not-used-123")


@pytest.fixture
def startup():
    return Startup.objects.create(name="Lumen", industry=Industry.objects.create(name="fintech"))


@pytest.fixture
def position(startup):
    return Position.objects.create(startup=startup, title="Backend Engineer")


def test_skill_names_are_unique():
    Skill.objects.create(name="python")
    assert refuses(lambda: Skill.objects.create(name="python"))


def test_empty_skill_name_is_refused():
    assert refuses(lambda: Skill.objects.create(name=""))


def test_investor_check_size_must_be_ordered(user):
    assert refuses(lambda: Investor.objects.create(user=user, check_size_min=500_000, check_size_max=100_000))
    Investor.objects.create(user=user, check_size_min=100_000, check_size_max=500_000)


def test_position_salary_range_must_be_ordered(startup):
    assert refuses(lambda: Position.objects.create(startup=startup, title="CTO", salary_min=200, salary_max=100))
    assert Position.objects.create(startup=startup, title="CTO", salary_min=100, salary_max=None).pk


def test_position_status_outside_the_choices_is_refused(startup):
    assert refuses(lambda: Position.objects.create(startup=startup, title="CTO", status="hiring"))


def test_startup_stage_outside_the_choices_is_refused(startup):
    assert refuses(lambda: Startup.objects.create(name="X", industry=startup.industry, stage="series_z"))


def test_startup_team_size_must_be_positive(startup):
    assert refuses(lambda: Startup.objects.create(name="X", industry=startup.industry, team_size=0))


def test_industry_in_use_cannot_be_deleted(startup):
    assert refuses(lambda: startup.industry.delete())


def test_one_profile_per_role_per_user(user):
    Developer.objects.create(user=user)
    assert refuses(lambda: Developer.objects.create(user=user))


def test_interaction_needs_exactly_one_target(user, startup, position):
    now = timezone.now()
    assert refuses(lambda: Interaction.objects.create(user=user, kind="view", created_at=now))
    assert refuses(lambda: Interaction.objects.create(user=user, kind="view", position=position, startup=startup,
                                                      created_at=now))
    event = Interaction.objects.create(user=user, kind="apply", position=position, created_at=now)
    assert (event.item_type, event.item_id) == ("position", position.pk)


def test_interaction_kind_outside_the_choices_is_refused(user, position):
    assert refuses(lambda: Interaction.objects.create(user=user, kind="stare", position=position,
                                                      created_at=timezone.now()))


def test_interaction_can_target_a_person(user):
    other = get_user_model().objects.create_user("bob", password="pw-not-used-123")
    founder = Founder.objects.create(user=user)
    developer = Developer.objects.create(user=other)
    event = Interaction.objects.create(user=founder.user, kind="contact", developer=developer,
                                       created_at=timezone.now())
    assert (event.item_type, event.item_id) == ("developer", other.pk)


def test_deleting_a_startup_deletes_its_positions_and_their_interactions(user, startup, position):
    Interaction.objects.create(user=user, kind="view", position=position, created_at=timezone.now())
    startup.delete()
    assert not Position.objects.exists()
    assert not Interaction.objects.exists()
