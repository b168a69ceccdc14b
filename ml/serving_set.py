"""The components one process serves, made ready to rank: one numbering, item types, the content
vocabulary, retrieval indexes and item popularity. The API (``recommendations.model_store``) builds one
from the active versions; the served evaluation (``ml.evaluation``) from models it has just fitted, so
both rank through the same :class:`ml.core.ranker.Ranker` with the same candidates.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings

from ml.core.base import Recommender, UserState
from ml.core.content import ContentRecommender
from ml.core.data import EngineError, IdMap, fitted
from ml.core.diversify import DEFAULT_DIVERSITY, DEFAULT_MAX_PER_STARTUP, NO_GROUP
from ml.core.features import ContentVocabulary, crowding_penalty, platform_item_terms, round_fits
from ml.core.ranker import Component, Ranker, align
from ml.core.registry import COLLABORATIVE, CONTENT, EASE, RP3BETA, TWO_TOWER
from ml.core.retrieval import Retrieval
from profiles.models import Role

from .platform_data import parse_item_key

# Whose item and user numbering the others are aligned to: the first of these that is loaded. Content
# first: it knows every item of its snapshot, interacted with or not.
REFERENCE_ORDER = (CONTENT, COLLABORATIVE, TWO_TOWER, EASE, RP3BETA)
CATALOG_TYPES = ("position", "startup")  # the items that belong to a startup; people belong to none
# Whose item embeddings a diversified ranking compares items by: each of these that is loaded, their cosine
# similarities averaged. Content says "unlike" as a user sees it (skills, industries, stage, words), the
# collaborative factors as people behave (items the same people take); on the demo world MMR over content
# alone raised intra-list diversity but lowered coverage, over the factors alone the reverse, over both
# each rose (README, "The engine"). The Two-Tower's item vectors moved neither.
DIVERSITY_EMBEDDINGS = (CONTENT, COLLABORATIVE)


@dataclass(frozen=True)
class Diversify:
    """How a ranking is re-ranked for diversity and exposure (``ml.core.diversify``): a request's fields,
    and what the served evaluation measures; the defaults are what a request that sets neither gets."""

    diversity: float = DEFAULT_DIVERSITY  # 0-1: MMR over ServingSet.item_vectors
    max_per_startup: int | None = DEFAULT_MAX_PER_STARTUP  # results of one startup (itself and its positions)


# A position with at most this share of CROWDED_APPLICANTS_PER_OPENING in applicants per opening says so in its
# reasons: 2 at the default 20 (in the demo world 269 of its 287 open positions).
FEW_APPLICANTS_SHARE = 0.1
MARKET = "market"  # what the market's reasons come from, beside the components (an explanation's "algorithm")
FEW_APPLICANTS_TEXT = "Few applicants so far"
RECIPROCAL = "reciprocal"  # the other side's interest in the asker, beside the components' scores


@dataclass(frozen=True)
class ItemMarket:
    """Per item row of one numbering, what the market's rules read (``ml.platform_data.item_market``):
    each startup's round, each position's applicants and openings."""

    not_raising: np.ndarray  # (n_items,) bool: a startup that is not raising (False for every other item)
    round_size: np.ndarray  # (n_items,) float USD; NaN where not said, or not a startup
    applicants: np.ndarray  # (n_items,) float; 0 for items that are not positions
    openings: np.ndarray  # (n_items,) float; 1 for items that are not positions
    positions: np.ndarray  # (n_items,) bool: a position with a record

    @classmethod
    def of(cls, item_ids: IdMap, records: dict[str, dict]) -> ItemMarket:
        """``records`` ({item key: record}) in ``item_ids``' numbering; an item without one (a person, or a
        row deleted since) is neither a startup that is not raising nor crowded."""
        n = len(item_ids)
        empty = cls(np.zeros(n, dtype=bool), np.full(n, np.nan), np.zeros(n), np.ones(n), np.zeros(n, dtype=bool))
        return empty.updated(item_ids, records)

    def updated(self, item_ids: IdMap, records: dict[str, dict]) -> ItemMarket:
        """This market with the items of ``records`` (as for :meth:`of`) as they say, the others as they are: a
        copy (a request may be reading this one)."""
        not_raising, round_size = self.not_raising.copy(), self.round_size.copy()
        applicants, openings, positions = self.applicants.copy(), self.openings.copy(), self.positions.copy()
        for key, record in records.items():
            row = item_ids.index.get(key)
            if row is None:
                continue
            if "raising" in record:
                not_raising[row] = not record["raising"]
                round_size[row] = np.nan if record["round_size"] is None else record["round_size"]
            else:
                applicants[row], openings[row] = record["applicants"], record["openings"]
                positions[row] = True
        return ItemMarket(not_raising, round_size, applicants, openings, positions)

    def crowding(self) -> np.ndarray | None:
        """(n_items,) what each item's blended score loses for its crowd (``crowding_penalty``), at the
        setting now; None when nothing is crowded, found here once rather than by every request's ranker
        (a pass over a million items: 1.3 ms)."""
        penalty = crowding_penalty(self.applicants, self.openings, settings.CROWDED_APPLICANTS_PER_OPENING)
        return penalty if penalty.any() else None

    def few_applicants(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) bool: positions among ``rows`` with at most FEW_APPLICANTS_SHARE of the crowded
        threshold in applicants per opening (a non-position has no openings to fill: False)."""
        rows = np.asarray(rows, dtype=np.int64)
        per_opening = self.applicants[rows] / np.maximum(self.openings[rows], 1.0)
        return self.positions[rows] & (
            per_opening <= FEW_APPLICANTS_SHARE * settings.CROWDED_APPLICANTS_PER_OPENING)


