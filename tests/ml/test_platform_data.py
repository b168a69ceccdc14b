"""The people records training and serving both encode, read from the database."""
import pytest

from ml.platform_data import user_records
from tests.factories import (
    DeveloperFactory,
    FounderFactory,
    IndustryFactory,
    InvestorFactory,
    PositionFactory,
    SkillFactory,
    StartupFactory,
)

pytestmark = pytest.mark.django_db


def test_records_of_each_role_carry_their_profile_fields():
    python, rust = SkillFactory(name="python"), SkillFactory(name="rust")
    fintech = IndustryFactory(name="fintech")
    developer = DeveloperFactory(headline="Data person", years_experience=4, remote_preference="remote",
                                 desired_salary=90_000, skills=[rust, python], preferred_industries=[fintech])
    investor = InvestorFactory(firm="North", preferred_stages=["seed"], check_size_min=5, check_size_max=9,
                               preferred_industries=[fintech])
    founder = FounderFactory(years_experience=7, skills=[rust])
    startup = StartupFactory(founders=[founder], industry=fintech, stage="series_a", required_skills=[python])
    PositionFactory(startup=startup, required_skills=[SkillFactory(name="go")])

    records = user_records()

    assert records[developer.pk] == {
        "role": "developer", "headline": "Data person", "years_experience": 4, "skills": ["python", "rust"],
        "industries": ["fintech"], "salary_min": 90_000, "salary_max": 90_000, "remote_preference": "remote"}
    assert records[investor.pk] == {
        "role": "investor", "headline": "North", "industries": ["fintech"], "preferred_stages": ["seed"],
        "check_size_min": 5, "check_size_max": 9}
    assert records[founder.pk] == {
        "role": "founder", "years_experience": 7, "skills": ["go", "python", "rust"], "industries": ["fintech"],
        "preferred_stages": ["series_a"]}


def test_records_of_some_users_read_only_those():
    first, second = DeveloperFactory(), DeveloperFactory(remote_preference="any")
    investor = InvestorFactory()

    assert set(user_records([second.pk, investor.pk])) == {second.pk, investor.pk}
    assert user_records([second.pk], role="developer")[second.pk]["remote_preference"] is None
    assert user_records([first.pk], role="investor") == {}
    assert user_records([]) == {}
