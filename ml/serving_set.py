"""The components one process serves, made ready to rank: one numbering, item types, the content
vocabulary, retrieval indexes and item popularity. The API (``recommendations.model_store``) builds one
from the active versions; the served evaluation (``ml.evaluation``) from models it has just fitted, so
both rank through the same :class:`ml.core.ranker.Ranker` with the same candidates.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings

from ml.core.base import Recommender, UserState
from ml.core.data import IdMap
from ml.core.diversify import DEFAULT_DIVERSITY, DEFAULT_MAX_PER_STARTUP, NO_GROUP
from ml.core.features import ContentVocabulary, crowding_penalty, platform_item_terms, round_fits
from ml.core.ranker import Ranker, align
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
        not_raising, round_size = np.zeros(n, dtype=bool), np.full(n, np.nan)
        applicants, openings, positions = np.zeros(n), np.ones(n), np.zeros(n, dtype=bool)
        for row, key in enumerate(item_ids.ids):
            record = records.get(key)
            if record is None:
                continue
            if "raising" in record:
                not_raising[row] = not record["raising"]
                round_size[row] = np.nan if record["round_size"] is None else record["round_size"]
            else:
                applicants[row], openings[row] = record["applicants"], record["openings"]
                positions[row] = True
        return cls(not_raising, round_size, applicants, openings, positions)

    def crowding(self) -> np.ndarray:
        """(n_items,) what each item's blended score loses for its crowd (``crowding_penalty``), at the
        setting now."""
        return crowding_penalty(self.applicants, self.openings, settings.CROWDED_APPLICANTS_PER_OPENING)

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
                      include_not_raising: bool) -> np.ndarray | None:
    """(n_items,) bool: the items the market lets a user of ``role`` be shown, or None for all. An investor
    sees startups raising a round their ``checks`` (``check_range``) fit; ``include_not_raising`` widens
    to startups that are not raising and would fit. People and positions are never an investor's
    items (the role's types decide that); other roles are not filtered."""
    if market is None or role != Role.INVESTOR:
        return None
    fits = round_fits(market.round_size, *checks)
    return fits if include_not_raising else fits & ~market.not_raising


PEOPLE_TYPES = ("developer", "investor")  # whose dismissal of a founder's items rebuffs that founder


def rebuffed_by(*, item_ids: IdMap, dismissals, founders: dict[str, tuple[int, ...]]) -> dict[int, np.ndarray]:
    """{user id: item rows (of ``item_ids``) of candidates who said no to that user's side}: a two-sided
    market recommends no one who would not answer. ``dismissals``: (user id, item key) of each dismissal
    (``platform_data.dismissals``, or a holdout's earlier ones); ``founders``: {startup or position key:
    its founders' user ids} (``platform_data.item_founders``). A developer or investor who dismissed any of
    a founder's startups or positions rebuffs that founder; a founder who dismissed a developer closes their
    positions to that developer."""
    positions_of = _positions_by_founder(item_ids=item_ids, founders=founders)
    rebuffed: dict[int, set[int]] = {}
    for user, key in dismissals:
        item_type, pk = parse_item_key(key)
        if item_type in CATALOG_TYPES:  # a person said no to a founder's startup or position
            rows = [item_ids.index[person] for person in (f"{t}:{user}" for t in PEOPLE_TYPES)
                    if person in item_ids.index]
            for founder in founders.get(key, ()):
                rebuffed.setdefault(founder, set()).update(rows)
        elif item_type == "developer":  # a founder said no to a developer
            rebuffed.setdefault(pk, set()).update(positions_of.get(user, ()))
    return {user: np.fromiter(sorted(rows), dtype=np.int64, count=len(rows)) for user, rows in rebuffed.items() if rows}


def _positions_by_founder(*, item_ids: IdMap, founders: dict[str, tuple[int, ...]]) -> dict[int, list[int]]:
    """{founder's user id: the item rows of their startups' positions}."""
    positions_of: dict[int, list[int]] = {}
    for key, owners in founders.items():
        row = item_ids.index.get(key)
        if row is not None and parse_item_key(key)[0] == "position":
            for founder in owners:
                positions_of.setdefault(founder, []).append(row)
    return positions_of


def without_rebuffs(allowed: np.ndarray, rebuffed: np.ndarray | None) -> np.ndarray:
    """``allowed`` less the rows ``rebuffed`` (a copy when any; ``allowed`` itself when none)."""
    if rebuffed is None or not len(rebuffed):
        return allowed
    allowed = allowed.copy()
    allowed[rebuffed] = False
    return allowed


@dataclass(frozen=True)
class ServingSet:
    components: dict[str, Recommender] = field(default_factory=dict)  # aligned to user_ids / item_ids
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
    founders_of: dict[int, tuple[int, ...]] = field(default_factory=dict)  # startup/position row -> founders' ids
    owned: dict[int, np.ndarray] = field(default_factory=dict)  # founder's user id -> their catalog items' rows

    @property
    def ready(self) -> bool:
        """Something to rank with: at least one component (and so an item numbering)."""
        return bool(self.components)

    def allowed(self, item_types) -> np.ndarray:
        masks = [self.type_masks[t] for t in item_types if t in self.type_masks]
        allowed = np.logical_or.reduce(masks) if masks else np.zeros(len(self.item_ids), dtype=bool)
        # Known unservable items never compete: a diversified list that picked one and then dropped it
        # would differ from the one the evaluation measures over servable items only.
        return allowed if self.servable is None else allowed & self.servable

    def allowed_for(self, item_types, *, role: str, checks: tuple[float, float],
                    include_not_raising: bool = False, user_id: int | None = None) -> np.ndarray:
        """:meth:`allowed`, narrowed by the market for a user of ``role`` with ``checks`` (``check_range``)
        and without those who rebuffed user ``user_id`` (``rebuffed_by``): the candidates serving ranks."""
        allowed = self.allowed(item_types)
        market = market_candidates(self.market, role=role, checks=checks, include_not_raising=include_not_raising)
        allowed = allowed if market is None else allowed & market
        return without_rebuffs(allowed, self.rebuffs.get(user_id))

    def ranker(self, weights: dict[str, float]) -> Ranker:
        return Ranker(self.components, weights, len(self.item_ids), popularity=self.popularity,
                      retrieval=self.retrieval, unavailable=self.unavailable, item_vectors=self.item_vectors or None,
                      groups=self.groups, crowding=self.crowding)

    def with_market(self, market: ItemMarket | None) -> ServingSet:
        """This set with ``market`` (in its numbering) and the crowding it gives: a new application
        counts without loading the models again."""
        return replace(self, market=market, crowding=None if market is None else market.crowding())

    def with_rebuffs(self, *, dismissals, founders: dict[str, tuple[int, ...]]) -> ServingSet:
        """This set knowing who rebuffed whom (``rebuffed_by``) in its numbering: a new dismissal counts
        without loading the models again."""
        if self.item_ids is None:
            return self
        founders_of = {self.item_ids.index[key]: ids for key, ids in founders.items() if key in self.item_ids.index}
        owned: dict[int, list[int]] = {}
        for row, ids in founders_of.items():
            for founder in ids:
                owned.setdefault(founder, []).append(row)
        return replace(self, rebuffs=rebuffed_by(item_ids=self.item_ids, dismissals=dismissals, founders=founders),
                       founders_of=founders_of, owned={f: np.asarray(sorted(rows)) for f, rows in owned.items()})

    def reciprocal(self, *, user_id: int, role: str, rows: np.ndarray) -> list[float | None]:
        """Per item row, the other side's interest in user ``user_id``: the content model's score of the
        asker's side for the candidate as a user (as trained), the best over the items concerned. A founder's
        developers and investors: their score of the founder's startups and positions; a developer's
        positions: their startup's founders' score of the developer. None where it does not apply (an
        investor's startups, a developer's startups) or a side is unknown to the content model."""
        content = self.components.get(CONTENT)
        if content is None:
            return [None] * len(rows)
        if role == Role.FOUNDER:
            return [self._their_interest(content, [self._user_row(row)], self.owned.get(user_id)) for row in rows]
        if role == Role.DEVELOPER:
            me = self.item_ids.index.get(f"developer:{user_id}")
            return [self._founders_interest(content, int(row), me) for row in rows]
        return [None] * len(rows)

    def _founders_interest(self, content: Recommender, row: int, developer_row: int | None) -> float | None:
        """For a position ``row``: its founders' interest in the developer item ``developer_row``."""
        positions = self.type_masks.get("position")
        if developer_row is None or positions is None or not positions[row]:
            return None
        founders = [self.user_ids.index.get(str(founder)) for founder in self.founders_of.get(row, ())]
        return self._their_interest(content, founders, np.array([developer_row]))

    def _user_row(self, item_row) -> int | None:
        """The user row of the person item ``item_row`` is (a developer or investor), None if untrained."""
        return self.user_ids.index.get(str(parse_item_key(self.item_ids.ids[int(item_row)])[1]))

    @staticmethod
    def _their_interest(content: Recommender, user_rows: list[int | None],
                        item_rows: np.ndarray | None) -> float | None:
        """The best score any of ``user_rows`` gives any of ``item_rows``; None when either is empty."""
        users = [row for row in user_rows if row is not None]
        if not users or item_rows is None or not len(item_rows):
            return None
        return float(content.score(np.asarray(users))[:, item_rows].max())

    def user_state(self, user_id: int, history, negatives, terms: list[str], features: np.ndarray) -> UserState:
        """User ``user_id`` as they are now: their current interaction rows (in this set's item numbering),
        declared terms and dense features."""
        declared = None if self.vocabulary is None else self.vocabulary.transform([terms])
        return UserState(self.user_ids.index.get(str(user_id)), history, negatives, declared,
                         np.asarray(features, dtype=np.float32))


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
    if CONTENT in loaded:
        vocabulary = loaded[CONTENT].vocabulary()
        if fresh_items:
            keys = list(fresh_items)
            vectors = vocabulary.transform([platform_item_terms(fresh_items[key]) for key in keys])
            loaded[CONTENT] = loaded[CONTENT].with_items(keys, vectors)
    reference = next((loaded[name] for name in REFERENCE_ORDER if name in loaded), None)
    if reference is None:
        return ServingSet(unavailable=dict(unavailable))
    users, items = reference.user_ids, reference.item_ids
    item_types = np.asarray([parse_item_key(key)[0] for key in items.ids])
    components = {name: align(model, users, items) for name, model in loaded.items()}
    serving = ServingSet(
        components=components, unavailable=dict(unavailable), user_ids=users, item_ids=items,
        vocabulary=vocabulary,
        type_masks={item_type: item_types == item_type for item_type in np.unique(item_types)},
        retrieval=Retrieval(components, item_types),
        popularity=np.fromiter((popularity.get(key, 0) for key in items.ids), dtype=np.float32, count=len(items)),
        item_vectors=_diversity_vectors(components),
        groups=np.fromiter(((startups or {}).get(key, NO_GROUP) for key in items.ids), dtype=np.int64,
                           count=len(items)),
        servable=None if startups is None else np.fromiter(
            (key in startups or parse_item_key(key)[0] not in CATALOG_TYPES for key in items.ids), dtype=bool,
            count=len(items)),
    )
    return serving.with_market(None if market is None else ItemMarket.of(items, market))


def _diversity_vectors(components: dict[str, Recommender]) -> tuple:
    """((n_items, d), ...) the item embeddings of each of DIVERSITY_EMBEDDINGS that has them, in the set's
    numbering (aligned components translate theirs)."""
    forms = [components[name].linear_items() for name in DIVERSITY_EMBEDDINGS if name in components]
    return tuple(form[0] for form in forms if form is not None)
