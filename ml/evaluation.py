"""Measured as served: the training procedure, a time-based holdout, and the API's own ranking of it.

The procedure (what ``ml.training`` does with the platform's data, and what the evaluation repeats on an
earlier part of it): carve each user's latest 20% of events as validation (:func:`time_split`), choose
each component's setting and the blend's weights there (``ml.core.tuning.tune``), then fit the chosen
settings on all the data.

The served evaluation (:class:`HeldOutModels`): hold out each user's latest 20% of events (by
``created_at``; at least one event of every user who has any), run the procedure on the earlier 80% (so
its settings and weights are tuned on validation carved from those earlier events: the held-out events
never choose anything), and rank every evaluated user exactly as ``POST /api/v1/recommendations`` does:
a :class:`~ml.serving_set.ServingSet` built from those models (same alignment, retrieval and popularity),
the item types of the user's role, open positions only, an investor's startups those raising a round their
checks fit (the market as the split was made, ``ItemMarket``; crowded positions lowered inside the ranker),
seen and dismissed items left out, the user's declared terms and features encoded as the API encodes them,
through ``ServingSet.ranker(weights).rank``.
A user's rows are their earlier events, as they stood when the held-out ones happened.

Relevant items are the distinct held-out items of positive kinds (not dismiss) that the API could serve
the user: of their role's types, servable now, the market's (an investor's: a round that fits), and new to
them (an item already seen in the earlier part is left out of every ranking, so no ranking could find it
again). Users with none are not evaluated; at
most ``EVALUATION_MAX_USERS`` are (a fixed sample beyond it). Metrics @10 (``M``): NDCG, recall, catalog
coverage (of the items the group's roles may be served), intra-list diversity (over the items' content
vectors) and exposure concentration (the Gini of the served slots per startup, a position counting for its
startup, over the startups the group's roles may be served), with the users counted, for all users, by
role and by segment (training events in the earlier part: cold none, light 1-4, heavy 5+), and mutual
matches@10: per user, the top-10 items they took in the held-out period whose other side said yes to them at
any time (applied, contacted, showed interest or accepted: ``ml.serving_set.answered_by``). The lists are
re-ranked for diversity as the API re-ranks them (``Diversify``: by default as a request that sets
nothing), with the other side's interest blended as served (``RECIPROCAL_WEIGHT``; from the earlier events'
answers, as serving reads them at load), and again one-sided (weight 0) for comparison. Beside the served
ranking, on the same candidates: popularity (earlier-part popularity) and, on a seeded demo world, the
oracle (how the world's events pick items: each candidate's hidden taste match and exposure,
``profiles.demo.oracle``).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from ml.core.base import ProgressCallback, Recommender, load_artifact, save_artifact, top_k
from ml.core.data import NEGATIVE_KINDS, EngineError, Events, IdMap, InteractionData, interaction_matrices
from ml.core.diversify import NO_GROUP
from ml.core.metrics import catalog_coverage, gini, intra_list_diversity, ndcg_at_k, recall_at_k
from ml.core.ranker import single_threaded_blas
from ml.core.registry import EASE, POPULARITY, TWO_TOWER, load_component
from ml.core.retrieval import first_kept
from ml.core.tuning import Maker, Tuned, settings_grid, tune
from recsys_site.exceptions import Conflict

from . import artifacts, platform_data
from .models import Algorithm, HybridWeights, TrainingRun
from .serving_set import (
    Diversify,
    ItemMarket,
    ServingSet,
    answered_by,
    build_serving_set,
    check_range,
    market_candidates,
    rebuffed_by,
    without_rebuffs,
)

logger = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.2
K = 10
SEED = 0
# Ranking a user as served takes a few milliseconds: a fixed sample of this many users keeps the evaluation
# of a large platform to minutes, with a standard error of about 0.005 NDCG.
EVALUATION_MAX_USERS = 2000
# The oracle scores each of a user's candidates by the demo world's match and exposure, about 0.2 s a user
# among a million items on 2 cores (378 s of a million world's training for 2,000 users): beyond this many
# users times items it ranks a fixed sample of the evaluated users (500 at a million items; every user of
# the 50,000-user world's 2,000 among its 142,500), and its metrics' "users" say how many it ranked.
ORACLE_MAX_PAIRS = 500_000_000
HEAVY_FROM = 5  # training events that make a user heavy; light users have 1 to HEAVY_FROM - 1
ROLES = tuple(str(role) for role in platform_data.ROLE_ITEM_TYPES)
SEGMENTS = ("cold", "light", "heavy")
DEMO_SEED = 0  # the seed `make demo` seeds with, the default of seed_demo --seed
HOLDOUT_SPLIT = "split"  # the held-out rows' folder beside the held-out models'

Metrics = dict  # M: {"all": {...}, "by_role": {role: {...}}, "by_segment": {segment: {...}}}


# ---------------------------------------------------------------- the data and its time-based splits


@dataclass(frozen=True)
class Snapshot:
    """The platform as training reads it: the engine's data, each user's events in the order they
    happened (``data``'s matrices are exactly their sum), people's records and which items may be served."""

    data: InteractionData
    events: Events  # each user's in time order
    records: dict[int, dict]  # user id -> record (role, declared profile), as serving reads it
    servable: np.ndarray  # (n_items,) bool


def platform_snapshot() -> Snapshot:
    data, events, records = platform_data.training_rows()
    return Snapshot(data, events, records, platform_data.servable_items(data.item_ids))


def with_events(data: InteractionData, events: Events) -> InteractionData:
    """``data`` with its interactions (positives and dismissals) made of ``events`` alone."""
    matrix, negatives = interaction_matrices(events, data.n_users, data.n_items)
    return replace(data, matrix=matrix, negatives=negatives)


@dataclass(frozen=True)
class TimeSplit:
    """Each user's latest events held out: ``train`` has only the earlier ones (``train_events``, in order,
    from which a split of this split is carved); ``heldout`` (n_users, n_items) is 1 where a held-out
    positive event's item is new to the user (neither seen nor dismissed in ``train``)."""

    train: InteractionData
    train_events: Events
    heldout: sp.csr_matrix
    held_events: int
    fraction: float