def check_range(record: dict | None) -> tuple[float, float]:
    """(smallest, largest) check of an investor's profile ``record``; (0, 0) when not said: every round fits."""
    record = record or {}
    return float(record.get("check_size_min") or 0), float(record.get("check_size_max") or 0)


def market_candidates(market: ItemMarket | None, *, role: str, checks: tuple[float, float],
                      include_not_raising: bool, rows: np.ndarray | None = None) -> np.ndarray | None:
    """(n_items,) bool: the items the market lets a user of ``role`` be shown, or None for all; of the item
    ``rows`` only when given. An investor sees startups raising a round their ``checks`` (``check_range``)
    fit; ``include_not_raising`` widens to startups that are not raising and would fit. People and
    positions are never an investor's items (the role's types decide that); other roles are not filtered."""
    if market is None or role != Role.INVESTOR:
        return None
    at = slice(None) if rows is None else rows
    fits = round_fits(market.round_size[at], *checks)
    return fits if include_not_raising else fits & ~market.not_raising[at]


PEOPLE_TYPES = ("developer", "investor")  # whose dismissal of a founder's items rebuffs that founder


def rebuffed_by(*, item_ids: IdMap, dismissals, founders: dict[str, tuple[int, ...]],
                about: set[int] | None = None) -> dict[int, np.ndarray]:
    """{user id: item rows (of ``item_ids``) of candidates who said no to that user's side}: a two-sided
    market recommends no one who would not answer. ``dismissals``: (user id, item key) of each dismissal
    (``platform_data.dismissals``, or a holdout's earlier ones); ``founders``: {startup or position key:
    its founders' user ids} (``platform_data.item_founders``); ``about``: only the rebuffs of these users
    (None: all). A developer or investor who dismissed any of a founder's startups or positions rebuffs that
    founder; a founder who dismissed a developer closes their positions to that developer."""
    to_founders: list[tuple[int, tuple[int, ...]]] = []  # (the developer or investor, the founders they rebuffed)
    from_founders: list[tuple[int, int]] = []  # (the founder, the developer they rebuffed)
    for user, key in dismissals:
        item_type, pk = parse_item_key(key)
        if item_type in CATALOG_TYPES:  # a person said no to a founder's startup or position
            theirs = _among(founders.get(key, ()), about)
            if theirs:
                to_founders.append((user, theirs))
        elif item_type == "developer" and (about is None or pk in about):  # a founder said no to a developer
            from_founders.append((user, pk))
    positions_of = _owned_by_founders(item_ids=item_ids, founders=founders,
                                      owners=None if about is None else {user for user, _ in from_founders})["position"]
    rebuffed: dict[int, set[int]] = {}
    for user, theirs in to_founders:
        rows = _as_people(item_ids, user)
        for founder in theirs:
            rebuffed.setdefault(founder, set()).update(rows)
    for founder, developer in from_founders:
        rebuffed.setdefault(developer, set()).update(positions_of.get(founder, ()))
    return _sorted_rows(rebuffed)


