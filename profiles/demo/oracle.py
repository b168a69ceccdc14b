"""The demo world's hidden tastes as a recommender: how well each candidate item matches a user.

The seeded interactions come from ``world.CHANNELS``: a user is shown candidates and picks by
``TASTE_STRENGTH * match + noise``. Ranking a user's candidates by that same ``match`` is therefore the
best ranking of what suits a user, and a yardstick for the served one. Which items a user's next
events touch also depends on what they are shown (``world.Exposure``: by each item's hidden popularity and,
in a big catalog, the industries the user searches): ``propensities`` adds that, and ranks those events
best (no recommender should expect to beat it).

No Django here, like ``world.py``. Primary keys follow from three starting ids: ``store.WorldStore``
gives the world's users, startups and positions consecutive ids in world order, from whatever the
tables' largest id was at seeding time. Only the database knows those ids, so the caller reads the
demo rows and ``WorldIds.from_rows`` finds (and checks) them.

    world_ids = WorldIds.from_rows(world, users={username: pk}, startups={pk: name}, positions={pk: title})
    oracle = WorldOracle.from_seed(seed, size, world_ids)
    oracle.scores(user_id, ["position:12", "startup:3"])  # the hidden match, e.g. array([0.61, 0.47])
    oracle.propensities(user_id, keys)  # match and exposure: how likely the world's events pick each item
    oracle.accept_probability(founder_id, "developer:45")  # how likely the founder accepts that applicant
    oracle.acceptance(developer_id, "apply", "position:12")  # who would accept that application, and how likely
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .world import (
    ASKING_KINDS,
    CHANNELS,
    DEVELOPER,
    DEVELOPER_TARGET,
    FOUNDER,
    INVESTOR,
    INVESTOR_TARGET,
    KIND,
    POSITION,
    STARTUP,
    TASTE_STRENGTH,
    Channel,
    Exposure,
    Interactions,
    World,
    WorldSize,
    accept_chance,
    asked_events,
    make_world,
)

# seed_demo's default --end; matches do not depend on it, but the oracle builds the world exactly as seeded.
DEFAULT_END = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
ROLE_NAMES = {DEVELOPER: "developer", FOUNDER: "founder", INVESTOR: "investor"}
TARGET_TYPES = {"position": POSITION, "startup": STARTUP, "developer": DEVELOPER_TARGET,
                "investor": INVESTOR_TARGET}


class WorldMismatch(ValueError):
    """The database rows are not the world the oracle was asked to rebuild (another seed or size)."""


@dataclass(frozen=True)
class WorldIds:
    """The primary key of the world's first user, startup and position; the others follow in order."""

    first_user: int
    first_startup: int
    first_position: int

    @classmethod
    def from_rows(cls, world: World, users: Mapping[str, int], startups: Mapping[int, str],
                  positions: Mapping[int, str]) -> WorldIds:
        """Find the ids from the demo rows in the database: ``users`` {username: pk} of the demo users,
        ``startups`` {pk: name} of the startups they founded, ``positions`` {pk: title} of those
        startups' positions. Checks every row against the world, so a world seeded with other options
        fails loudly here instead of silently scoring the wrong people."""
        people = world.people
        if len(users) != len(people.usernames) or people.usernames[0] not in users:
            raise WorldMismatch(f"the database holds {len(users)} demo users; this world has {len(people.usernames)}"
                                f" (first {people.usernames[0]!r})")
        ids = cls(users[people.usernames[0]], min(startups, default=1), min(positions, default=1))
        _check_block("user", ids.first_user, people.usernames, {pk: name for name, pk in users.items()})
        _check_block("startup", ids.first_startup, world.startups.name, startups)
        _check_block("position", ids.first_position, world.positions.title, positions)
        return ids


def _check_block(what: str, first: int, expected: Sequence[str], found: Mapping[int, str]) -> None:
    """The rows ``found`` {pk: label} must be exactly ``expected`` at consecutive ids from ``first``."""
    if len(found) != len(expected):
        raise WorldMismatch(f"the database holds {len(found)} demo {what}s; this world has {len(expected)}")
    for offset, label in enumerate(expected):
        if found.get(first + offset) != label:
            raise WorldMismatch(f"{what} {first + offset} is {found.get(first + offset)!r} in the database; "
                                f"this world has {label!r} there")


