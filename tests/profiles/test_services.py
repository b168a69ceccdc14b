"""The write rules every caller gets, whether it comes through the API or not."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken

from profiles import services
from profiles.models import Developer, Founder, Interaction, Investor, Role, Skill, Startup
from profiles.selectors import profile_of, role_of
from recsys_site.exceptions import Conflict
from tests.factories import (
    PASSWORD,
    DeveloperFactory,
    FounderFactory,
    IndustryFactory,
    InvestorFactory,
    PositionFactory,
    SkillFactory,
    StartupFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.mark.parametrize("role", Role.values)
def test_user_register_creates_user_profile_and_token(role):
    user, issued = services.user_register(username="ada", password=PASSWORD, email="ada@example.com", role=role)

    assert role_of(user) == role
    assert profile_of(user).user_id == user.pk
    assert AuthToken.objects.get(user=user) == issued.token
    assert issued.token.digest == hash_token(issued.key)


def test_user_register_writes_nothing_when_the_profile_fails():
    with pytest.raises(ValidationError) as error:
        services.user_register(username="ada", password=PASSWORD, email="ada@example.com", role="wizard")

    assert "role" in error.value.message_dict
    assert not User.objects.exists()
    assert not AuthToken.objects.exists()


def test_user_register_names_the_password_when_it_is_weak():
    with pytest.raises(ValidationError) as error:
        services.user_register(username="ada", password="ada", email="ada@example.com", role="developer")

    assert list(error.value.message_dict) == ["password"]


def test_a_user_never_gets_a_second_role():
    developer = DeveloperFactory()

    with pytest.raises(Conflict):
        services.profile_create(user=developer.user, role=Role.FOUNDER)

    assert not Founder.objects.exists()
    assert role_of(developer.user) == Role.DEVELOPER


def test_role_of_a_user_without_a_profile_is_none():
    assert role_of(UserFactory()) is None


def test_auth_token_issue_gives_each_call_its_own_token_and_drops_the_users_expired_ones():
    user, other = UserFactory(), UserFactory()
    expired = services.auth_token_issue(user=user).token
    others_expired = services.auth_token_issue(user=other).token
    AuthToken.objects.filter(pk__in=[expired.pk, others_expired.pk]).update(expiry=timezone.now() - timedelta(1))

    first, second = services.auth_token_issue(user=user), services.auth_token_issue(user=user)

    assert first.key != second.key
    assert set(AuthToken.objects.filter(user=user)) == {first.token, second.token}
    assert AuthToken.objects.filter(pk=others_expired.pk).exists()


def test_auth_tokens_revoke_all_revokes_only_that_users_tokens():
    user, other = UserFactory(), UserFactory()
    for owner in (user, user, other):
        services.auth_token_issue(user=owner)

    assert services.auth_tokens_revoke_all(user=user) == 2
    assert list(AuthToken.objects.values_list("user", flat=True)) == [other.pk]


def test_investor_update_refuses_an_inverted_check_size_range_and_keeps_the_row():
    investor = InvestorFactory(check_size_min=10, check_size_max=20)

    with pytest.raises(ValidationError) as error:
        services.investor_update(investor=investor, data={"check_size_min": 30, "firm": "Changed"})

    assert "check_size_max" in error.value.message_dict
    assert Investor.objects.filter(firm="Changed").count() == 0


def test_investor_update_refuses_unknown_stages_and_deduplicates_known_ones():
    investor = InvestorFactory()

    with pytest.raises(ValidationError):
        services.investor_update(investor=investor, data={"preferred_stages": ["seed", "moon"]})
    services.investor_update(investor=investor, data={"preferred_stages": ["seed", "seed", "idea"]})

    investor.refresh_from_db()
    assert investor.preferred_stages == ["seed", "idea"]


def test_developer_update_replaces_many_to_many_sets_and_plain_fields():
    old, new = SkillFactory(name="perl"), SkillFactory(name="go")
    developer = DeveloperFactory(skills=[old])

    services.developer_update(developer=developer, data={"skills": [new], "years_experience": 9})

    developer = Developer.objects.get(pk=developer.pk)
    assert list(developer.skills.all()) == [new]
    assert developer.years_experience == 9


def test_startup_create_makes_the_creator_a_founder_and_sets_skills():
    founder = FounderFactory()
    skill = SkillFactory()

    startup = services.startup_create(founder=founder, name="Acme", industry=IndustryFactory(),
                                      required_skills=[skill])

    assert list(startup.founders.all()) == [founder]
    assert list(startup.required_skills.all()) == [skill]


def test_position_create_refuses_an_inverted_salary_range_and_writes_nothing():
    with pytest.raises(ValidationError) as error:
        services.position_create(startup=StartupFactory(), title="CTO", salary_min=10, salary_max=5)

    assert "salary_max" in error.value.message_dict
    assert not Startup.objects.get().positions.exists()


def test_position_update_checks_the_range_against_stored_values():
    position = PositionFactory(salary_min=100, salary_max=200)

    with pytest.raises(ValidationError):
        services.position_update(position=position, data={"salary_min": 300})
    services.position_update(position=position, data={"salary_min": 150})

    position.refresh_from_db()
    assert (position.salary_min, position.salary_max) == (150, 200)


def test_skill_names_are_stored_lower_case_and_unique_in_any_case():
    skill = services.skill_create(name="  TypeScript ")

    assert skill.name == "typescript"
    with pytest.raises(ValidationError):
        services.skill_create(name="TYPESCRIPT")
    assert services.skill_update(skill=skill, data={"name": "TypeScript"}).name == "typescript"
    assert Skill.objects.count() == 1


def test_interaction_record_stores_one_target_and_the_time():
    developer = DeveloperFactory()
    position = PositionFactory()

    interaction = services.interaction_record(user=developer.user, item_type="position", item_id=position.pk,
                                              kind="apply")

    stored = Interaction.objects.get()
    assert stored == interaction
    assert (stored.position, stored.startup, stored.developer, stored.investor) == (position, None, None, None)
    assert stored.created_at is not None


def test_interaction_record_refuses_people_targets_for_non_founders():
    developer, investor = DeveloperFactory(), InvestorFactory()

    with pytest.raises(ValidationError) as error:
        services.interaction_record(user=developer.user, item_type="investor", item_id=investor.user_id,
                                    kind="contact")

    assert "item_type" in error.value.message_dict
    assert not Interaction.objects.exists()


def test_interaction_record_refuses_a_missing_target():
    with pytest.raises(ValidationError) as error:
        services.interaction_record(user=DeveloperFactory().user, item_type="startup", item_id=12345, kind="view")

    assert "item_id" in error.value.message_dict
