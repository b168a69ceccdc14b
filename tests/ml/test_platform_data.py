"""The people records and the events training and serving both encode, read from the database."""
from datetime import timedelta

import pytest
from django.utils import timezone

from ml.core.data import IdMap
from ml.platform_data import all_events, catalog_version, user_records
from tests.factories import (
    DeveloperFactory,
    FounderFactory,
    IndustryFactory,
    InteractionFactory,
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


def test_all_events_are_each_users_in_time_order_as_rows_of_known_users_and_items():
    developer, investor, stranger = DeveloperFactory(), InvestorFactory(), DeveloperFactory()
    position, startup, unlisted = PositionFactory(), StartupFactory(), PositionFactory()
    start = timezone.now() - timedelta(days=1)
    at = [start + timedelta(minutes=minute) for minute in range(6)]
    InteractionFactory(user=developer.user, position=position, kind="apply", created_at=at[3])
    InteractionFactory(user=investor.user, startup=startup, kind="invest_interest", created_at=at[0])
    InteractionFactory(user=developer.user, startup=startup, kind="dismiss", created_at=at[1])
    InteractionFactory(user=developer.user, position=unlisted, created_at=at[2])  # an item the numbering lacks
    InteractionFactory(user=stranger.user, position=position, created_at=at[4])  # a user it lacks
    InteractionFactory(user=investor.user, developer=developer, kind="contact", created_at=at[5])
    users = IdMap([str(investor.pk), str(developer.pk)])  # rows in another order than the ids'
    items = IdMap([f"developer:{developer.pk}", f"startup:{startup.pk}", f"position:{position.pk}"])

    events = all_events(users, items)

    assert list(events) == [(0, 1, "invest_interest"), (0, 0, "contact"), (1, 1, "dismiss"), (1, 2, "apply")]


def test_the_catalog_version_moves_with_a_new_or_edited_item_and_only_its_last_part_with_an_answer():
    developer, position = DeveloperFactory(), PositionFactory()
    start = catalog_version()
    InteractionFactory(user=developer.user, position=position)  # a view: no answer
    assert catalog_version() == start

    InteractionFactory(user=developer.user, position=position, kind="apply")
    answered = catalog_version()
    assert answered[:2] == start[:2] and answered[2] != start[2]

    position.title = "Renamed"
    position.save()
    edited = catalog_version()
    assert edited[0] != answered[0] and edited[1:] == answered[1:]

    StartupFactory()
    created = catalog_version()
    assert created[1] != edited[1] and created[0] == edited[0] and created[2] == edited[2]


def test_answers_added_since_a_load_give_the_set_a_full_read_again_would():
    from ml.platform_data import commitments, dismissals, item_founders, item_market, startups_answered
    from ml.serving_set import ItemMarket, ServingSet

    founders = [FounderFactory(), FounderFactory()]
    startups = [StartupFactory(founders=[founders[0]]), StartupFactory(founders=[founders[1]])]
    positions = [PositionFactory(startup=startups[0]), PositionFactory(startup=startups[1]),
                 PositionFactory(startup=startups[1])]
    developers, investor = [DeveloperFactory(), DeveloperFactory()], InvestorFactory()
    keys = ([f"startup:{s.pk}" for s in startups] + [f"position:{p.pk}" for p in positions]
            + [f"developer:{d.pk}" for d in developers] + [f"investor:{investor.pk}"])
    users = IdMap([str(f.pk) for f in founders] + [str(d.pk) for d in developers] + [str(investor.pk)])
    items = IdMap(keys)
    InteractionFactory(user=developers[0].user, position=positions[0], kind="dismiss")
    InteractionFactory(user=founders[1].user, developer=developers[0], kind="contact")

    def read_whole() -> ServingSet:
        serving = ServingSet(user_ids=users, item_ids=items)
        serving = serving.with_market(ItemMarket.of(items, item_market()))
        return serving.with_answers(dismissals=dismissals(), commitments=commitments(), founders=item_founders())

    held, after = read_whole(), catalog_version()[2]
    InteractionFactory(user=developers[1].user, position=positions[1], kind="apply")
    positions[1].applicants = 7  # as profiles.services keeps it, in the application's transaction
    positions[1].save()
    InteractionFactory(user=investor.user, startup=startups[1], kind="dismiss")
    InteractionFactory(user=founders[0].user, developer=developers[1], kind="dismiss")
    InteractionFactory(user=developers[1].user, position=positions[2])  # a view: no answer
    said_no, said_yes = dismissals(after=after), commitments(after=after)
    founders_answered = item_founders(startups=startups_answered(said_no + said_yes))
    updated = held.with_new_answers(dismissals=said_no, commitments=said_yes, founders=founders_answered,
                                    market=item_market(positions=[positions[1].pk]))

    whole = read_whole()
    assert len(said_no) == 2 and len(said_yes) == 1
    assert as_lists(updated.rebuffs) == as_lists(whole.rebuffs) != as_lists(held.rebuffs)
    assert as_lists(updated.answered) == as_lists(whole.answered) != as_lists(held.answered)
    assert updated.market.applicants.tolist() == whole.market.applicants.tolist()
    assert updated.market.applicants[items.index[f"position:{positions[1].pk}"]] == 7
    assert held.market.applicants[items.index[f"position:{positions[1].pk}"]] == 0  # the held set is untouched


def as_lists(rows_by_user: dict) -> dict:
    return {user: rows.tolist() for user, rows in rows_by_user.items()}