@dataclass(frozen=True)
class Acceptance:
    """Who may accept an application or contact (a user id), what they accept (an item key) and how likely."""

    user_id: int
    item_key: str
    chance: float


class WorldOracle:
    """Each (user, item) pair's hidden match in [0, 1], for users and items given by primary key."""

    def __init__(self, world: World, ids: WorldIds) -> None:
        self.world = world
        self.ids = ids
        people = world.people
        # A user's index within their role's table (developer 0, 1, ... in user order), as the matches take it.
        self._within_role = np.full(len(people.roles), -1, dtype=np.int64)
        for members in (people.developers, people.founders, people.investors):
            self._within_role[members] = np.arange(len(members))
        self._channels = {(c.role, c.target_type): c for c in CHANNELS}
        self._exposures: dict[Channel, Exposure] = {}

    @classmethod
    def from_seed(cls, seed: int, size: WorldSize, ids: WorldIds, end: int = DEFAULT_END) -> WorldOracle:
        """The oracle of ``manage.py seed_demo --seed seed`` with ``size`` (and ``--end``, as unix seconds)."""
        return cls(make_world(seed, size, end), ids)

    def item_keys(self, item_type: str) -> list[str]:
        """Every item of ``item_type`` ("position", "startup", "developer", "investor") the world made, as keys."""
        people, target_type = self.world.people, TARGET_TYPES[item_type]
        if target_type == POSITION:
            pks = self.ids.first_position + np.arange(len(self.world.positions.title))
        elif target_type == STARTUP:
            pks = self.ids.first_startup + np.arange(len(self.world.startups.name))
        else:
            pks = self.ids.first_user + (people.developers if target_type == DEVELOPER_TARGET else people.investors)
        return [f"{item_type}:{pk}" for pk in pks.tolist()]

    def role(self, user_id: int) -> str:
        return ROLE_NAMES[int(self.world.people.roles[self._user_index(user_id)])]

    def scores(self, user_id: int, item_keys: Sequence[str]) -> np.ndarray:
        """(len(item_keys),) float: the user's match with each item ("position:12", "developer:45", ...),
        in [0, 1]: the hidden taste alone.

        ValueError for an item the world did not make, or of a type the user's role never acts on."""
        return self._score(user_id, item_keys, exposure=False)

    def propensities(self, user_id: int, item_keys: Sequence[str]) -> np.ndarray:
        """(len(item_keys),) float: ``TASTE_STRENGTH * match + log(exposure)``, the log of how often the
        world's events would pick each item for this user, up to a constant (candidates are drawn by
        ``world.Exposure``, in proportion to popularity and, in a big catalog, from the industries the user
        searches; then chosen by softmax of the taste; nearly exact while one candidate does not dominate).
        Ranking by it predicts the user's next events best; ranking by ``scores`` ignores what the user is
        likely to be shown."""
        return self._score(user_id, item_keys, exposure=True)

    def accept_probability(self, target_user_id: int, accepted_key: str) -> float:
        """How likely the user ``target_user_id`` accepts a contact or application by accepting ``accepted_key``
        (a founder: the developer who applied or the investor who contacted; a developer or investor: the
        contacting founder's startup): ``world.accept_chance`` of their own match of it, as the seeder draws."""
        return float(accept_chance(self.scores(target_user_id, [accepted_key])[0]))

    def acceptance(self, user_id: int, kind: str, item_key: str) -> Acceptance | None:
        """Who would accept the event ``user_id`` made (``kind`` on ``item_key``), what they would accept and how
        likely, by the seeder's own rules (``world.asked_events``: an application is accepted by the lead founder
        of the position's startup, a founder's contact by the person contacted, who accepts the founder's first
        startup, an investor's contact by the startup's lead founder); None for any other event."""
        if kind not in ASKING_KINDS:
            return None
        user = self._user_index(user_id)
        target_type, target = self._target(item_key)
        asked = asked_events(self.world, Interactions(
            user=np.array([user]), kind=np.array([KIND[kind]]), target_type=np.array([target_type]),
            target=np.array([target]), created=np.zeros(1, dtype=np.int64)))
        if not len(asked.event):
            return None
        return Acceptance(user_id=self.ids.first_user + int(asked.user[0]),
                          item_key=self._key(int(asked.target_type[0]), int(asked.target[0])),
                          chance=float(accept_chance(asked.match[0])))

    def item_targets(self, item_keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(target types, indices within their tables) of the keys, both -1 where the world did not make the
        item: a catalog's keys parsed once, for ranking many users against it (``propensities_of``)."""
        types, indices = np.full(len(item_keys), -1, dtype=np.int64), np.full(len(item_keys), -1, dtype=np.int64)
        for n, key in enumerate(item_keys):
            try:
                types[n], indices[n] = self._target(key)
            except (ValueError, KeyError):
                continue
        return types, indices

    def propensities_of(self, user_id: int, types: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """``propensities`` of the items given as ``item_targets`` gives them (none of them -1)."""
        return self._score_targets(user_id, types, indices, exposure=True)

    def _score(self, user_id: int, item_keys: Sequence[str], exposure: bool) -> np.ndarray:
        parsed = np.array([self._target(key) for key in item_keys], dtype=np.int64).reshape(-1, 2)
        return self._score_targets(user_id, parsed[:, 0], parsed[:, 1], exposure)

    def _score_targets(self, user_id: int, types: np.ndarray, indices: np.ndarray, exposure: bool) -> np.ndarray:
        user = self._user_index(user_id)
        role = int(self.world.people.roles[user])
        scores = np.zeros(len(types))
        for target_type in np.unique(types).tolist():
            channel = self._channel(role, target_type)
            slots = np.flatnonzero(types == target_type)
            targets = indices[slots]
            actor = self._within_role[user:user + 1]  # (1,): the match functions score (events,) actors
            scores[slots] = channel.match(self.world, actor, targets[None, :])[0]  # against (events, candidates)
            if exposure:
                shown = self._exposure(channel).probability(actor, targets[None, :])[0]  # what events draw from
                scores[slots] = TASTE_STRENGTH * scores[slots] + np.log(shown)
        return scores

    def _exposure(self, channel: Channel) -> Exposure:
        if channel not in self._exposures:
            self._exposures[channel] = Exposure(self.world, channel)
        return self._exposures[channel]

    def _channel(self, role: int, target_type: int) -> Channel:
        channel = self._channels.get((role, target_type))
        if channel is None:
            names = {code: name for name, code in TARGET_TYPES.items()}
            raise ValueError(f"a {ROLE_NAMES[role]} has no taste for {names[target_type]}s in the demo world")
        return channel

    def _user_index(self, user_id: int) -> int:
        index = user_id - self.ids.first_user
        if not 0 <= index < len(self.world.people.roles):
            raise ValueError(f"user {user_id} is not in this demo world")
        return index

    def _key(self, target_type: int, index: int) -> str:
        """The item key of a target given by type and index within its table (``_target``'s inverse)."""
        people, names = self.world.people, {code: name for name, code in TARGET_TYPES.items()}
        pk = (self.ids.first_position + index if target_type == POSITION
              else self.ids.first_startup + index if target_type == STARTUP
              else self.ids.first_user + int((people.developers if target_type == DEVELOPER_TARGET
                                              else people.investors)[index]))
        return f"{names[target_type]}:{pk}"

    def _target(self, key: str) -> tuple[int, int]:
        """(target type, index within the target's table) of an item key."""
        item_type, pk_text = key.split(":", 1)
        pk, target_type = int(pk_text), TARGET_TYPES[item_type]
        if target_type == POSITION:
            index, count = pk - self.ids.first_position, len(self.world.positions.title)
        elif target_type == STARTUP:
            index, count = pk - self.ids.first_startup, len(self.world.startups.name)
        else:  # a person: the key names their user id, and they must have the role the type says
            user = self._user_index(pk)
            wanted = DEVELOPER if target_type == DEVELOPER_TARGET else INVESTOR
            if self.world.people.roles[user] != wanted:
                raise ValueError(f"{key}: user {pk} is not {'a developer' if wanted == DEVELOPER else 'an investor'}")
            return target_type, int(self._within_role[user])
        if not 0 <= index < count:
            raise ValueError(f"{key} is not in this demo world")
        return target_type, int(index)