def answered_by(*, item_ids: IdMap, commitments, founders: dict[str, tuple[int, ...]],
                about: set[int] | None = None) -> dict[int, np.ndarray]:
    """{user id: item rows (of ``item_ids``) whose side said yes to that user}: the candidates already
    interested in the asker, the other half of a mutual match. ``commitments``: (user id, item key) of each
    application, contact, investment interest or acceptance (``platform_data.commitments``, or a holdout's
    earlier ones); ``founders`` as for ``rebuffed_by``; ``about``: only the answers to these users (None: all).
    - a developer who applied to a founder's position, or accepted their startup's contact, said yes to that
      founder (the founder's item ``developer:<id>``); an investor who contacted, showed interest in or
      accepted a founder's startup, likewise (``investor:<id>``);
    - a founder who contacted or accepted a developer said yes to the developer about the founder's positions;
      one who contacted or accepted an investor, to the investor about the founder's startups."""
    to_founders: list[tuple[int, tuple[int, ...]]] = []  # (the developer or investor, the founders they said yes to)
    from_founders: list[tuple[int, str, int]] = []  # (the founder, the type they said yes to, that person)
    for user, key in commitments:
        item_type, pk = parse_item_key(key)
        if item_type in CATALOG_TYPES:  # a developer or investor said yes to the item's founders
            theirs = _among(founders.get(key, ()), about)
            if theirs:
                to_founders.append((user, theirs))
        elif about is None or pk in about:  # a founder said yes to a developer or an investor
            from_founders.append((user, item_type, pk))
    # what each founder owns, of the founders who said yes to someone asked about (a million items' founders
    # walked for a few thousand of them otherwise)
    owned = _owned_by_founders(item_ids=item_ids, founders=founders,
                               owners=None if about is None else {user for user, _, _ in from_founders})
    answered: dict[int, set[int]] = {}
    for user, theirs in to_founders:
        rows = _as_people(item_ids, user)
        for founder in theirs:
            answered.setdefault(founder, set()).update(rows)
    for founder, item_type, pk in from_founders:  # their positions for a developer, their startups for an investor
        mine = owned["position" if item_type == "developer" else "startup"]
        answered.setdefault(pk, set()).update(mine.get(founder, ()))
    return _sorted_rows(answered)


def _among(users: tuple[int, ...], about: set[int] | None) -> tuple[int, ...]:
    return users if about is None else tuple(user for user in users if user in about)


def _as_people(item_ids: IdMap, user: int) -> list[int]:
    """The item rows of user ``user`` as a developer or an investor (none when neither)."""
    return [item_ids.index[person] for person in (f"{t}:{user}" for t in PEOPLE_TYPES) if person in item_ids.index]


def _sorted_rows(rows_of: dict[int, set[int]]) -> dict[int, np.ndarray]:
    return {user: np.fromiter(sorted(rows), dtype=np.int64, count=len(rows)) for user, rows in rows_of.items() if rows}


def _owned_by_founders(*, item_ids: IdMap, founders: dict[str, tuple[int, ...]],
                       owners: set[int] | None = None) -> dict[str, dict[int, list[int]]]:
    """{"position" and "startup": {founder's user id: the item rows of their startups' positions, or their
    startups}}, in one pass over ``founders`` (a million items' at the million); of ``owners`` only, when given."""
    owned: dict[str, dict[int, list[int]]] = {"position": {}, "startup": {}}
    if owners is not None and not owners:
        return owned
    for key, its_founders in founders.items():
        its_founders = _among(its_founders, owners)
        row = item_ids.index.get(key) if its_founders else None
        theirs = owned.get(key.partition(":")[0])
        if row is not None and theirs is not None:
            for founder in its_founders:
                theirs.setdefault(founder, []).append(row)
    return owned


