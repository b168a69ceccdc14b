"""Each component's setting, then the blend's weights, chosen on validation data carved from the training data.

The offline command and the platform's training both tune this way: every setting in a component's grid
is fitted on the validation fold and scored on the held-out part; the best ones then score a shortlist of
candidates for the validation users (each component's top items, every component's per-user z-scores, as
the ranker standardises them), and coordinate ascent over ``WEIGHT_GRID`` picks the weights that rank the
held-out items best. A component that fails to fit or to score is left out and reported.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import scipy.sparse as sp

from .base import ProgressCallback, Recommender
from .data import EngineError, InteractionData, holdout_split
from .index import BATCH_CELLS, best_columns
from .metrics import heldout_ndcg
from .registry import COLLABORATIVE, CONTENT, DEFAULT_WEIGHTS, EASE, POPULARITY, RP3BETA, TWO_TOWER

Maker = Callable[[], Recommender]
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
CANDIDATES_PER_COMPONENT = 100  # the shortlist each component adds when weights are tuned
VALIDATION_MIN_ITEMS = 3  # users need this many interactions to lend one to validation (sparse catalogs)
VALIDATION_USERS = 2000  # at most this many users score each setting and the weights (a sample beyond it)
# Settings and weights are searched on at most this many of the fold's users (a sample beyond it, with all
# of those users' rows and only the items they touched): at a million users each of ALS's eight settings
# would otherwise be a full fit, and every validation user's scores a pass over every item. The search's
# cost is then bounded whatever the world's size (at a million users, 100,000 took ALS's eight settings
# 382 s and the weights 170 s on 2 cores; the validation NDCG that compares them is near 0.001 either
# way); smaller data sets are searched whole.
SETTING_FIT_USERS = 50_000
SHORTLIST_CHUNK = 256  # validation users scored at a time while the shortlist is built
# NDCG cut-off that settings and weights are tuned at. Deeper than the usual 10: each validation user then
# has more hits, a less noisy objective (nested validation within ml-100k training files preferred 20 to 10).
TUNING_K = 20


# Content's popularity prior: it matters most on MovieLens. Its skill weight (ContentConfig) is not tuned:
# on the seeded platform world a weight of 1 scored a little better on held-out events (0.030 vs 0.027
# NDCG@10, content alone), but then a position asking exactly a developer's skills ranked 52nd for them,
# behind positions sharing only their industry and remote preference, where a person expects it first.
CONTENT_PRIORS = (0.1, 0.0, 0.3, 1.0, 2.0, 4.0)
# Beside a blended popularity component, content's own prior stays weak: popularity earns its own weight,
# and a strong prior inside content would bury every item created since training (it has no popularity yet).
CONTENT_PRIOR_BESIDE_POPULARITY = 0.3


# (regularization, alpha, binary cells): ml-100k prefers 30 / 5, the seeded platform world 10 / 1.
ALS_SETTINGS = [(30.0, 5.0, True), (10.0, 5.0, True), (100.0, 5.0, True), (1.0, 1.0, True), (10.0, 1.0, True),
                (30.0, 1.0, True), (10.0, 1.0, False), (30.0, 5.0, False)]


def settings_grid(name: str, seed: int = 0) -> list[Maker]:
    """Makers of the settings worth comparing on validation data, the default first.

    Content's popularity prior (MovieLens wants a strong one, a sparse job catalog with declared skills a
    weak one); ALS regularisation and confidence (they matter more than factors);
    EASE's ridge; RP3beta's popularity penalty. Training-heavy models (the Two-Tower) get one setting.
    """
    from . import collaborative as co
    from . import content as cb

    def two_tower() -> Recommender:
        from .train import TwoTowerRecommender  # imports torch: only once a Two-Tower is made

        return TwoTowerRecommender(seed=seed)

    # partial, not a lambda per setting: each maker makes a new model of its setting (configs are never
    # changed in place; a fit that needs another setting replaces its config)
    grids: dict[str, list[Maker]] = {
        CONTENT: [partial(cb.ContentRecommender, cb.ContentConfig(popularity_weight=w)) for w in CONTENT_PRIORS],
        COLLABORATIVE: [partial(co.CollaborativeRecommender, co.ALSConfig(regularization=r, alpha=a, binary=b),
                                seed=seed)
                        for r, a, b in ALS_SETTINGS],
        EASE: [partial(co.EaseRecommender, co.EaseConfig(l2=v)) for v in (co.EaseConfig().l2, 100.0, 1000.0)],
        RP3BETA: [partial(co.RP3BetaRecommender, co.RP3BetaConfig(beta=b)) for b in (co.RP3BetaConfig().beta, 0.3)],
        POPULARITY: [co.PopularityRecommender],
        TWO_TOWER: [two_tower],
    }
    if name not in grids:
        raise EngineError(f"unknown algorithm {name!r}; known: {sorted(grids)}")
    return grids[name]


def _popularity_prior(model: Recommender) -> float:
    """A content model's popularity prior weight (0 for any other model: it has none)."""
    from .content import ContentRecommender

    return model.config.popularity_weight if isinstance(model, ContentRecommender) else 0.0


