"""seed_demo: sizes, determinism, the planted tastes, the role rules, re-running and bad arguments.

Worlds here are small (a few hundred users, a few thousand interactions) so each seed takes well
under a second; the taste checks compare means over hundreds of events, with wide margins.
"""
import hashlib
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.core.management.base import CommandError

from ml import evaluation
from profiles.demo import vocabulary as vocab
from profiles.demo.store import DEMO_EMAIL_DOMAIN
from profiles.demo.world import INTERACTION_WINDOW_DAYS, KINDS, ROLE_RULES, WorldSize, accept_chance, make_people
from profiles.models import (
    Developer,
    Founder,
    Interaction,
    InteractionKind,
    Investor,
    Position,
    RemotePreference,
    Skill,
    Stage,
    Startup,
)

SMALL = {"users": 240, "positions": 300, "startups": 80, "interactions": 6000}
POSITIVE_POSITION_KINDS = {"like", "save", "apply"}
INVESTOR_INTEREST_KINDS = {"follow", "invest_interest", "contact"}

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", **{**SMALL, "seed": 1, **options}, stdout=out)
    return out.getvalue()


def demo_users():
    return get_user_model().objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}")


def roles_by_user() -> dict[int, str]:
    roles = {}
    for model, role in ((Developer, "developer"), (Founder, "founder"), (Investor, "investor")):
        roles.update(dict.fromkeys(model.objects.values_list("user_id", flat=True), role))
    return roles


def skills_of(through, owner_column: str) -> dict[int, set[int]]:
    sets = defaultdict(set)
    for owner, skill in through.objects.values_list(owner_column, "skill_id"):
        sets[owner].add(skill)
    return sets