def _merged(held: dict[int, np.ndarray], new: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """{user id: rows} of ``held`` with the rows of ``new`` added (a new dict: a request may be reading ``held``)."""
    return held | {user: np.union1d(held.get(user, NO_ROWS), rows) for user, rows in new.items()}


def without_rebuffs(allowed: np.ndarray, rebuffed: np.ndarray | None) -> np.ndarray:
    """``allowed`` less the rows ``rebuffed`` (a copy when any; ``allowed`` itself when none)."""
    if rebuffed is None or not len(rebuffed):
        return allowed
    allowed = allowed.copy()
    allowed[rebuffed] = False
    return allowed


NO_ROWS = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class ReverseInterest:
    """The other side's interest in one asker (issue 13.1): for each candidate, the content model's best
    score of a pair of (someone on the candidate's side, as a user) and (the asker's side, as an item), from
    the users' fitted vectors: their declared tastes and what they did (applied to, contacted, dismissed).
    A founder's candidate developer or investor against the founder's startups and positions; a developer's
    candidate position's founders against the developer."""

    content: ContentRecommender
    items: np.ndarray  # the asker's side as item rows: a founder's startups and positions, or the developer
    users_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # rows -> (positions among rows, user rows)
    answered: np.ndarray  # the candidates' rows whose side already said yes to the asker (``answered_by``)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) float32: each candidate's best pair score; for one whose side already said yes to the
        asker (``answered_by``) the most a pair can score, so that an answer given outranks any guess; NaN
        where their side is unknown."""
        rows = np.asarray(rows, dtype=np.int64)
        at, users = self.users_of(rows)
        theirs = np.full(len(rows), np.nan, dtype=np.float32)
        if len(users):
            distinct, inverse = np.unique(users, return_inverse=True)
            np.fmax.at(theirs, at, self.content.pair_scores(distinct, self.items).max(axis=1)[inverse])
        theirs[self.said_yes(rows)] = self.content.pair_score_ceiling()
        return theirs

    def said_yes(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) bool: the candidates whose side already said yes to the asker."""
        return np.isin(rows, self.answered)

    def best_pairs(self, rows: np.ndarray) -> list[tuple[int, int] | None]:
        """Per candidate of ``rows``, the (user row, item row) of the pair that gives it its score; None when
        unknown. One product for all of them: a request asks it of its shown items."""
        at, users = self.users_of(np.asarray(rows, dtype=np.int64))
        best: list[tuple[int, int] | None] = [None] * len(rows)
        if not len(users):
            return best
        pairs = self.content.pair_scores(users, self.items)  # (pairs of candidate and user, asker's items)
        items, scores = pairs.argmax(axis=1), pairs.max(axis=1)
        for n in np.unique(at):
            mine = np.flatnonzero(at == n)
            chosen = mine[np.argmax(scores[mine])]
            best[int(n)] = (int(users[chosen]), int(self.items[items[chosen]]))
        return best


@dataclass(frozen=True)
class ServingSet:
    components: dict[str, Component] = field(default_factory=dict)  # aligned to user_ids / item_ids
    unavailable: dict[str, str] = field(default_factory=dict)  # algorithm -> why it does not serve
    user_ids: IdMap | None = None
    item_ids: IdMap | None = None
    vocabulary: ContentVocabulary | None = None  # encodes a user's declared terms as at training
    type_masks: dict[str, np.ndarray] = field(default_factory=dict)  # item type -> bool per item row
    retrieval: Retrieval | None = None  # cluster indexes per item type, for catalogs too large to scan
    popularity: np.ndarray | None = None  # (n_items,) users who interacted with each item
    item_vectors: tuple = ()  # ((n_items, d), ...) dense or sparse: the embeddings diversity compares items by
    groups: np.ndarray | None = None  # (n_items,) the startup pk of each startup and position, NO_GROUP for people
    servable: np.ndarray | None = None  # (n_items,) bool: not a position closed or a row deleted since (None: all)
    market: ItemMarket | None = None  # rounds and applicants, as of the load (None: no market rules)
    crowding: np.ndarray | None = None  # (n_items,) what each item's blended score loses for its crowd
    rebuffs: dict[int, np.ndarray] = field(default_factory=dict)  # user id -> rows of those who rebuffed them
    answered: dict[int, np.ndarray] = field(default_factory=dict)  # user id -> rows of those who said yes to them
    owned: dict[int, np.ndarray] = field(default_factory=dict)  # founder's user id -> their catalog items' rows
    # each position row's founders' user rows, as CSR (indptr (n_items + 1,), user rows): read for every candidate
    position_founders: tuple[np.ndarray, np.ndarray] | None = None
    person_users: np.ndarray | None = None  # (n_items,) each developer's and investor's user row, -1 else
    # item types -> :meth:`allowed`'s mask, made once: or-ing a million items' type masks cost 1 ms a request
    _allowed: dict[tuple, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def ready(self) -> bool:
        """Something to rank with: at least one component (and so an item numbering)."""
        return bool(self.components)

    def allowed(self, item_types) -> np.ndarray:
        """(n_items,) bool, read-only: the servable items of ``item_types``."""
        key = tuple(item_types)
        if key not in self._allowed:
            masks = [self.type_masks[t] for t in key if t in self.type_masks]
            allowed = np.logical_or.reduce(masks) if masks else np.zeros(len(self.item_numbering()), dtype=bool)
            # Known unservable items never compete: a diversified list that picked one and then dropped it
            # would differ from the one the evaluation measures over servable items only.
            allowed = allowed if self.servable is None else allowed & self.servable
            allowed.setflags(write=False)  # shared by every request: a caller narrows a copy
            self._allowed[key] = allowed
        return self._allowed[key]

    def allowed_for(self, item_types, *, role: str, checks: tuple[float, float],
                    include_not_raising: bool = False, user_id: int | None = None) -> np.ndarray:
        """:meth:`allowed`, narrowed by the market for a user of ``role`` with ``checks`` (``check_range``)
        and without those who rebuffed user ``user_id`` (``rebuffed_by``): the candidates serving ranks."""
        allowed = self.allowed(item_types)
        market = market_candidates(self.market, role=role, checks=checks, include_not_raising=include_not_raising)
        allowed = allowed if market is None else allowed & market
        return without_rebuffs(allowed, None if user_id is None else self.rebuffs.get(user_id))

    def ranker(self, weights: dict[str, float], reciprocal_weight: float | None = None) -> Ranker:
        """A ranker of these components with ``weights``, blending the other side's interest with
        ``reciprocal_weight`` (default: the RECIPROCAL_WEIGHT setting; 0 ranks one side's interest only)."""
        if reciprocal_weight is None:
            reciprocal_weight = settings.RECIPROCAL_WEIGHT
        return Ranker(self.components, weights, len(self.item_numbering()), popularity=self.popularity,
                      retrieval=self.retrieval, unavailable=self.unavailable, item_vectors=self.item_vectors or None,
                      groups=self.groups, crowding=self.crowding, reciprocal_weight=reciprocal_weight)

    def with_market(self, market: ItemMarket | None) -> ServingSet:
        """This set with ``market`` (in its numbering) and the crowding it gives: a new application
        counts without loading the models again."""
        return replace(self, market=market, crowding=None if market is None else market.crowding())

    def with_answers(self, *, dismissals, commitments, founders: dict[str, tuple[int, ...]],
                     about: set[int] | None = None) -> ServingSet:
        """This set knowing who rebuffed whom (``rebuffed_by``), who said yes to whom (``answered_by``) and
        who founded what (``with_founders``) in its numbering: a new dismissal, application, contact or
        acceptance counts without loading the models again. ``about``: the only askers it will rank (an
        evaluation's users; None: anyone)."""
        if self.item_ids is None:
            return self
        return replace(self.with_founders(founders),
                       rebuffs=rebuffed_by(item_ids=self.item_ids, dismissals=dismissals, founders=founders,
                                           about=about),
                       answered=answered_by(item_ids=self.item_ids, commitments=commitments, founders=founders,
                                            about=about))

    def with_new_answers(self, *, dismissals, commitments, founders: dict[str, tuple[int, ...]],
                         market: dict[str, dict]) -> ServingSet:
        """This set knowing also the answers given since :meth:`with_answers` (``dismissals``, ``commitments``
        as there, of those alone; ``founders`` as there, of the startups they concern at least:
        ``ml.platform_data.startups_answered``) and the ``market`` records (``ml.platform_data.item_market``)
        of the positions they applied to. Reading every answer and the whole market again took a minute of
        CPU at a million items, in every web process, after each answer anywhere on the platform."""
        if self.item_ids is None:
            return self
        rebuffs = rebuffed_by(item_ids=self.item_ids, dismissals=dismissals, founders=founders)
        answered = answered_by(item_ids=self.item_ids, commitments=commitments, founders=founders)
        served = self if self.market is None else self.with_market(self.market.updated(self.item_ids, market))
        return replace(served, rebuffs=_merged(self.rebuffs, rebuffs), answered=_merged(self.answered, answered))

    def with_founders(self, founders: dict[str, tuple[int, ...]]) -> ServingSet:
        """This set knowing ``founders`` ({startup or position key: its founders' user ids}) in its
        numbering: whose side a founder's or a position's other side answers (``reverse_interest``)."""
        if self.item_ids is None or self.user_ids is None:
            return self
        owned: dict[int, list[int]] = {}
        counts = np.zeros(len(self.item_ids) + 1, dtype=np.int64)
        pairs: list[tuple[int, int]] = []  # (position row, founder's user row)
        for key, ids in founders.items():
            row = self.item_ids.index.get(key)
            if row is None:
                continue
            for founder in ids:
                owned.setdefault(founder, []).append(row)
                user = self.user_ids.index.get(str(founder))
                if user is not None and parse_item_key(key)[0] == "position":
                    pairs.append((row, user))
        pairs.sort()
        np.add.at(counts, np.asarray([row for row, _ in pairs], dtype=np.int64) + 1, 1)
        users = np.asarray([user for _, user in pairs], dtype=np.int64)
        content = self.components.get(CONTENT)
        if isinstance(content, ContentRecommender):  # what a developer's request scores their candidates' founders by
            content.keep_pair_vectors(users)
        return replace(self, owned={f: np.asarray(sorted(rows)) for f, rows in owned.items()},
                       position_founders=(np.cumsum(counts), users))

    def reverse_interest(self, *, user_id: int, role: str) -> ReverseInterest | None:
        """The other side's interest in user ``user_id`` of ``role``, where their answer is what a
        recommendation asks for: a founder's developers and investors (would they take the founder's
        startups and positions?) and a developer's positions (would their founders take the developer?).
        None for the other answers (an investor's startups, a developer's startups: nobody must say yes),
        without a content model, or where the asker's side is unknown to it."""
        content = self.components.get(CONTENT)
        if not isinstance(content, ContentRecommender):
            return None
        if role == Role.FOUNDER:
            owned = self.owned.get(user_id)
            return None if owned is None else ReverseInterest(content, owned, self._people_as_users,
                                                              self.answered.get(user_id, NO_ROWS))
        if role == Role.DEVELOPER:
            me = self.item_numbering().index.get(f"developer:{user_id}")
            return None if me is None else ReverseInterest(content, np.array([me]), self._founders_as_users,
                                                           self.answered.get(user_id, NO_ROWS))
        return None

    def _people_as_users(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions among ``rows``, user rows): each person item that the content model knows as a user."""
        if self.person_users is None:
            return NO_ROWS, NO_ROWS
        users = self.person_users[rows]
        at = np.flatnonzero(users >= 0)
        return at, users[at]

    def _founders_as_users(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions among ``rows``, user rows): each position's founders that the content model knows.
        Vectorised over the CSR ``position_founders``: a developer's request asks it for every candidate."""
        if self.position_founders is None:
            return NO_ROWS, NO_ROWS
        indptr, users = self.position_founders
        starts, counts = indptr[rows], indptr[rows + 1] - indptr[rows]
        at = np.repeat(np.arange(len(rows)), counts)
        # each pair's offset within its row's run of founders, added to that row's start
        within = np.arange(len(at)) - np.repeat(np.cumsum(counts) - counts, counts)
        return at, users[np.repeat(starts, counts) + within]

    def user_state(self, user_id: int, history, negatives, terms: list[str], features: np.ndarray) -> UserState:
        """User ``user_id`` as they are now: their current interaction rows (in this set's item numbering),
        declared terms and dense features."""
        declared = None if self.vocabulary is None else self.vocabulary.transform([terms])
        users = self.user_ids.index if self.user_ids is not None else {}
        return UserState(users.get(str(user_id)), history, negatives, declared, np.asarray(features, dtype=np.float32))

    def item_numbering(self) -> IdMap:
        """The item numbering: a set with components has one (``build_serving_set``)."""
        if self.item_ids is None:
            raise EngineError("nothing serves: the set has no components, so no item numbering")
        return self.item_ids


def build_serving_set(loaded: dict[str, Recommender], unavailable: dict[str, str], popularity: dict[str, int],
                      fresh_items: dict[str, dict] | None = None, startups: dict[str, int] | None = None,
                      market: dict[str, dict] | None = None) -> ServingSet:
    """``loaded`` (algorithm -> fitted model, each from any snapshot) aligned to one numbering;
    ``popularity``: {item key: users who interacted with it}; ``fresh_items``: {item key: record} of the
    catalog items created or edited since training, which the content model scores at once (the other
    components give them their mean, a z-score of 0, until they are trained on them); ``startups``:
    {item key: startup pk} of startups and positions (``platform_data.item_startups``), what
    ``max_per_startup`` counts; given, a startup or position not in it (closed or deleted) is not servable;
    ``market``: {item key: record} of rounds and applicants (``platform_data.item_market``), what investors'
    candidates and crowded positions' scores follow (None: no market rules)."""
    loaded = dict(loaded)
    vocabulary = None
    content = loaded.get(CONTENT)
    if isinstance(content, ContentRecommender):
        vocabulary = content.vocabulary()
        if fresh_items:
            keys = list(fresh_items)
            vectors = vocabulary.transform([platform_item_terms(fresh_items[key]) for key in keys])
            loaded[CONTENT] = content.with_items(keys, vectors)
    for model in loaded.values():  # here, in gunicorn's master before the fork: no worker's first request makes it
        model.prepare_for_requests()
    reference = next((loaded[name] for name in REFERENCE_ORDER if name in loaded), None)
    if reference is None:
        return ServingSet(unavailable=dict(unavailable))
    users, items = fitted(reference.user_ids, reference.name), fitted(reference.item_ids, reference.name)
    item_types = np.asarray([parse_item_key(key)[0] for key in items.ids])
    components = {name: align(model, users, items) for name, model in loaded.items()}
    person_users = np.fromiter((users.index.get(str(parse_item_key(key)[1]), -1) if item_type in PEOPLE_TYPES else -1
                                for key, item_type in zip(items.ids, item_types, strict=True)),
                               dtype=np.int64, count=len(items))
    counts = np.fromiter((popularity.get(key, 0) for key in items.ids), dtype=np.float32, count=len(items))
    serving = ServingSet(
        components=components, unavailable=dict(unavailable), user_ids=users, item_ids=items, person_users=person_users,
        vocabulary=vocabulary,
        type_masks={item_type: item_types == item_type for item_type in np.unique(item_types)},
        retrieval=Retrieval(components, item_types, popularity=counts), popularity=counts,
        item_vectors=_diversity_vectors(components),
        groups=np.fromiter(((startups or {}).get(key, NO_GROUP) for key in items.ids), dtype=np.int64,
                           count=len(items)),
        servable=None if startups is None else np.fromiter(
            (key in startups or parse_item_key(key)[0] not in CATALOG_TYPES for key in items.ids), dtype=bool,
            count=len(items)),
    )
    return serving.with_market(None if market is None else ItemMarket.of(items, market))


def _diversity_vectors(components: dict[str, Component]) -> tuple:
    """((n_items, d), ...) the item embeddings of each of DIVERSITY_EMBEDDINGS that has them, in the set's
    numbering (aligned components translate theirs)."""
    forms = [components[name].linear_items() for name in DIVERSITY_EMBEDDINGS if name in components]
    return tuple(form[0] for form in forms if form is not None)