def default_component(name: str, seed: int = 0) -> Recommender:
    """A fresh recommender by algorithm name, with its default setting."""
    return settings_grid(name, seed)[0]()


def validation_split(data: InteractionData, fraction: float, seed: int) -> tuple[InteractionData, sp.csr_matrix] | None:
    """(fold, heldout) carved per user at random from ``data``; None when no user can spare an interaction."""
    train, heldout = holdout_split(data.matrix, fraction, seed, min_items=VALIDATION_MIN_ITEMS)
    return None if heldout.nnz == 0 else (data.with_matrix(train), heldout)


def select_on_validation(makers: list[Maker], fold: InteractionData, heldout: sp.csr_matrix, k: int = TUNING_K,
                         progress: ProgressCallback | None = None) -> tuple[Maker, Recommender, float]:
    """(maker, model fitted on ``fold``, NDCG@k on ``heldout``) of the best setting; one setting is not scored.

    Each setting is fitted on the fold and scored on at most VALIDATION_USERS of the users with held-out
    items (a large fold is first cut down by :func:`search_sample`)."""
    if len(makers) == 1:
        return makers[0], makers[0]().fit(fold, progress=progress), float("nan")
    users = _validation_users(heldout, VALIDATION_USERS, seed=0)
    best: tuple[Maker, Recommender, float] | None = None
    for n, make in enumerate(makers, start=1):
        model = make()
        if progress:  # which setting the fit's own progress belongs to
            progress("fitting", {"algorithm": model.name, "setting": n, "settings": len(makers)})
        model = model.fit(fold, progress=progress)
        ndcg = heldout_ndcg(model, fold, heldout, k, users)
        if progress:
            progress("setting", {"algorithm": model.name, "config": str(getattr(model, "config", "")),
                                 "validation_ndcg": ndcg, "users": len(users), "setting": n, "settings": len(makers)})
        if best is None or ndcg > best[2]:
            best = (make, model, ndcg)
    if best is None:
        raise EngineError("no setting to choose from")
    return best


@dataclass(frozen=True)
class SearchSample:
    """The part of a validation split the search runs on: the fold and held-out items of ``users`` (rows of
    the whole fold) and ``items`` only; None rows: all of them."""

    fold: InteractionData
    heldout: sp.csr_matrix
    users: np.ndarray | None = None
    items: np.ndarray | None = None


def search_sample(fold: InteractionData, heldout: sp.csr_matrix) -> SearchSample:
    """All of the split, or, beyond SETTING_FIT_USERS users, a sample of them (those with held-out items
    first) with only the items they interacted with or hold out. An item no sampled user touched can neither
    teach a setting anything nor be a hit (ALS gives it a zero factor); leaving it out keeps every fit and
    every validation user's scores at the sample's size."""
    if fold.n_users <= SETTING_FIT_USERS:
        return SearchSample(fold, heldout)
    users = _fold_sample(heldout, SETTING_FIT_USERS)
    part, held = fold.with_users(users), heldout[users]
    touched = np.zeros(fold.n_items, dtype=bool)
    touched[part.matrix.indices] = touched[held.indices] = True
    items = np.flatnonzero(touched)
    return SearchSample(part.with_items(items), sp.csr_matrix(held[:, items]), users, items)


def _fold_sample(heldout: sp.csr_matrix, size: int) -> np.ndarray:
    """``size`` user rows, ascending, drawn at random (fixed seed): the users with held-out items first, so
    that the validation users are among them."""
    rng = np.random.default_rng(0)
    with_heldout = np.diff(heldout.indptr) > 0
    keys = rng.random(heldout.shape[0]) + np.where(with_heldout, 0.0, 1.0)  # held-out users sort first
    return np.sort(np.argpartition(keys, size - 1)[:size])