def world_digest() -> str:
    """A fingerprint of the demo world's content that ignores primary keys (they follow earlier rows)."""
    users = list(demo_users().order_by("id").values_list("id", "username", "first_name", "last_name", "password",
                                                          "date_joined", "is_staff"))
    username = {row[0]: row[1] for row in users}
    skill_name = dict(Skill.objects.values_list("id", "name"))
    startup_rank = {pk: rank for rank, pk in enumerate(Startup.objects.order_by("id").values_list("id", flat=True))}
    position_rank = {pk: rank for rank, pk in enumerate(Position.objects.order_by("id").values_list("id", flat=True))}

    def names(sets, owner):
        return sorted(skill_name[s] for s in sets.get(owner, ()))

    developer_skills = skills_of(Developer.skills.through, "developer_id")
    startup_skills = skills_of(Startup.required_skills.through, "startup_id")
    position_skills = skills_of(Position.required_skills.through, "position_id")
    founders = defaultdict(list)
    for startup, founder in Startup.founders.through.objects.values_list("startup_id", "founder_id"):
        founders[startup].append(username[founder])
    parts = [
        [row[1:] for row in users],
        [(username[d.pk], d.headline, d.years_experience, d.remote_preference, d.desired_salary, d.location,
          names(developer_skills, d.pk), sorted(d.preferred_industries.values_list("name", flat=True)))
         for d in Developer.objects.order_by("user_id").prefetch_related("preferred_industries")],
        [(username[i.pk], i.firm, i.preferred_stages, i.check_size_min, i.check_size_max, i.location)
         for i in Investor.objects.order_by("user_id")],
        [(s.name, s.industry_id and s.industry.name, s.stage, s.team_size, s.funding_raised, s.description,
          s.created_at, sorted(founders[s.pk]), names(startup_skills, s.pk), s.raising, s.round_size,
          s.round_closes_at)
         for s in Startup.objects.order_by("id").select_related("industry")],
        [(startup_rank[p.startup_id], p.title, p.description, p.salary_min, p.salary_max, p.remote, p.status,
          p.created_at, names(position_skills, p.pk), p.openings, p.applicants)
         for p in Position.objects.order_by("id")],
        [(username[i.user_id], i.kind, position_rank.get(i.position_id), startup_rank.get(i.startup_id),
          username.get(i.developer_id), username.get(i.investor_id), i.created_at)
         for i in Interaction.objects.order_by("id")],
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def test_creates_the_requested_numbers_of_rows_with_one_role_each():
    output = seed()

    assert demo_users().count() == SMALL["users"]
    assert Startup.objects.count() == SMALL["startups"]
    assert Position.objects.count() == SMALL["positions"]
    # --interactions counts the channels' events; the accepts that answer applications and contacts come on top
    assert Interaction.objects.exclude(kind="accept").count() == SMALL["interactions"]
    assert 0 < Interaction.objects.filter(kind="accept").count() < Interaction.objects.filter(
        kind__in=["apply", "contact"]).count()
    roles = roles_by_user()
    assert set(roles) == set(demo_users().values_list("id", flat=True))  # every user has a role
    profiles = Developer.objects.count() + Founder.objects.count() + Investor.objects.count()
    assert profiles == len(roles)  # nobody has two roles
    counts = {role: list(roles.values()).count(role) for role in ("developer", "founder", "investor")}
    assert counts["developer"] > counts["founder"] > counts["investor"] > 0
    assert not demo_users().filter(is_staff=True).exists() and not demo_users().filter(is_superuser=True).exists()
    assert not Startup.objects.filter(founders=None).exists()
    assert Skill.objects.count() >= 140 and all(name == name.lower() for name in Skill.objects.values_list("name",
                                                                                                          flat=True))
    assert "interactions" in output and "rows/s" in output


def test_startups_raise_rounds_sized_by_stage_and_positions_hire_one_to_three_with_their_applicants_counted():
    seed()
    startups = list(Startup.objects.values("stage", "raising", "round_size", "round_closes_at"))
    early = [s for s in startups if s["stage"] in (Stage.SEED, Stage.SERIES_A)]
    assert sum(s["raising"] for s in early) > 0.6 * len(early)
    assert all((s["round_size"] is not None and s["round_size"] > 0 and s["round_closes_at"] is not None)
               == s["raising"] for s in startups)
    median = {stage: sorted(s["round_size"] for s in startups if s["raising"] and s["stage"] == stage)
              for stage in (Stage.PRE_SEED, Stage.SEED, Stage.SERIES_A)}
    middles = [sizes[len(sizes) // 2] for sizes in median.values()]
    assert middles == sorted(middles) and middles[0] < middles[-1]
    openings = set(Position.objects.values_list("openings", flat=True))
    assert openings <= {1, 2, 3} and 1 in openings
    applied = defaultdict(set)
    for user, position in Interaction.objects.filter(kind="apply").values_list("user_id", "position_id"):
        applied[position].add(user)
    counts = dict(Position.objects.values_list("pk", "applicants"))
    assert counts == {pk: len(applied.get(pk, ())) for pk in counts} and any(counts.values())


def test_same_seed_gives_an_identical_world_and_another_seed_a_different_one():
    seed(seed=7)
    first = world_digest()
    seed(seed=7, flush=True)
    assert world_digest() == first
    seed(seed=8, flush=True)
    assert world_digest() != first


def test_developers_engage_with_positions_that_match_their_skills():
    seed()
    developer_skills = skills_of(Developer.skills.through, "developer_id")
    position_skills = skills_of(Position.required_skills.through, "position_id")

    def skill_fit(developer, position):
        required = position_skills[position]
        return len(developer_skills[developer] & required) / len(required)

    events = list(Interaction.objects.filter(position__isnull=False).values_list("user_id", "position_id", "kind"))
    positive = [skill_fit(user, position) for user, position, kind in events if kind in POSITIVE_POSITION_KINDS]
    dismissed = [skill_fit(user, position) for user, position, kind in events if kind == "dismiss"]
    positions, rng = list(position_skills), random.Random(0)
    baseline = [skill_fit(user, rng.choice(positions)) for user, _, _ in events]

    def mean(values):
        return sum(values) / len(values)

    assert len(positive) > 200 and len(dismissed) > 100
    assert mean(positive) > 2 * mean(baseline)
    assert mean(dismissed) < mean(baseline) < mean(positive)


def test_developers_prefer_positions_in_their_preferred_industries():
    seed()
    preferred = defaultdict(set)
    for developer, industry in Developer.preferred_industries.through.objects.values_list("developer_id",
                                                                                          "industry_id"):
        preferred[developer].add(industry)
    industry_of = dict(Position.objects.values_list("id", "startup__industry_id"))
    events = list(Interaction.objects.filter(position__isnull=False, kind__in=POSITIVE_POSITION_KINDS)
                  .values_list("user_id", "position_id"))
    rng, positions = random.Random(0), list(industry_of)
    in_preferred = sum(industry_of[position] in preferred[user] for user, position in events) / len(events)
    by_chance = sum(industry_of[rng.choice(positions)] in preferred[user] for user, _ in events) / len(events)

    assert in_preferred > by_chance + 0.2


def test_investors_interest_follows_their_stages_and_industries():
    seed()
    stages = dict(Investor.objects.values_list("user_id", "preferred_stages"))
    industries = defaultdict(set)
    for investor, industry in Investor.preferred_industries.through.objects.values_list("investor_id",
                                                                                        "industry_id"):
        industries[investor].add(industry)
    startup = {pk: (stage, industry) for pk, stage, industry in Startup.objects.values_list("id", "stage",
                                                                                          "industry_id")}
    events = list(Interaction.objects.filter(user__investor__isnull=False).values_list("user_id", "startup_id",
                                                                                     "kind"))
    rng, startups = random.Random(0), list(startup)

    def share(pairs, facet):
        if facet == "stage":
            return sum(startup[s][0] in stages[u] for u, s in pairs) / len(pairs)
        return sum(startup[s][1] in industries[u] for u, s in pairs) / len(pairs)

    interested = [(u, s) for u, s, kind in events if kind in INVESTOR_INTEREST_KINDS]
    dismissed = [(u, s) for u, s, kind in events if kind == "dismiss"]
    by_chance = [(u, rng.choice(startups)) for u, _, _ in events]
    assert len(interested) > 50 and len(dismissed) > 30
    for facet in ("stage", "industry"):
        assert share(interested, facet) > share(by_chance, facet) + 0.2, facet
        assert share(dismissed, facet) < share(interested, facet), facet


def test_every_interaction_follows_the_role_rules_and_the_clock():
    seed(end="2026-06-30")
    roles = roles_by_user()
    joined = dict(demo_users().values_list("id", "date_joined"))
    end = datetime(2026, 6, 30, tzinfo=UTC)
    rows = Interaction.objects.values_list("user_id", "kind", "position_id", "startup_id", "developer_id",
                                           "investor_id", "created_at")
    for user, kind, position, startup, developer, investor, created_at in rows:
        target = ("position" if position else "startup" if startup else "developer" if developer else "investor")
        assert kind in ROLE_RULES[(roles[user], target)], (roles[user], target, kind)
        assert developer is None or roles[developer] == "developer"
        assert investor is None or roles[investor] == "investor"
        assert end - timedelta(days=INTERACTION_WINDOW_DAYS) <= created_at <= end
        assert created_at >= joined[user]
    assert max(Position.objects.values_list("created_at", flat=True)) < end


def asked_and_accepted() -> tuple[list[tuple], list[tuple]]:
    """The seeded world's applications and contacts that their target may accept, and its accepts.

    Each asked event: (its time, the accepter's user id, what they would accept as an item key); each accept:
    (accepter, accepted key, time). The accepter is worked out from the rows, as the world defines them: an
    application's is the lead founder of the position's startup (its first founder link), an investor's contact's
    the startup's lead founder, a founder's contact's the person contacted, who accepts the founder's first
    startup (the founder's first link); a founder without a startup is accepted by nobody."""
    lead, first = {}, {}
    for startup, founder in Startup.founders.through.objects.order_by("id").values_list("startup_id", "founder_id"):
        lead.setdefault(startup, founder)
        first.setdefault(founder, startup)
    startup_of = dict(Position.objects.values_list("id", "startup_id"))
    roles = roles_by_user()
    asked, accepts = [], []
    for user, kind, position, startup, developer, investor, created_at in Interaction.objects.values_list(
            "user_id", "kind", "position_id", "startup_id", "developer_id", "investor_id", "created_at"):
        if kind == "accept":
            accepted = (f"developer:{developer}" if developer else f"investor:{investor}" if investor
                        else f"startup:{startup}")
            accepts.append((user, accepted, created_at))
        elif kind == "apply":
            asked.append((created_at, lead[startup_of[position]], f"developer:{user}"))
        elif kind == "contact" and roles[user] == "investor":
            asked.append((created_at, lead[startup], f"investor:{user}"))
        elif kind == "contact" and user in first:
            asked.append((created_at, developer or investor, f"startup:{first[user]}"))
    return asked, accepts


def test_the_other_side_accepts_applications_and_contacts_after_them_and_before_the_clock_stops():
    seed()
    asked, accepts = asked_and_accepted()
    end = datetime(2026, 11, 1, tzinfo=UTC)  # seed_demo's default --end
    joined = dict(demo_users().values_list("id", "date_joined"))
    since = {**{f"startup:{pk}": at for pk, at in Startup.objects.values_list("id", "created_at")},
             **{f"{role}:{pk}": at for pk, at in joined.items() for role in ("developer", "investor")}}
    by_pair = defaultdict(list)
    for created_at, accepter, accepted in asked:
        by_pair[accepter, accepted].append(created_at)

    assert len(accepts) > 100
    for accepter, accepted, created_at in accepts:
        # 1 hour to 7 days after the application or contact, or after the accepter (or the accepted) was there
        answered = [asked_at for asked_at in by_pair[accepter, accepted]
                    if created_at - max(asked_at, joined[accepter], since[accepted]) >= timedelta(hours=1)
                    and created_at - max(asked_at, joined[accepter], since[accepted]) <= timedelta(days=7)]
        assert answered, (accepter, accepted, created_at)
        assert created_at < end
    kinds_accepted = {accepted.split(":")[0] for _, accepted, _ in accepts}
    assert kinds_accepted == {"developer", "investor", "startup"}


def test_a_target_accepts_more_often_the_better_it_likes_whoever_asked():
    """The accepter's hidden match (the oracle's, which is the world's) decides: the better half of the asked
    events by that match is accepted far more often than the worse half, and as often as accept_chance says."""
    seed()
    oracle, why = evaluation.demo_oracle(1)
    assert oracle is not None, why
    asked, accepts = asked_and_accepted()
    accepted_at = defaultdict(list)
    for accepter, accepted, created_at in accepts:
        accepted_at[accepter, accepted].append(created_at)
    times = Counter((accepter, accepted) for _, accepter, accepted in asked)
    last_week = datetime(2026, 11, 1, tzinfo=UTC) - timedelta(days=7)  # their accepts may fall after the end
    # Pairs asked once (an accept of a pair asked twice could answer either), early enough to be answered
    rows = [(oracle.scores(accepter, [accepted])[0], bool(accepted_at[accepter, accepted]))
            for asked_at, accepter, accepted in asked if asked_at < last_week and times[accepter, accepted] == 1]
    match = np.array([m for m, _ in rows])
    yes = np.array([a for _, a in rows], dtype=float)
    high = match >= np.median(match)
    rate_high, rate_low = yes[high].mean(), yes[~high].mean()
    error = np.sqrt(rate_high * (1 - rate_high) / high.sum() + rate_low * (1 - rate_low) / (~high).sum())

    assert len(rows) > 200
    assert rate_high - rate_low > 4 * error, (rate_high, rate_low, error)
    expected = accept_chance(match)
    assert abs(yes.sum() - expected.sum()) < 4 * np.sqrt((expected * (1 - expected)).sum())


def test_vocabulary_matches_the_models_choices():
    assert tuple(Stage.values) == vocab.STAGES
    assert tuple(RemotePreference.values) == vocab.REMOTE_PREFERENCES
    assert set(KINDS) == set(InteractionKind.values)
    assert len(vocab.INDUSTRIES) >= 12 and 140 <= len(vocab.all_skills()) <= 200


def test_running_twice_without_flush_refuses_and_flush_keeps_other_users():
    admin = get_user_model().objects.create_user("admin", "admin@example.org", "admin", is_staff=True)
    seed(users=50, positions=40, startups=15, interactions=500)

    with pytest.raises(CommandError, match="--flush"):
        seed(users=50, positions=40, startups=15, interactions=500)

    seed(users=60, positions=30, startups=10, interactions=400, flush=True)
    assert demo_users().count() == 60 and Interaction.objects.exclude(kind="accept").count() == 400
    assert get_user_model().objects.filter(pk=admin.pk, is_staff=True).exists()


def test_a_username_taken_by_a_real_user_fails_cleanly_and_writes_nothing():
    taken = make_people(1, WorldSize(**SMALL), end=0).usernames[5]
    get_user_model().objects.create_user(taken, "someone@example.org", "pw")

    with pytest.raises(CommandError, match="refused a demo row"):
        seed()

    assert not demo_users().exists() and not Startup.objects.exists() and not Interaction.objects.exists()


def test_if_empty_leaves_an_existing_world_alone():
    seed(users=30, positions=10, startups=5, interactions=100)
    before = world_digest()

    output = seed(users=50, positions=20, startups=8, interactions=200, if_empty=True)

    assert "already there" in output and world_digest() == before
    with pytest.raises(CommandError, match="contradict"):
        seed(if_empty=True, flush=True)


def test_demo_users_cannot_log_in_unless_a_password_is_given():
    seed(users=20, positions=10, startups=5, interactions=100)
    assert not demo_users().first().has_usable_password()

    seed(users=20, positions=10, startups=5, interactions=100, flush=True, password="demo-pass")
    assert all(check_password("demo-pass", user.password) for user in demo_users())


def test_an_empty_world_is_allowed_and_flush_alone_clears_the_demo_world():
    seed(users=30, positions=10, startups=5, interactions=100)
    seed(users=0, positions=0, startups=0, interactions=0, flush=True)
    assert not demo_users().exists() and not Startup.objects.exists() and not Interaction.objects.exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"users": -1}, "--users must be 0 or more"),
    ({"interactions": -5}, "--interactions must be 0 or more"),
    ({"seed": -1}, "--seed must be 0 or more"),
    ({"users": 0, "startups": 0, "positions": 0, "interactions": 10}, "--interactions needs --users > 0"),
    ({"users": 0, "startups": 3, "positions": 0, "interactions": 0}, "--startups needs --users > 0"),
    ({"startups": 0, "positions": 5}, "--positions needs --startups > 0"),
    ({"users": 3, "startups": 0, "positions": 0, "interactions": 10}, "something to interact with"),
    ({"end": "yesterday"}, "--end must be a date"),
])
def test_rejects_arguments_that_cannot_make_a_world(options, message):
    with pytest.raises(CommandError, match=message):
        seed(**options)
    assert not demo_users().exists()
