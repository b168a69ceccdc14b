"""The demo world's oracle: primary keys map back to the world's rows, and its scores explain the events.

Rows made before seeding (a factory developer and a position) push the demo world's ids off 1, as in
a real database, so an oracle that assumed ids from 1 would score the wrong people and fail here.
"""
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from profiles.demo.oracle import DEFAULT_END, WorldIds, WorldMismatch, WorldOracle
from profiles.demo.store import DEMO_EMAIL_DOMAIN
from profiles.demo.world import (
    CHANNELS,
    DEVELOPER,
    FOUNDER,
    POSITION,
    TASTE_STRENGTH,
    WorldSize,
    accept_chance,
    make_world,
)
from profiles.models import Developer, Founder, Interaction, Position, Startup
from tests.factories import DeveloperFactory, PositionFactory

SIZE = WorldSize(users=240, positions=300, startups=80, interactions=6000)
SEED = 3

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    """(world, its ids in the database), seeded after some rows that are not the demo world's."""
    DeveloperFactory()
    PositionFactory()
    run_pending_foreign_key_checks()
    call_command("seed_demo", seed=SEED, **vars(SIZE), stdout=StringIO())
    world = make_world(SEED, SIZE, DEFAULT_END)
    return world, ids_in_database(world)


def run_pending_foreign_key_checks() -> None:
    """On PostgreSQL the factories' rows leave deferred foreign-key checks queued in the test's transaction,
    and PostgreSQL refuses the seeder's ALTER TABLE while any are; a real seed starts after a commit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # runs the queued checks
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # and defers later ones again, as Django expects


def ids_in_database(world) -> WorldIds:
    demo = get_user_model().objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}")
    startups = dict(Startup.objects.filter(founders__user__in=demo.values("pk")).distinct().values_list("pk", "name"))
    positions = dict(Position.objects.filter(startup__in=list(startups)).values_list("pk", "title"))
    return WorldIds.from_rows(world, users=dict(demo.values_list("username", "pk")), startups=startups,
                              positions=positions)


def item_keys(item_type: str, pks) -> list[str]:
    return [f"{item_type}:{pk}" for pk in pks]


def test_ids_are_found_after_rows_that_were_there_before(seeded):
    world, ids = seeded
    first_demo_user = get_user_model().objects.get(username=world.people.usernames[0])
    assert ids.first_user == first_demo_user.pk > 1
    assert ids.first_position > 1 and ids.first_startup > 1
    demo_positions = sorted(Position.objects.filter(pk__gte=ids.first_position).values_list("pk", flat=True))
    assert demo_positions[0] == ids.first_position and len(demo_positions) == SIZE.positions


def test_scores_are_the_world_match_of_the_rows_behind_the_keys(seeded):
    """Each world row is found by its rank among the demo rows' ids, not by the oracle's own arithmetic."""
    world, ids = seeded
    oracle = WorldOracle(world, ids)
    position_pks = sorted(Position.objects.filter(pk__gte=ids.first_position).values_list("pk", flat=True))
    developer_pks = Developer.objects.filter(user_id__gte=ids.first_user).order_by("user_id").values_list(
        "user_id", flat=True)[:20]
    channel = next(c for c in CHANNELS if (c.role, c.target_type) == (DEVELOPER, POSITION))
    for user_id in developer_pks:
        within_role = list(world.people.developers).index(user_id - ids.first_user)
        expected = channel.match(world, np.array([within_role]), np.arange(SIZE.positions)[None, :])[0]
        scores = oracle.scores(user_id, item_keys("position", position_pks))
        np.testing.assert_allclose(scores, expected)
        best = np.argsort(-scores, kind="stable")[:10]
        assert [position_pks[n] for n in best] == [position_pks[n] for n in np.argsort(-expected, kind="stable")[:10]]


def test_chosen_items_match_better_than_random_ones_and_dismissed_worse(seeded):
    world, ids = seeded
    oracle = WorldOracle(world, ids)
    position_pks = np.array(Position.objects.filter(pk__gte=ids.first_position).values_list("pk", flat=True))
    rng = np.random.default_rng(0)
    chosen, dismissed, random = [], [], []
    events = Interaction.objects.filter(position__isnull=False, user__pk__gte=ids.first_user)
    for user_id, position_id, kind in events.values_list("user_id", "position_id", "kind")[:1500]:
        score = oracle.scores(user_id, [f"position:{position_id}"])[0]
        (dismissed if kind == "dismiss" else chosen).append(score)
        random.extend(oracle.scores(user_id, item_keys("position", rng.choice(position_pks, size=3))))
    assert len(chosen) > 500 and len(dismissed) > 50
    assert np.mean(chosen) > np.mean(random) + 0.06  # about +0.12 here; a wrong id mapping gives about 0
    assert np.mean(dismissed) < np.mean(random) - 0.035  # about -0.07 here


def test_a_catalog_parsed_once_scores_as_its_keys_do_and_marks_what_the_world_did_not_make(seeded):
    world, ids = seeded
    oracle = WorldOracle(world, ids)
    developer = ids.first_user + int(world.people.developers[0])
    keys = [*oracle.item_keys("position")[:5], "position:999999", *oracle.item_keys("startup")[:3], "robot:1"]
    types, targets = oracle.item_targets(keys)
    known = types >= 0
    assert known.tolist() == [True] * 5 + [False] + [True] * 3 + [False]
    assert (targets[~known] == -1).all()
    np.testing.assert_array_equal(oracle.propensities_of(developer, types[known], targets[known]),
                                  oracle.propensities(developer, [k for k, ok in zip(keys, known, strict=True) if ok]))


def test_propensities_rank_the_chosen_items_higher_than_the_match_alone(seeded):
    """Events choose among candidates shown by popularity: adding the exposure must predict them better."""
    world, ids = seeded
    oracle = WorldOracle(world, ids)
    positions = Position.objects.filter(pk__gte=ids.first_position).order_by("pk")
    position_pks = list(positions.values_list("pk", flat=True))
    keys = item_keys("position", position_pks)
    by_match, by_propensity, ranked = [], [], {}
    events = Interaction.objects.filter(position__isnull=False, user__pk__gte=ids.first_user).exclude(kind="dismiss")
    for user_id, position_id in events.values_list("user_id", "position_id")[:800]:
        if user_id not in ranked:
            ranked[user_id] = oracle.scores(user_id, keys), oracle.propensities(user_id, keys)
        match, propensity = ranked[user_id]
        chosen = position_pks.index(position_id)
        by_match.append((match < match[chosen]).mean())  # share of positions ranked below the chosen one
        by_propensity.append((propensity < propensity[chosen]).mean())
    assert np.mean(by_propensity) > np.mean(by_match) + 0.05  # about 0.81 against 0.70 here
    np.testing.assert_allclose(ranked[user_id][1], TASTE_STRENGTH * ranked[user_id][0]
                               + np.log(world.positions.popularity / world.positions.popularity.sum()))


def test_a_founder_is_scored_on_developers_and_investors_together(seeded):
    world, ids = seeded
    oracle = WorldOracle(world, ids)
    founder_id = Founder.objects.filter(user__pk__gte=ids.first_user).values_list("user_id", flat=True).first()
    people = world.people
    developer_id, investor_id = (int(ids.first_user + people.developers[0]), int(ids.first_user + people.investors[0]))
    both = oracle.scores(founder_id, [f"developer:{developer_id}", f"investor:{investor_id}"])
    apart = [oracle.scores(founder_id, [f"developer:{developer_id}"])[0],
             oracle.scores(founder_id, [f"investor:{investor_id}"])[0]]
    np.testing.assert_allclose(both, apart)
    assert oracle.role(founder_id) == "founder" and people.roles[founder_id - ids.first_user] == FOUNDER
    assert ((both >= 0) & (both <= 1)).all()


def test_acceptance_names_who_accepts_an_application_or_contact_as_the_rows_say(seeded):
    """The lead founder (a startup's first founder link) accepts applications to its positions and investors'
    contacts; a contacted developer or investor accepts the founder's first startup; with the accepter's own
    match through accept_chance. Other events, and founders without a startup, have nobody to accept them."""
    world, ids = seeded
    oracle = WorldOracle(world, ids)
    lead, first = {}, {}
    for startup, founder in Startup.founders.through.objects.order_by("id").values_list("startup_id", "founder_id"):
        lead.setdefault(startup, founder)
        first.setdefault(founder, startup)
    startup_of = dict(Position.objects.values_list("id", "startup_id"))
    demo = Interaction.objects.filter(user__pk__gte=ids.first_user)
    seen = set()
    for event in demo.filter(kind__in=["apply", "contact", "view", "like"]).order_by("id")[:3000]:
        key = f"{event.item_type}:{event.item_id}"
        acceptance = oracle.acceptance(event.user_id, event.kind, key)
        if event.kind in ("view", "like"):
            assert acceptance is None
            continue
        if event.kind == "apply":
            expected = (lead[startup_of[event.position_id]], f"developer:{event.user_id}")
        elif event.item_type == "startup":
            expected = (lead[event.startup_id], f"investor:{event.user_id}")
        elif event.user_id in first:
            expected = (event.item_id, f"startup:{first[event.user_id]}")
        else:
            assert acceptance is None  # a founder without a startup
            continue
        assert (acceptance.user_id, acceptance.item_key) == expected
        accepter, accepted = expected
        assert acceptance.chance == pytest.approx(float(accept_chance(oracle.scores(accepter, [accepted])[0])))
        assert acceptance.chance == pytest.approx(oracle.accept_probability(accepter, accepted))
        seen.add((event.kind, event.item_type))
    assert seen == {("apply", "position"), ("contact", "startup"), ("contact", "developer"), ("contact", "investor")}


def test_refuses_items_and_users_outside_the_world_or_the_role(seeded):
    world, ids = seeded
    oracle = WorldOracle(world, ids)
    developer_id = int(ids.first_user + world.people.developers[0])
    investor_id = int(ids.first_user + world.people.investors[0])
    with pytest.raises(ValueError, match="not in this demo world"):
        oracle.scores(developer_id, [f"position:{ids.first_position - 1}"])  # the factory's position
    with pytest.raises(ValueError, match="no taste for developers"):
        oracle.scores(developer_id, [f"developer:{developer_id}"])
    with pytest.raises(ValueError, match="is not a developer"):
        oracle.scores(int(ids.first_user + world.people.founders[0]), [f"developer:{investor_id}"])
    with pytest.raises(ValueError, match="not in this demo world"):
        oracle.scores(ids.first_user - 1, [f"position:{ids.first_position}"])


def test_a_world_of_another_seed_does_not_fit_the_rows(seeded):
    with pytest.raises(WorldMismatch):
        ids_in_database(make_world(SEED + 1, SIZE, DEFAULT_END))