def fit_tuned(name: str, data: InteractionData, seed: int = 0, progress: ProgressCallback | None = None) -> Recommender:
    """One algorithm at its best setting on validation carved from ``data``, refitted on all of ``data``."""
    makers = settings_grid(name, seed)
    split = validation_split(data, 0.2, seed + 1)
    if len(makers) > 1 and split is not None:
        sample = search_sample(*split)
        makers = [select_on_validation(makers, sample.fold, sample.heldout, TUNING_K, progress)[0]]
    return makers[0]().fit(data, progress=progress)


@dataclass
class Tuned:
    """What tuning chose: per component its setting (``makers``) and its model fitted on the fold (on the
    search's sample of it when ``sampled``: another numbering), the weights, and a record of the search
    (``validation``: ndcg, trace, failed, users, settings, seconds, and the sample's size)."""

    makers: dict[str, Maker] = field(default_factory=dict)
    fold_models: dict[str, Recommender] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    validation: dict = field(default_factory=dict)
    # per group of users (the platform's roles), the weights that rank that group's held-out items best,
    # for the groups with enough validation users; the others take ``weights``
    weights_by_group: dict[str, dict[str, float]] = field(default_factory=dict)
    sampled: bool = False


def tune(names: list[str], data: InteractionData, *, seed: int = 0,
         split: tuple[InteractionData, sp.csr_matrix] | None = None, factories: dict[str, Maker] | None = None,
         k: int = TUNING_K, progress: ProgressCallback | None = None, groups: np.ndarray | None = None,
         allowed: dict[str, np.ndarray] | None = None) -> Tuned:
    """Settings and weights of the ``names`` components on ``split`` (default: 20% of each user's
    interactions at random). ``factories`` fixes a component's setting instead of searching its grid.
    With no split to be had, every component keeps its default setting and the default weights.

    ``groups``: a label per user row (the platform's roles): weights are then also tuned per group
    (``Tuned.weights_by_group``); ``allowed``: per label, the items (bool per item row) its users may be
    recommended, the only candidates their validation rankings hold.
    """
    started = time.perf_counter()
    factories = factories or {}
    split = split or validation_split(data, 0.2, seed + 1)
    if split is None:
        return Tuned({n: factories.get(n) or settings_grid(n, seed)[0] for n in names}, {},
                     _normalised({n: DEFAULT_WEIGHTS.get(n, 0.0) for n in names} or {CONTENT: 1.0}),
                     {"skipped": "no user has enough interactions to hold some out: default weights"})
    sample = search_sample(*split)
    fold, heldout = sample.fold, sample.heldout
    if sample.users is not None:  # the groups and what each may be served, in the sample's rows
        groups = None if groups is None else np.asarray(groups)[sample.users]
        allowed = None if allowed is None else {label: items[sample.items] for label, items in allowed.items()}
    tuned, failed = Tuned(sampled=sample.users is not None), {}
    for name in names:
        step = time.perf_counter()
        try:
            makers = [factories[name]] if name in factories else settings_grid(name, seed)
            if name == CONTENT and POPULARITY in names:
                makers = [m for m in makers if _popularity_prior(m()) <= CONTENT_PRIOR_BESIDE_POPULARITY]
            tuned.makers[name], tuned.fold_models[name], _ = select_on_validation(makers, fold, heldout, k, progress)
        except Exception as exc:  # e.g. no item text for content, too little data for the Two-Tower
            failed[name] = f"{type(exc).__name__}: {exc}"
        if progress:
            progress("component", {"algorithm": name, "seconds": round(time.perf_counter() - step, 2),
                                   "ok": name in tuned.fold_models})
    if not tuned.fold_models:
        raise EngineError(f"no component could learn from the data: {failed}")
    users = _validation_users(heldout, VALIDATION_USERS, seed)
    labels = None if groups is None else np.asarray(groups)[users]
    allowed_by_user = None if labels is None or allowed is None else [allowed.get(label) for label in labels]
    shortlist, unscorable = _Shortlist.build(tuned.fold_models, fold.matrix, users, heldout, allowed_by_user)
    failed |= unscorable
    start = {n: DEFAULT_WEIGHTS.get(n, 0.0) for n in shortlist.z}
    if not any(start.values()):
        start = dict.fromkeys(shortlist.z, 1.0)
    weights, trace = coordinate_ascent(shortlist, start, k)
    tuned.weights = {n: round(w, 4) for n, w in weights.items()}
    tuned.validation = {"ndcg": trace[-1], "k": k, "trace": trace, "failed": failed, "users": len(users),
                        "settings": {n: str(getattr(m, "config", "")) for n, m in tuned.fold_models.items()}}
    if tuned.sampled:
        tuned.validation["sample"] = {"users": fold.n_users, "items": fold.n_items}
    if labels is not None:
        tuned.weights_by_group, tuned.validation["by_group"] = _tune_groups(shortlist, labels, weights, k)
    tuned.validation["seconds"] = round(time.perf_counter() - started, 1)
    if progress:
        progress("weights", {"algorithm": "hybrid", **tuned.weights, "validation_ndcg": trace[-1]})
    return tuned