def time_split(data: InteractionData, events: Events, fraction: float = HOLDOUT_FRACTION) -> TimeSplit:
    """Hold out each user's latest ``fraction`` of ``events`` (at least one of every user who has any: a
    user whose only event is held out is measured as a newcomer). ``events``: each user's in time order."""
    latest = events.latest_of_each_user(fraction)
    kept, held = events.take(~latest), events.take(latest)
    train = with_events(data, kept)
    positives = held.take(~held.of_kinds(NEGATIVE_KINDS))
    heldout = _ones(positives.users, positives.items, data.n_users, data.n_items)
    known = (train.matrix if train.negatives is None else train.matrix + abs(train.negatives)) > 0
    heldout = (heldout - heldout.multiply(known)).tocsr()
    heldout.eliminate_zeros()
    return TimeSplit(train, kept, heldout, len(held), fraction)


def _ones(rows, cols, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """The (n_rows, n_cols) matrix with a one at each cell (rows[k], cols[k])."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_rows, n_cols))
    matrix.data[:] = 1.0  # repeated cells added up: one relevant item is one
    return matrix


# ---------------------------------------------------------------- the training procedure


def skip_reason(algorithm: str, data: InteractionData) -> str:
    """Why ``algorithm`` cannot learn from ``data`` ("" when it can): it is reported as skipped, the others train."""
    if algorithm == TWO_TOWER:
        from ml.core.two_tower import MIN_INTERACTIONS  # imports torch: only where training happens

        if data.matrix.nnz < MIN_INTERACTIONS:
            return (f"needs at least {MIN_INTERACTIONS} interactions (distinct user-item pairs), "
                    f"the platform has {data.matrix.nnz}")
    if algorithm == EASE:
        from ml.core import collaborative

        if data.n_items > collaborative.EASE_MAX_ITEMS:
            return (f"needs at most {collaborative.EASE_MAX_ITEMS} items (it solves a dense items x items "
                    f"matrix), the platform has {data.n_items}")
    return ""


def new_model(algorithm: str) -> Recommender:
    """An unfitted model with the engine's defaults, the Two-Tower's epochs capped by settings."""
    return _default_maker(algorithm)()


def _default_maker(algorithm: str) -> Maker:
    if algorithm != TWO_TOWER:
        return settings_grid(algorithm, SEED)[0]

    def two_tower() -> Recommender:
        from ml.core.train import TwoTowerRecommender

        model = settings_grid(TWO_TOWER, SEED)[0]()
        cap = settings.TWO_TOWER_MAX_EPOCHS
        if cap > 0 and isinstance(model, TwoTowerRecommender):
            model.config = replace(model.config, epochs=min(model.config.epochs, cap))
        return model
    return two_tower


def config_of(model) -> dict:
    """A model's setting as JSON, as versions record it (ModelVersion.config)."""
    config = getattr(model, "config", None)
    if config is None:
        return {}
    fields = asdict(config) if is_dataclass(config) and not isinstance(config, type) else dict(config)
    return json.loads(json.dumps(fields, default=str))


def setting_of(algorithm: str, config: dict) -> Maker:
    """The maker of the setting with ``config`` (config_of a model): how a later part of a run refits what an
    earlier part chose. The default when the grid has no such setting any more."""
    makers = [_default_maker(algorithm)] if algorithm == TWO_TOWER else settings_grid(algorithm, SEED)
    return next((make for make in makers if config_of(make()) == config), makers[0])


def tune_on(split: TimeSplit, names: list[str], snapshot: Snapshot, fixed: dict[str, Maker] | None = None,
            progress: ProgressCallback | None = None) -> Tuned:
    """Each component's setting and the weights, chosen on ``split``: every setting fitted on its earlier
    events and measured on its held-out ones (``ml.core.tuning.tune``); popularity may earn a weight too.
    The weights are also tuned per role, each role's validation users ranked among what it may be served
    (``Tuned.weights_by_group``). ``fixed`` keeps a component's setting; the Two-Tower has one, its capped
    default. Without held-out items tune carves its own."""
    factories = {TWO_TOWER: _default_maker(TWO_TOWER), **(fixed or {})}
    carved = (split.train, split.heldout) if split.heldout.nnz else None
    roles, allowed = role_groups(snapshot, split.train)
    return tune([*names, POPULARITY], split.train, seed=SEED, split=carved, factories=factories,
                progress=progress, groups=roles, allowed=allowed)


def role_groups(snapshot: Snapshot, data: InteractionData) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(each user row's role, {role: the items it may be served}): how tuning groups validation users."""
    roles = np.asarray([snapshot.records.get(int(user_id), {}).get("role", "") for user_id in data.user_ids.ids])
    return roles, {role: allowed_items(role, data.item_ids, snapshot.servable)
                   for role in platform_data.ROLE_ITEM_TYPES}


def allowed_items(role: str, item_ids: IdMap, servable: np.ndarray) -> np.ndarray:
    """(n_items,) bool: what the API may serve a ``role``: its item types, servable ones."""
    types = np.asarray([key.split(":", 1)[0] for key in item_ids.ids])
    return np.isin(types, platform_data.ROLE_ITEM_TYPES[role]) & servable


def chosen_maker(tuned: Tuned, algorithm: str) -> Maker:
    """The setting tuning chose, or the default for a component that failed on the validation fold (on
    all the data it may still learn: the fold is smaller)."""
    return tuned.makers.get(algorithm) or _default_maker(algorithm)


def fit_holdout_models(tuned: Tuned, names: list[str], data: InteractionData,
                       progress: ProgressCallback | None = None) -> tuple[dict[str, Recommender], dict[str, str]]:
    """(models, failed): each chosen setting fitted on ``data``. A component that cannot learn from ``data``
    is left out, with why."""
    models, failed = {}, {}
    for name in names:
        try:
            models[name] = chosen_maker(tuned, name)().fit(data, progress=progress)
        except EngineError as exc:
            failed[name] = str(exc)
    return models, failed


# ---------------------------------------------------------------- the held-out users


@dataclass(frozen=True)
class EvaluatedUser:
    user_id: int
    row: int  # in the holdout's numbering
    role: str
    segment: str
    terms: list[str]  # declared content terms, as serving reads them
    features: np.ndarray  # (USER_FEATURE_DIM,)
    checks: tuple[float, float] = (0.0, 0.0)  # an investor's check range (check_range), as serving reads it


@dataclass
class Holdout:
    """What the served evaluation ranks and scores: users' rows as of the split (their earlier events),
    the held-out items each could be served (``relevant``), the evaluated users and the items' content."""

    user_ids: IdMap
    item_ids: IdMap
    matrix: sp.csr_matrix  # (n_users, n_items) the earlier events' positive weights
    negatives: sp.csr_matrix  # (n_users, n_items) the earlier dismissals
    relevant: sp.csr_matrix  # (n_users, n_items) 1: a held-out item the API could serve the user
    users: list[EvaluatedUser]
    servable: np.ndarray  # (n_items,) bool
    item_content: sp.csr_matrix | None  # (n_items, v): what diversity is measured over
    held_events: int
    fraction: float
    groups: np.ndarray | None = None  # (n_items,) each startup's and position's startup pk, NO_GROUP for people
    market: ItemMarket | None = None  # the items' rounds and applicants when the split was made
    founders: dict[str, tuple[int, ...]] | None = None  # startup or position key -> its founders, at the split
    mutual: sp.csr_matrix | None = None  # (n_users, n_items) 1: a relevant item whose other side said yes to the user
    said_yes: sp.csr_matrix | None = None  # (n_users, n_items) 1: the earlier applications, contacts, acceptances ...
    _allowed: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _rebuffs: dict[int, np.ndarray] | None = field(default=None, repr=False)

    def allowed(self, role: str) -> np.ndarray:
        """(n_items,) bool: what the API may serve a ``role``: its item types, servable ones."""
        if role not in self._allowed:
            self._allowed[role] = allowed_items(role, self.item_ids, self.servable)
        return self._allowed[role]

    def allowed_for(self, user: EvaluatedUser) -> np.ndarray:
        """(n_items,) bool: what the API may serve ``user``: :meth:`allowed`, narrowed by the market and by
        who rebuffed them as ``ServingSet.allowed_for`` narrows it (an investor: raising rounds their checks
        fit; a founder: no one who dismissed their startups or positions)."""
        market = market_candidates(self.item_market(), role=user.role, checks=user.checks, include_not_raising=False)
        allowed = self.allowed(user.role) if market is None else self.allowed(user.role) & market
        return without_rebuffs(allowed, self.rebuffs().get(user.user_id))

    def allows(self, user_id: int, role: str, checks: tuple[float, float], rows: np.ndarray) -> np.ndarray:
        """(len(rows),) bool: :meth:`allowed_for` the user of ``role`` and ``checks``, of the item ``rows``
        only: what a million users' held-out items are checked against, where a whole row each would
        take an hour."""
        market = market_candidates(self.item_market(), role=role, checks=checks, include_not_raising=False,
                                   rows=rows)
        allowed = self.allowed(role)[rows] if market is None else self.allowed(role)[rows] & market
        rebuffed = self.rebuffs().get(user_id)
        return allowed if rebuffed is None else allowed & ~np.isin(rows, rebuffed)

    def rebuffs(self) -> dict[int, np.ndarray]:
        """Who rebuffed whom (``rebuffed_by``) as the earlier part's dismissals say: what serving knows from
        the interactions it read at load."""
        if self._rebuffs is None:
            self._rebuffs = rebuffed_by(item_ids=self.item_ids, dismissals=self.events_of(self.negatives),
                                        founders=self.item_founders())
        return self._rebuffs

    def events_of(self, cells: sp.csr_matrix | None) -> list[tuple[int, str]]:
        """(user id, item key) of each cell of ``cells`` (users x items of this numbering; None: none)."""
        if cells is None:
            return []
        return [(int(self.user_ids.ids[row]), self.item_ids.ids[item]) for row, item in zip(*cells.nonzero(),
                                                                                            strict=True)]

    def item_market(self) -> ItemMarket:
        """The items' rounds and applicants as the split was made."""
        if self.market is None:  # a split saved before it kept the market: the market as it is now
            self.market = ItemMarket.of(self.item_ids, platform_data.item_market())
        return self.market

    def item_founders(self) -> dict[str, tuple[int, ...]]:
        """{startup or position key: its founders' ids} as the split was made."""
        if self.founders is None:  # a split saved before it kept them: the founders as they are now
            self.founders = platform_data.item_founders()
        return self.founders

    def popularity(self) -> np.ndarray:
        """(n_items,) users with a positive earlier event on each item, as serving's popularity counts them."""
        return np.bincount(self.matrix.indices, minlength=len(self.item_ids)).astype(np.float32)

    def save(self, path: Path) -> None:
        users = [[u.user_id, u.row, u.role, u.segment, u.terms, list(u.checks)] for u in self.users]
        meta = {"user_ids": self.user_ids.to_json(), "item_ids": self.item_ids.to_json(), "users": users,
                "held_events": self.held_events, "fraction": self.fraction}
        if self.founders is not None:
            meta["founders"] = {key: list(ids) for key, ids in self.founders.items()}
        arrays = {"matrix": self.matrix, "negatives": self.negatives, "relevant": self.relevant,
                  "servable": self.servable, "features": np.asarray([u.features for u in self.users], np.float32)}
        if self.item_content is not None:
            arrays["item_content"] = self.item_content
        for name in ("mutual", "said_yes"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        if self.groups is not None:
            arrays["groups"] = self.groups
        if self.market is not None:
            arrays |= {f"market_{name}": values for name, values in asdict(self.market).items()}
        save_artifact(path, meta, arrays)

    @classmethod
    def load(cls, path: Path) -> Holdout:
        meta, arrays = load_artifact(path)
        users = [EvaluatedUser(user_id, row, role, segment, terms, features, tuple(checks[0]) if checks else (0.0, 0.0))
                 for (user_id, row, role, segment, terms, *checks), features
                 in zip(meta["users"], arrays["features"], strict=True)]
        market = None
        if "market_not_raising" in arrays:  # absent from splits saved before the market was kept
            market = ItemMarket(**{name: arrays[f"market_{name}"] for name in ItemMarket.__dataclass_fields__})
            market = replace(market, not_raising=market.not_raising.astype(bool),
                             positions=market.positions.astype(bool))
        founders = None if "founders" not in meta else {key: tuple(ids) for key, ids in meta["founders"].items()}
        return cls(IdMap.from_json(meta["user_ids"]), IdMap.from_json(meta["item_ids"]), arrays["matrix"],
                   arrays["negatives"], arrays["relevant"], users, arrays["servable"].astype(bool),
                   arrays.get("item_content"), meta["held_events"], meta["fraction"], arrays.get("groups"), market,
                   founders, arrays.get("mutual"), arrays.get("said_yes"))


def holdout_of(snapshot: Snapshot, split: TimeSplit, max_users: int = EVALUATION_MAX_USERS) -> Holdout:
    """The evaluated users of ``split`` (those with relevant items; a fixed random sample of ``max_users``
    of them beyond that) with their profiles encoded as serving encodes them
    (``recommendations.selectors.user_profile``)."""
    from ml.core import features

    train, heldout = split.train, split.heldout
    holdout = Holdout(train.user_ids, train.item_ids, train.matrix, train.negatives, heldout, [],
                      snapshot.servable, train.item_content, split.held_events, split.fraction,
                      item_groups(train.item_ids), ItemMarket.of(train.item_ids, platform_data.item_market()),
                      platform_data.item_founders())
    events_per_user = np.bincount(split.train_events.users, minlength=train.n_users)
    relevant_rows: list[int] = []
    relevant_items: list[int] = []
    evaluable = []  # (row, user id, record) of the sampled users with relevant items
    # The users with held-out events in a fixed random order, taken until max_users of them have items the
    # API could serve them: a uniform sample of those users, where checking every user's items first cost
    # a million world's training 21 s for the 2,000 it keeps.
    with_events = np.flatnonzero(np.diff(heldout.indptr))
    for row in with_events[np.random.default_rng(SEED).permutation(len(with_events))].tolist():
        user_id = int(train.user_ids.ids[row])
        record = snapshot.records.get(user_id)
        if record is None:
            continue
        items = heldout.indices[heldout.indptr[row]:heldout.indptr[row + 1]]
        items = items[holdout.allows(user_id, record["role"], check_range(record), items)]
        if not len(items):
            continue
        relevant_rows += [row] * len(items)
        relevant_items += items.tolist()
        evaluable.append((row, user_id, record))
        if len(evaluable) == max_users:
            break
    if not evaluable:
        raise EngineError("no user has held-out events the API could serve them: nothing to evaluate")
    evaluable.sort(key=lambda entry: entry[0])
    # encoded for the evaluated users only: a million users' terms and features would take minutes
    holdout.users = [EvaluatedUser(user_id, row, record["role"], _segment(int(events_per_user[row])),
                                   features.platform_user_terms(record),
                                   features.platform_user_features([record])[0].astype(np.float32),
                                   check_range(record))
                     for row, user_id, record in evaluable]
    holdout.relevant = _ones(relevant_rows, relevant_items, train.n_users, train.n_items)
    earlier_yes = split.train_events.take(split.train_events.of_kinds(platform_data.YES_KINDS))
    holdout.said_yes = _ones(earlier_yes.users, earlier_yes.items, train.n_users, train.n_items)
    # the other side's yes at any time, earlier or held out: a held-out item taken is a mutual match if so
    ever = answered_by(item_ids=train.item_ids, commitments=platform_data.commitments(),
                       founders=holdout.founders or {}, about={user_id for _, user_id, _ in evaluable})
    holdout.mutual = holdout.relevant.multiply(_rows_matrix(ever, train.user_ids, train.n_items)).tocsr()
    return holdout


def _rows_matrix(rows_of: dict[int, np.ndarray], user_ids: IdMap, n_items: int) -> sp.csr_matrix:
    """{user id: item rows} as a (n_users, n_items) matrix of ones (users ``user_ids`` does not know dropped)."""
    rows: list[int] = []
    items: list[int] = []
    for user, found in rows_of.items():
        row = user_ids.index.get(str(user))
        if row is not None:
            rows += [row] * len(found)
            items += [int(item) for item in found]
    return _ones(rows, items, len(user_ids), n_items)


def item_groups(item_ids: IdMap, startups: dict[str, int] | None = None) -> np.ndarray:
    """(n_items,) the startup of each item (``platform_data.item_startups``, read now unless given),
    NO_GROUP for people and for positions closed or rows deleted since (none of which may be served)."""
    startups = platform_data.item_startups() if startups is None else startups
    return np.fromiter((startups.get(key, NO_GROUP) for key in item_ids.ids), dtype=np.int64, count=len(item_ids))


def _segment(training_events: int) -> str:
    return "cold" if training_events == 0 else "light" if training_events < HEAVY_FROM else "heavy"


# ---------------------------------------------------------------- ranking and measuring


class HeldOutModels:
    """Models fitted on a holdout's earlier events, ranking its users as the API serves them."""

    def __init__(self, models: dict[str, Recommender], holdout: Holdout):
        self.models, self.holdout = dict(models), holdout
        self.serving = serving_set_of(self.models, holdout)

    def lists(self, weights: dict[str, float], by_role: dict[str, dict[str, float]] | None = None,
              k: int = K, diversify: Diversify | None = None,
              reciprocal_weight: float | None = None) -> dict[int, np.ndarray]:
        """{user id: item rows, best first}: each evaluated user's top ``k`` through the API's ranker, with
        ``weights``, or their role's in ``by_role``, re-ranked as ``diversify`` says (default: as served),
        the other side's interest blended with ``reciprocal_weight`` (default: as served)."""
        return served_lists(self.serving, weights, self.holdout, k, by_role, diversify, reciprocal_weight)

    def measure(self, weights: dict[str, float], by_role: dict[str, dict[str, float]] | None = None,
                diversify: Diversify | None = None, reciprocal_weight: float | None = None) -> Metrics:
        return measured(self.lists(weights, by_role, diversify=diversify, reciprocal_weight=reciprocal_weight),
                        self.holdout)

    def alone(self) -> dict[str, dict]:
        """Each component served alone (users without history get the content model, as served): for the
        versions' own metrics."""
        return {name: self.measure({name: 1.0})["all"] for name in self.models}

    def save(self, path: Path) -> None:
        for name, model in self.models.items():
            model.save(path / name)
        self.holdout.save(path / HOLDOUT_SPLIT)

    @classmethod
    def load(cls, path: Path) -> HeldOutModels:
        """What :meth:`save` wrote; EngineError when it is missing or unreadable."""
        models = {name: load_component(path / name) for name in Algorithm.values if (path / name).is_dir()}
        return cls(models, Holdout.load(path / HOLDOUT_SPLIT))


def serving_set_of(models: dict[str, Recommender], holdout: Holdout) -> ServingSet:
    """The models made ready to rank as a web process readies its active versions, with the holdout's
    earlier-part popularity and its items' startups (read now for a split saved before it kept them)."""
    popularity = dict(zip(holdout.item_ids.ids, holdout.popularity().tolist(), strict=True))
    if holdout.groups is None:
        holdout.groups = item_groups(holdout.item_ids)
    startups = {key: int(group) for key, group in zip(holdout.item_ids.ids, holdout.groups.tolist(), strict=True)
                if group != NO_GROUP}
    serving = build_serving_set(models, {}, popularity, startups=startups)
    if not serving.ready:
        raise EngineError("no model to evaluate")
    # who answered whom as the earlier events say: what serving reads from the interactions at load
    serving = serving.with_market(holdout.item_market()).with_answers(
        dismissals=holdout.events_of(holdout.negatives), commitments=holdout.events_of(holdout.said_yes),
        founders=holdout.item_founders(), about={user.user_id for user in holdout.users})
    if serving.item_ids is None or serving.item_ids.ids != holdout.item_ids.ids:
        raise EngineError("the held-out models were fitted on another snapshot of the catalog than the holdout's")
    return serving


def served_lists(serving: ServingSet, weights: dict[str, float], holdout: Holdout, k: int = K,
                 by_role: dict[str, dict[str, float]] | None = None,
                 diversify: Diversify | None = None, reciprocal_weight: float | None = None) -> dict[int, np.ndarray]:
    """{user id: item rows, best first}: what ``recommendations.services`` serves each evaluated user from
    their rows in ``holdout`` (seen and dismissed items left out, open positions of their role's types),
    with ``weights`` or their role's own in ``by_role``, re-ranked as ``diversify`` says (default: as the
    API re-ranks a request that sets nothing), the other side's interest (``ServingSet.reverse_interest``)
    blended with ``reciprocal_weight`` (default: the RECIPROCAL_WEIGHT setting, as served; 0: one-sided)."""
    diversify = diversify or Diversify()
    rankers = {role: serving.ranker((by_role or {}).get(role, weights), reciprocal_weight)
               for role in platform_data.ROLE_ITEM_TYPES}
    lists = {}
    with single_threaded_blas():  # as a request ranks: one user's small products
        for user in holdout.users:
            state = serving.user_state(user.user_id, holdout.matrix[user.row], holdout.negatives[user.row],
                                       user.terms, user.features)
            # at weight 0 the other side's interest changes no list (only the reasons): not worked out
            reverse = (serving.reverse_interest(user_id=user.user_id, role=user.role)
                       if rankers[user.role].reciprocal_weight else None)
            lists[user.user_id] = rankers[user.role].rank(state, k, holdout.allowed_for(user), True,
                                                          diversify.diversity, diversify.max_per_startup,
                                                          reverse).items
    return lists


def servable_to(holdout: Holdout, user: EvaluatedUser) -> np.ndarray:
    """(n_items,) bool: what the API may serve ``user``: their role's, servable, the market's, neither seen
    nor dismissed."""
    keep = holdout.allowed_for(user).copy()
    keep[holdout.matrix[user.row].indices] = False
    keep[holdout.negatives[user.row].indices] = False
    return keep


def candidates(holdout: Holdout, user: EvaluatedUser) -> np.ndarray:
    """The item rows the API may serve ``user`` (:func:`servable_to`)."""
    return np.flatnonzero(servable_to(holdout, user))


def popularity_lists(holdout: Holdout, k: int = K) -> dict[int, np.ndarray]:
    """Each user's ``k`` most popular items they may be served, ties by row: the first ones of one ordering
    of all items. Partitioning each user's candidates instead cost 9 ms a user at a million items."""
    popularity = holdout.popularity()
    most_popular_first = np.argsort(-popularity, kind="stable")
    return {user.user_id: first_kept(most_popular_first, servable_to(holdout, user), k) for user in holdout.users}


def oracle_lists(oracle, holdout: Holdout, k: int = K, max_pairs: int = ORACLE_MAX_PAIRS) -> dict[int, np.ndarray]:
    """Each user's candidates ranked as the demo world's events pick items: by the hidden taste match and
    the items' hidden exposure (``WorldOracle.propensities``), the ranking the held-out events follow and a
    ceiling no recommender should expect to reach (the match alone ignores what users are shown: on the
    demo world it ranks the held-out events below popularity). Users (or candidates) the world did not make
    are left out, and beyond ``max_pairs`` users times items, all but a fixed sample of the users."""
    lists = {}
    types, targets = oracle.item_targets(holdout.item_ids.ids)  # parsed once: a million keys per user took hours
    for user in _fixed_sample(holdout.users, max(1, max_pairs // max(len(types), 1))):
        rows = candidates(holdout, user)
        rows = rows[types[rows] >= 0]
        try:
            scores = oracle.propensities_of(user.user_id, types[rows], targets[rows])
        except ValueError:
            continue
        lists[user.user_id] = rows[top_k(np.asarray(scores, dtype=np.float32), k)[0]]
    return lists


def _fixed_sample(entries: list, size: int) -> list:
    """All of ``entries``, or ``size`` of them drawn at random (fixed seed), in their order."""
    if len(entries) <= size:
        return entries
    chosen = np.sort(np.random.default_rng(SEED).choice(len(entries), size=size, replace=False))
    return [entries[n] for n in chosen.tolist()]


def measured(lists: dict[int, np.ndarray], holdout: Holdout) -> Metrics:
    """M of ``lists``: for all evaluated users, by role and by segment."""
    def of(users: list[EvaluatedUser]) -> dict:
        return group_metrics(lists, [u for u in users if u.user_id in lists], holdout)
    return {"all": of(holdout.users),
            "by_role": {role: of([u for u in holdout.users if u.role == role]) for role in ROLES},
            "by_segment": {segment: of([u for u in holdout.users if u.segment == segment]) for segment in SEGMENTS}}


def group_metrics(lists: dict[int, np.ndarray], users: list[EvaluatedUser], holdout: Holdout) -> dict:
    """NDCG@K, recall@K, mutual matches@K, coverage of the items the group's roles may be served, diversity,
    exposure Gini, users."""
    if not users:
        return {"ndcg": None, "recall": None, "mutual": None, "coverage": None, "diversity": None, "gini": None,
                "users": 0}
    ranked = [[int(i) for i in lists[u.user_id]] for u in users]
    relevant = [set(holdout.relevant[u.row].indices.tolist()) for u in users]
    servable = np.logical_or.reduce([holdout.allowed(role) for role in {u.role for u in users}])
    shown = {item for items in ranked for item in items}
    return {
        "ndcg": _mean([ndcg_at_k(r, rel, K) for r, rel in zip(ranked, relevant, strict=True)]),
        "recall": _mean([recall_at_k(r, rel, K) for r, rel in zip(ranked, relevant, strict=True)]),
        "mutual": _mutual_matches(ranked, users, holdout),
        "coverage": round(catalog_coverage([sorted(shown)], int(servable.sum())), 5),
        "diversity": None if holdout.item_content is None else round(_diversity(ranked, holdout.item_content), 5),
        "gini": _exposure_gini(ranked, servable, holdout.groups),
        "users": len(users),
    }


def _mutual_matches(lists: list[list[int]], users: list[EvaluatedUser], holdout: Holdout) -> float | None:
    """Mutual matches@K per user: of each list's top K, the held-out items the user took to whose other side
    said yes to the user (``Holdout.mutual``), averaged over the users. None for a split saved before."""
    if holdout.mutual is None:
        return None
    found = [len(set(items[:K]) & set(holdout.mutual[u.row].indices.tolist())) for items, u in
             zip(lists, users, strict=True)]
    return _mean(found)


def _exposure_gini(lists: list[list[int]], servable: np.ndarray, groups: np.ndarray | None) -> float | None:
    """The Gini of the slots the lists give each startup (its positions' slots count for it), over every
    startup that may be served (one shown nowhere counts 0): 0 when all are shown alike, towards 1 when a
    few take every slot. None where no startup may be served (founders' lists are people)."""
    if groups is None:
        return None
    startups = np.unique(groups[servable & (groups != NO_GROUP)])
    if not len(startups):
        return None
    shown = groups[[item for items in lists for item in items]]
    shown = shown[shown != NO_GROUP]
    counts = np.bincount(np.searchsorted(startups, shown), minlength=len(startups))
    return round(gini(counts), 5)


def _mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 5)


def _diversity(lists: list[list[int]], item_vectors) -> float:
    """intra_list_diversity over only the rows the lists show: it densifies the vectors it is given."""
    items = sorted({item for items in lists for item in items})
    position = {item: n for n, item in enumerate(items)}
    return intra_list_diversity([[position[i] for i in r] for r in lists], sp.csr_matrix(item_vectors)[items])


def ratio(served: float | None, baseline: float | None) -> float | None:
    return None if served is None or not baseline else served / baseline


# ---------------------------------------------------------------- the evaluation of a run


def served_evaluation(held_out: HeldOutModels, weights: dict[str, float], oracle=None,
                      by_role: dict[str, dict[str, float]] | None = None, diversify: Diversify | None = None) -> dict:
    """{"metrics": M, "one_sided": M, "reciprocal_weight", "popularity": M, "oracle": M | None, "weights",
    "weights_by_role", "holdout": {"users", "events", "fraction"}, "seconds"}: ``held_out`` ranked with
    ``weights`` (a role's own in ``by_role``) and re-ranked as ``diversify`` says (default: as served) beside
    the same without the other side's interest (``one_sided``), popularity (and the oracle);
    ``seconds``: the time ranking and measuring took (the held-out models were fitted before)."""
    started = time.perf_counter()
    holdout = held_out.holdout
    by_role = by_role or {}
    with ThreadPoolExecutor(max_workers=1) as beside:
        # The oracle's lists are numpy over up to a million candidates a user, which mostly runs without the
        # GIL: they are made beside the served rankings, on the other core. What they read of the holdout is
        # worked out first, here, so the thread neither races to fill its caches nor reads the database.
        _warm(holdout)
        oracle_ranked = None if oracle is None else beside.submit(oracle_lists, oracle, holdout, K, ORACLE_MAX_PAIRS)
        served = held_out.measure(weights, by_role, diversify)
        # the same ranking of one side's interest only: what reciprocal ranking changes
        one_sided = held_out.measure(weights, by_role, diversify, reciprocal_weight=0.0)
        popularity = measured(popularity_lists(holdout), holdout)
        oracle_metrics = None if oracle_ranked is None else measured(oracle_ranked.result(), holdout)
    return {
        "metrics": served,
        "one_sided": one_sided,
        "reciprocal_weight": settings.RECIPROCAL_WEIGHT,
        "popularity": popularity,
        "oracle": oracle_metrics,
        "weights": _rounded_weights(weights),
        "weights_by_role": {role: _rounded_weights(role_weights) for role, role_weights in by_role.items()},
        "holdout": {"users": len(holdout.users), "events": holdout.held_events, "fraction": holdout.fraction},
        "seconds": round(time.perf_counter() - started, 2),
    }


def _warm(holdout: Holdout) -> None:
    """The holdout's lazily read parts (what each role may be served, who rebuffed whom, the market)."""
    for role in ROLES:
        holdout.allowed(role)
    holdout.rebuffs()
    holdout.item_market()


def _rounded_weights(weights: dict[str, float]) -> dict[str, float]:
    return {name: round(float(value), 4) for name, value in weights.items()}


def demo_oracle(seed: int = DEMO_SEED):
    """(oracle, "") when the demo rows are the world ``seed_demo --seed seed`` seeds (at its default --end),
    else (None, why not): another seed, rows edited since, or no demo world at all."""
    from profiles.demo.oracle import DEFAULT_END, WorldIds, WorldOracle
    from profiles.demo.store import demo_users
    from profiles.demo.world import WorldSize, make_world
    from profiles.models import Position, Startup

    demo = demo_users()
    users = dict(demo.values_list("username", "pk"))
    if not users:
        return None, "not a demo world: no demo users"
    theirs = Startup.objects.filter(founders__user__in=demo.values("pk")).distinct()
    startups = dict(theirs.values_list("pk", "name"))
    # a subquery, not the ids: a million world's 200,000 startups are more parameters than PostgreSQL takes
    positions = dict(Position.objects.filter(startup__in=theirs.values("pk")).values_list("pk", "title"))
    size = WorldSize(users=len(users), positions=len(positions), startups=len(startups), interactions=0)
    try:
        world = make_world(seed, size, DEFAULT_END)
        return WorldOracle(world, WorldIds.from_rows(world, users=users, startups=startups, positions=positions)), ""
    except ValueError as exc:  # WorldMismatch, or sizes no seeded world has
        return None, f"not the demo world of seed {seed}: {exc}"


def holdout_dir(run_id: int) -> Path:
    return Path(settings.MODEL_DIR) / "runs" / str(run_id) / "holdout"


def latest_held_out() -> tuple[TrainingRun, HeldOutModels]:
    """The newest measured run and its held-out models (fitted on each user's earlier events), as saved by
    the training; Conflict when no run has a held-out split, or its files cannot be read."""
    run = TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED, served__isnull=False).order_by(
        "-created_at", "-id").first()
    if run is None:
        raise Conflict("No training run has a held-out split to evaluate weights on yet: train the models first.")
    try:  # fetched from the model store where the run trained on another machine (ml.artifacts)
        artifacts.ensure_local_parts(holdout_dir(run.pk), [*Algorithm.values, HOLDOUT_SPLIT])
        return run, HeldOutModels.load(holdout_dir(run.pk))
    except (EngineError, OSError, KeyError, artifacts.ArtifactUnreadable) as exc:
        raise Conflict(f"The held-out split of training run {run.pk} cannot be read ({exc}); train again.") from exc


def evaluate_weights(weights: dict) -> dict[str, Metrics]:
    """{"proposed": M, "current": M}: ``weights`` and the weights in force, measured as served on the latest
    run's held-out split (POST /api/v1/models/weights/evaluate; ``manage.py evaluate --held-out latest
    --weights ...`` prints the same numbers). DomainError for invalid weights, Conflict when no run has a
    held-out split.

    "current" is, in manual mode, the pinned weights; in tuned mode, the run's tuned weights (its
    ``served["weights"]``, by role too): tuned on events before these held-out ones, as every proposal is.
    """
    from . import selectors, services

    proposed = services.normalised_weights(weights)
    run, held_out = latest_held_out()
    manual = selectors.weights_state()["mode"] == HybridWeights.Mode.MANUAL
    if manual:
        current = held_out.measure(selectors.current_weights())
    else:
        served = run.served or {}  # latest_held_out finds a measured run
        current = held_out.measure(served["weights"], served.get("weights_by_role", {}))
    return {"proposed": held_out.measure(proposed), "current": current}


def evaluate_latest_run(weights: dict | None = None, demo_seed: int = DEMO_SEED,
                        diversify: Diversify | None = None) -> dict:
    """:func:`served_evaluation` of the latest run's held-out models (no fitting: seconds), with ``weights``
    (validated and normalised), or the run's tuned weights, re-ranked as ``diversify`` says (default: as
    served). Conflict as :func:`latest_held_out`."""
    from . import services

    started = time.perf_counter()
    run, held_out = latest_held_out()
    if weights is None:
        served = run.served or {}  # latest_held_out finds a measured run
        chosen, by_role = served["weights"], served.get("weights_by_role", {})
    else:
        chosen, by_role = services.normalised_weights(weights), {}
    result = served_evaluation(held_out, chosen, demo_oracle(demo_seed)[0], by_role, diversify)
    result.update(alone=held_out.alone(), skipped={}, total_seconds=round(time.perf_counter() - started, 1),
                  training_run=run.pk, diversify=asdict(diversify or Diversify()))
    return result


def evaluate_platform(algorithms: list[str] | None = None, demo_seed: int = DEMO_SEED,
                      progress: Callable[[str, dict], None] | None = None, weights: dict | None = None,
                      diversify: Diversify | None = None) -> dict:
    """The served evaluation of the current data, on a fresh time-based holdout (``manage.py evaluate``):
    the training procedure run on each user's earlier 80% of events, measured on the latest 20%.
    Returns :func:`served_evaluation`'s dict plus "alone" (each component served alone), "skipped" (what
    could not learn, and why) and "total_seconds" (reading, fitting and measuring). ``weights``: served
    with these (validated and normalised) instead of the tuned ones; ``diversify``: re-ranked so instead of
    as the API re-ranks by default."""
    from . import services

    fixed = None if weights is None else services.normalised_weights(weights)
    say = progress or (lambda event, info: None)
    started = time.perf_counter()
    snapshot = platform_snapshot()
    data = snapshot.data.validate()
    outer = time_split(data, snapshot.events)
    skipped = {name: why for name in algorithms or Algorithm.values if (why := skip_reason(name, data))}
    names = [name for name in algorithms or Algorithm.values if name not in skipped]
    say("split", {"users": data.n_users, "items": data.n_items, "held_out_events": outer.held_events})
    tuned = tune_on(time_split(outer.train, outer.train_events), names, snapshot, progress=progress)
    models, failed = fit_holdout_models(tuned, names, outer.train, progress=progress)
    say("fitted", {"algorithms": sorted(models), "weights": tuned.weights, "failed": failed})
    held_out = HeldOutModels(models, holdout_of(snapshot, outer))
    oracle, why_no_oracle = demo_oracle(demo_seed)
    say("ranking", {"users": len(held_out.holdout.users), "oracle": why_no_oracle or "demo world"})
    if fixed is None:
        result = served_evaluation(held_out, tuned.weights, oracle, tuned.weights_by_group, diversify)
    else:
        result = served_evaluation(held_out, fixed, oracle, diversify=diversify)
    result["alone"] = held_out.alone()
    result["diversify"] = asdict(diversify or Diversify())
    result["skipped"] = {**skipped, **failed, **tuned.validation.get("failed", {})}
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    return result