MIN_GROUP_USERS = 50  # fewer validation users than this would tune a group's weights to noise


def _tune_groups(shortlist: _Shortlist, labels: np.ndarray, start: dict[str, float], k: int
                 ) -> tuple[dict[str, dict[str, float]], dict[str, dict]]:
    """Per label with enough validation users, the weights that rank its users' held-out items best,
    searched from the overall ones; and each group's validation NDCG@k with the overall and its own."""
    weights, record = {}, {}
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        group = shortlist.subset(rows)
        overall = group.ndcg(start, k)
        if len(rows) < MIN_GROUP_USERS:
            record[str(label)] = {"users": len(rows), "ndcg": overall, "own_weights": False}
            continue
        found, trace = coordinate_ascent(group, dict(start), k)
        weights[str(label)] = {n: round(w, 4) for n, w in found.items()}
        record[str(label)] = {"users": len(rows), "ndcg_with_overall_weights": overall, "ndcg": trace[-1],
                              "own_weights": True}
    return weights, record


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values()) or 1.0
    return {n: w / total for n, w in weights.items()}


def zscore(scores: np.ndarray, seen: np.ndarray | sp.spmatrix | None = None) -> np.ndarray:
    """Each row standardised by the mean and std of its unseen items; a constant row becomes 0.

    Seen items are left out of the statistics because models score them far above the rest (they were
    fitted to them), which would squash the differences among the candidates that matter.
    """
    # float32 throughout, in one scratch array: a validation chunk is 18 users by 1.85M items at the million,
    # and float64 temporaries made this three times slower (its share of validation there: 41 s)
    scores = np.asarray(scores, dtype=np.float32)
    counted = np.ones(scores.shape, dtype=bool) if seen is None else ~_dense_bool(seen)
    counted &= np.isfinite(scores)
    count = np.maximum(np.count_nonzero(counted, axis=1), 1)[:, None]
    kept = np.where(counted, scores, np.float32(0))
    mean = (kept.sum(axis=1, keepdims=True) / count).astype(np.float32)
    centered = scores - mean
    np.copyto(kept, centered, where=counted)
    std = np.sqrt(np.square(kept, out=kept).sum(axis=1, keepdims=True) / count).astype(np.float32)
    centered /= np.where(std > 0, std, np.float32(1))
    return centered


def _allowed_rows(allowed: list[np.ndarray | None], n_items: int) -> np.ndarray:
    """(len(allowed), n_items) bool: each user's allowed items, every item where theirs is None."""
    return np.stack([np.ones(n_items, dtype=bool) if items is None else items for items in allowed])


def _dense_bool(seen) -> np.ndarray:
    return (seen.toarray() if sp.issparse(seen) else np.asarray(seen)) != 0


def _validation_users(heldout: sp.csr_matrix, limit: int, seed: int) -> np.ndarray:
    users = np.flatnonzero(np.diff(heldout.indptr))
    if len(users) > limit:
        users = np.sort(np.random.default_rng(seed).choice(users, size=limit, replace=False))
    return users


@dataclass
class _Shortlist:
    """Validation users' candidate items (each component's top ones) with every component's z-scores."""

    z: dict[str, np.ndarray]  # name -> (users, candidates)
    relevant: np.ndarray  # (users, candidates) bool: a held-out item
    n_relevant: np.ndarray  # (users,) held-out items per user

    @classmethod
    def build(
        cls, models: dict[str, Recommender], matrix: sp.csr_matrix, users: np.ndarray, heldout: sp.csr_matrix,
        allowed: list[np.ndarray | None] | None = None,
    ) -> tuple[_Shortlist, dict[str, str]]:
        """(shortlist, failed): a component that cannot score is left out and reported. ``allowed``: per
        user, the items (bool per item row) they may be recommended (None: all)."""
        scorable, failed = {}, {}
        for name, model in models.items():
            try:
                model.score(users[:1])
                scorable[name] = model
            except Exception as exc:  # same policy as serving: a failing component drops out
                failed[name] = f"{type(exc).__name__}: {exc}"
        # a chunk's (users, n_items) score blocks, one per component, stay within BATCH_CELLS each: at a
        # million items SHORTLIST_CHUNK users' blocks would take gigabytes
        size = max(1, min(SHORTLIST_CHUNK, BATCH_CELLS // max(matrix.shape[1], 1)))
        chunks = [cls._chunk(scorable, matrix, users[s : s + size], heldout,
                             None if allowed is None else _allowed_rows(allowed[s : s + size], matrix.shape[1]))
                  for s in range(0, len(users), size)]
        z = {n: np.vstack([c.z[n] for c in chunks]) for n in scorable}
        relevant = np.vstack([c.relevant for c in chunks])
        return cls(z, relevant, np.concatenate([c.n_relevant for c in chunks])), failed

    @classmethod
    def _chunk(
        cls, models: dict[str, Recommender], matrix: sp.csr_matrix, users: np.ndarray, heldout: sp.csr_matrix,
        allowed: np.ndarray | None,
    ) -> _Shortlist:
        """The shortlist of a few users, so that only (chunk, n_items) score blocks are ever held."""
        rows = np.arange(len(users))
        seen = matrix[users].toarray() > 0
        # z-scores over every unseen item, as the ranker standardises; candidates among the allowed ones only
        full = {name: zscore(model.score(users), seen) for name, model in models.items()}
        excluded = seen if allowed is None else seen | ~allowed
        per_component = min(CANDIDATES_PER_COMPONENT, matrix.shape[1])
        top = [best_columns(np.where(excluded, -np.inf, s), per_component)[1] for s in full.values()]
        candidates = np.sort(np.concatenate(top, axis=1), axis=1)
        # an excluded item, or a candidate repeated, must not count in a ranking: send it to the bottom
        dropped = excluded[rows[:, None], candidates]
        dropped[:, 1:] |= candidates[:, 1:] == candidates[:, :-1]
        z = {n: np.where(dropped, -np.inf, s[rows[:, None], candidates]) for n, s in full.items()}
        relevant = (heldout[users].toarray() > 0)[rows[:, None], candidates] & ~dropped
        return cls(z, relevant, np.diff(heldout[users].indptr))

    def subset(self, rows: np.ndarray) -> _Shortlist:
        """The shortlist of the validation users ``rows`` only."""
        return _Shortlist({n: z[rows] for n, z in self.z.items()}, self.relevant[rows], self.n_relevant[rows])

    def ndcg(self, weights: dict[str, float], k: int) -> float:
        blended = sum(w * self.z[n] for n, w in weights.items() if w > 0)
        if isinstance(blended, int):
            return 0.0
        top = np.argpartition(-blended, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(blended, top, axis=1), axis=1)
        hits = np.take_along_axis(self.relevant, np.take_along_axis(top, order, axis=1), axis=1)
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.cumsum(discounts)[np.minimum(self.n_relevant, k) - 1]
        return float(np.mean((hits * discounts).sum(axis=1) / ideal))


def coordinate_ascent(
    shortlist: _Shortlist, start: dict[str, float], k: int, rounds: int = 3
) -> tuple[dict[str, float], list[float]]:
    """Weights maximising validation NDCG@k, one component at a time over WEIGHT_GRID; returns (weights, trace)."""
    weights = dict(start)
    best = shortlist.ndcg(weights, k)
    trace = [best]
    for _ in range(rounds):
        improved = False
        for name in weights:
            for value in WEIGHT_GRID:
                trial = {**weights, name: value}
                if sum(trial.values()) <= 0:
                    continue
                found = shortlist.ndcg(trial, k)
                if found > best + 1e-6:
                    best, weights, improved = found, trial, True
        trace.append(best)
        if not improved:
            break
    total = sum(weights.values())
    return {n: w / total for n, w in weights.items()}, trace
