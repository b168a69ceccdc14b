"""The one blend-and-rank path: what the API serves, the evaluation measures and the offline command writes.

:class:`Ranker` ranks one user from their *current* rows (:class:`~ml.core.base.UserState`), so a new
interaction or a profile edit counts at once. Each component's scores are standardised per user
(z-scores over the items the user has not seen: scores of different models live on different scales)
and summed with the weights. Small groups of items are scanned whole; in large ones each component's
retrieval index proposes its best candidates (``ml.core.retrieval``).

One failure policy: a component that is unavailable (never trained, unreadable) or fails to score this
user is left out, and the path says what was missing. Paths (the API's ``fallback``):
- ``"none"``: every component the weights ask for;
- ``"no_two_tower"`` / ``"no_content"`` / ``"no_collaborative"`` / ...: that component is missing;
- ``"cold_start"``: the user has no interactions: content alone (collaborative signals know nothing of them);
- ``"popular"``: nothing personal can be scored (no history and no content model, or no model at all):
  the most popular of the allowed items.

Components may come from different snapshots: :class:`AlignedComponent` translates one model's rows into
the reference numbering by outside id; an item a model never saw scores its mean, and its z-score is 0.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from .base import Recommender, UserScores, UserState, top_k
from .data import EngineError, IdMap, fitted
from .diversify import diversified
from .registry import COLLABORATIVE, CONTENT, DEFAULT_WEIGHTS, EASE, POPULARITY, RP3BETA, TWO_TOWER
from .retrieval import Retrieval, first_kept, kept_rows

PATH_ALL, PATH_COLD_START, PATH_POPULAR = "none", "cold_start", "popular"
# The order in which a missing component names the path: the Two-Tower is the one most often missing.
MISSING_PATHS = {TWO_TOWER: "no_two_tower", CONTENT: "no_content", COLLABORATIVE: "no_collaborative",
                 EASE: "no_ease", RP3BETA: "no_rp3beta"}

_blas_lock = threading.Lock()
_blas: ThreadpoolController | None = None


def single_threaded_blas():
    """A context in which BLAS uses one thread: a request's small products and solves then run many
    times faster than when BLAS threads contend with the other workers for the cores (13x measured on
    a 128-factor fold-in on a busy 2-core machine)."""
    global _blas
    with _blas_lock:
        if _blas is None:  # made once: finding the loaded BLAS libraries costs more than the limit itself
            _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


@dataclass
class Ranking:
    """One user's ranked items: rows best first, blended scores, each blended component's z-scores of
    them (``components``), the path taken, the normalised weights applied, what was left out and why,
    and each component's scores for the user (``user_scores``, for explanations)."""

    items: np.ndarray
    scores: np.ndarray
    components: dict[str, np.ndarray]
    path: str
    weights: dict[str, float]
    unavailable: dict[str, str] = field(default_factory=dict)
    user_scores: dict[str, UserScores] = field(default_factory=dict)
    # The other side's interest in the user, of the ranked items: z-scores over the candidates, NaN where
    # unknown (``reciprocal_z``); None: not asked, or not known for enough candidates
    reciprocal: np.ndarray | None = None


class Ranker:
    """Blends ``components`` (already in one numbering of ``n_items`` items) with ``weights``.

    ``popularity``: (n_items,) how many users interacted with each item: a component the weights may blend
    (as ``"popularity"``, its log), and the last resort of the fallback chain; ``unavailable``: components
    that should serve but cannot, with why; ``retrieval``: default exact for groups up to
    ``RetrievalConfig.exact_up_to`` items, over one group of all items; ``item_vectors``: (n_items, d) the
    embeddings a diversified ranking compares items by (dense or sparse, or a tuple of such, whose cosine
    similarities are averaged; None: items are all unlike);
    ``groups``: (n_items,) int, the group (startup) of each item, ``ml.core.diversify.NO_GROUP`` for none;
    ``crowding``: (n_items,) >= 0, what each item's blended score (z-score units) loses before the top k
    are chosen (``ml.core.features.crowding_penalty``: a position with more applicants than it can read;
    None when nothing is crowded, as ``ml.serving_set.ItemMarket.crowding`` gives it: no subtraction);
    ``reciprocal_weight``: how much the other side's interest (a rank's ``reverse``, z-scored over the
    candidates) adds to the blended score, in z-score units (0: one-sided ranking).
    """

    def __init__(self, components: Mapping[str, Component], weights: dict[str, float], n_items: int, *,
                 popularity: np.ndarray | None = None, retrieval: Retrieval | None = None,
                 unavailable: dict[str, str] | None = None, item_vectors=None, groups: np.ndarray | None = None,
                 crowding: np.ndarray | None = None, reciprocal_weight: float = 0.0):
        self.components = dict(components)
        self.weights = dict(weights)
        self.n_items = n_items
        self.popularity = np.zeros(n_items, np.float32) if popularity is None else np.asarray(popularity, np.float32)
        self.retrieval = retrieval or Retrieval(self.components, np.zeros(n_items, dtype=np.int64))
        self.unavailable = dict(unavailable or {})
        self.item_vectors, self.groups = item_vectors, groups
        self.crowding = crowding
        self.reciprocal_weight = reciprocal_weight

    def rank(self, user: UserState, k: int, allowed: np.ndarray | None = None, exclude_seen: bool = True,
             diversity: float = 0.0, max_per_group: int | None = None, reverse=None) -> Ranking:
        """Top ``k`` of the ``allowed`` items (bool per item row; None: all), dismissed items always left
        out, seen ones unless ``exclude_seen`` is off; re-ranked for ``diversity`` (0-1, MMR over
        ``item_vectors``) and at most ``max_per_group`` items of one group (``ml.core.diversify``). A
        re-ranked item keeps its blended score: the scores then need not fall down the list.
        ``reverse``: the other side's interest in this user (``scores(rows)`` -> raw scores, NaN where
        unknown; ``ml.serving_set.ReverseInterest``), blended with ``reciprocal_weight``."""
        if k < 1:
            raise EngineError(f"k must be >= 1, got {k}")
        if not 0.0 <= diversity <= 1.0:
            raise EngineError(f"diversity must be within [0, 1], got {diversity}")
        if max_per_group is not None and max_per_group < 1:
            raise EngineError(f"max_per_group must be >= 1, got {max_per_group}")
        top = self._top(diversity, max_per_group)
        keep = np.ones(self.n_items, dtype=bool) if allowed is None else allowed.copy()
        if user.negatives is not None:
            keep[user.negatives.indices] = False
        if exclude_seen:
            keep[user.history.indices] = False
        unavailable = dict(self.unavailable)
        wanted = self._wanted(user.history.nnz > 0)
        scores = self._user_scores(wanted, user, unavailable)
        if not scores:
            return self._popular(k, keep, unavailable, top)
        total = sum(wanted[n] for n in scores)
        weights = {n: wanted[n] / total for n in scores}
        candidates = self._candidates(scores, keep)
        seen = self._seen_among_stats_rows(user.history)
        z = {n: self._standardised(n, scores[n], candidates, seen) for n in weights}
        relevance = self._crowded(self._blend(weights, z, scores, candidates), candidates)
        theirs = None if reverse is None else reciprocal_z(reverse.scores(candidates))
        chosen, values = top(self._two_sided(relevance, theirs), candidates, k)
        return Ranking(candidates[chosen], values, {n: z[n][chosen] for n in weights},
                       self._path(user.history.nnz > 0, unavailable), weights, unavailable, scores,
                       None if theirs is None else theirs[chosen])

    def _top(self, diversity: float, max_per_group: int | None):
        """(relevance of ``rows``, rows, k) -> (positions chosen, their relevance): the plain top k, or
        the diversified one."""
        if diversity == 0.0 and max_per_group is None:
            return lambda relevance, rows, k: top_k(relevance, k)
        vectors = self.item_vectors

        def diversified_top(relevance: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            def vectors_of(positions: np.ndarray):
                if vectors is None:
                    return np.zeros((len(positions), 1))
                if isinstance(vectors, tuple):
                    return tuple(part[rows[positions]] for part in vectors)
                return vectors[rows[positions]]
            groups = None if self.groups is None else self.groups[rows]
            chosen = diversified(relevance, groups, vectors_of, k, diversity, max_per_group)
            return chosen, np.asarray(relevance, dtype=np.float32)[chosen]
        return diversified_top

    @staticmethod
    def _blend(weights: dict[str, float], z: dict[str, np.ndarray], scores: dict[str, UserScores],
               candidates: np.ndarray) -> np.ndarray:
        """The weighted mean of the z-scores of the components that know each item. An item created since a
        component's training has that component's mean as its score (z 0), and counting that as an
        opinion would bury every new item however well the content model thinks it fits."""
        if all(scores[n].known is None for n in weights):
            return np.asarray(sum(w * z[n] for n, w in weights.items()))
        knows = {n: 1.0 if (known := scores[n].known) is None else known[candidates] for n in weights}
        blended = sum(w * knows[n] * z[n] for n, w in weights.items())
        opinions = sum(w * knows[n] for n, w in weights.items())
        return (blended / np.maximum(opinions, 1e-6)).astype(np.float32)

    def _crowded(self, relevance: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``relevance`` of ``rows`` less their crowding: subtracted from the blend, not applied to the list
        afterwards, so that a crowded position competes for its place with what it then scores (and a
        diversified list is built from the scores as served)."""
        if self.crowding is None:
            return relevance
        return (relevance - self.crowding[rows]).astype(np.float32)

    def _two_sided(self, relevance: np.ndarray, theirs: np.ndarray | None) -> np.ndarray:
        """``relevance`` plus ``reciprocal_weight`` times the other side's interest ``theirs`` (z-scores,
        NaN where unknown: no opinion)."""
        if theirs is None or not self.reciprocal_weight:
            return relevance
        return (relevance + self.reciprocal_weight * np.nan_to_num(theirs)).astype(np.float32)

    def _wanted(self, has_history: bool) -> dict[str, float]:
        """The components to blend and their weights: content alone for a user with no history; else those
        the weights ask for that are available, or, when none is, the default weights' or all available."""
        if not has_history:
            return {CONTENT: 1.0} if CONTENT in self.components else {}
        models = [n for n in self.components if n != POPULARITY]
        asked = {n: w for n, w in self.weights.items() if w > 0 and (n in models or n == POPULARITY)}
        if any(n in models for n in asked):  # popularity alone is no personal ranking: that is the popular path
            return asked
        for weights in (DEFAULT_WEIGHTS, dict.fromkeys(models, 1.0)):
            chosen = {n: w for n, w in weights.items() if w > 0 and n in models}
            if chosen:
                return chosen
        return {}

    def _path(self, has_history: bool, unavailable: dict[str, str]) -> str:
        """What was missing: a component the weights ask for that is unavailable (one they give no weight
        is not missing), or the user's history, or everything personal."""
        if not has_history:
            return PATH_COLD_START if CONTENT in self.components and CONTENT not in unavailable else PATH_POPULAR
        asked = {name for name, weight in self.weights.items() if weight > 0}
        return next((path for name, path in MISSING_PATHS.items() if name in unavailable and name in asked),
                    PATH_ALL)

    def _user_scores(self, wanted: dict[str, float], user: UserState,
                     unavailable: dict[str, str]) -> dict[str, UserScores]:
        """Each wanted component's scores; one that fails is left out, with why."""
        scores = {}
        for name in wanted:
            if name == POPULARITY:  # log: counts are heavy-tailed; an item nobody met yet has no popularity to tell
                scores[name] = UserScores.dense(np.log1p(self.popularity), known=self.popularity > 0)
                continue
            try:
                scores[name] = self.components[name].user_scores(user)
            except Exception as exc:  # e.g. a user the Two-Tower never saw, or a model that loads but is broken
                unavailable[name] = f"cannot score this user: {type(exc).__name__}: {exc}"
        return scores

    def _popular(self, k: int, keep: np.ndarray, unavailable: dict[str, str], top) -> Ranking:
        rows = np.flatnonzero(keep)
        spread = self.popularity[rows].std() or 1.0
        relevance = self.popularity[rows]
        if self.crowding is not None:  # in z-score units, as in the blend: the most popular positions are the crowded
            relevance = relevance - spread * self.crowding[rows]
        chosen, _ = top(relevance, rows, k)
        values = self.popularity[rows[chosen]]
        z = (values - self.popularity[rows].mean()) / spread
        return Ranking(rows[chosen], values, {POPULARITY: z.astype(np.float32)}, PATH_POPULAR, {POPULARITY: 1.0},
                       unavailable)

    def _candidates(self, scores: dict[str, UserScores], keep: np.ndarray) -> np.ndarray:
        """The kept item rows worth blending: all of a small group's; of a large group's, each component's
        best ``candidates`` among the clusters it probes (or among all, for a component without an index)."""
        config, found = self.retrieval.config, []
        for group, rows in self.retrieval.group_rows.items():
            if np.count_nonzero(keep[rows]) <= config.exact_up_to:  # a view: no copy of a large group's rows
                found.append(kept_rows(rows, keep))
                continue
            kept = None
            for name, user_scores in scores.items():
                index = self.retrieval.indexes.get((name, group))
                if name == POPULARITY and group in self.retrieval.by_popularity:  # everyone's scores alike
                    found.append(first_kept(self.retrieval.by_popularity[group], keep, config.candidates))
                elif index is None or user_scores.query is None:  # no index, or scores with no query to probe it
                    kept = kept_rows(rows, keep) if kept is None else kept
                    found.append(kept[top_k(user_scores.at(kept), config.candidates)[0]])
                else:
                    found.append(index.search(user_scores.query, keep, config.candidates))
        return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def _seen_among_stats_rows(self, history: sp.csr_matrix) -> np.ndarray:
        """Positions, among the items whose scores give the z-scores' statistics, of those the user has
        interacted with: they are left out of the statistics (models score them far above the rest, which
        would squash the differences among the candidates that matter)."""
        sample = self.retrieval.stats_rows
        if sample is None or not len(sample):
            return history.indices
        at = np.minimum(np.searchsorted(sample, history.indices), len(sample) - 1)  # the sample is sorted
        return at[sample[at] == history.indices]

    def _standardised(self, name: str, scores: UserScores, rows: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """z-scores of ``rows`` by the mean and std of the unseen items' scores (or a sample's), as
        :func:`ml.core.tuning.zscore` standardises a whole row. ``seen``: see :meth:`_seen_among_stats_rows`."""
        linear = name in self.retrieval.samples and scores.query is not None  # the sample's vectors, read in place
        values = scores.of(*self.retrieval.samples[name]) if linear else scores.at(self.retrieval.stats_rows)
        counted = np.isfinite(values)
        counted[seen] = False
        counted_values = values[counted]
        mean, std = (counted_values.mean(), counted_values.std()) if len(counted_values) else (0.0, 0.0)
        z = ((scores.at(rows) - mean) / (std if std > 0 else 1.0)).astype(np.float32)
        if scores.known is not None:  # an item the component never saw: no opinion, whatever its stand-in scores
            z[~scores.known[rows]] = 0.0
        return z


def reciprocal_z(theirs: np.ndarray) -> np.ndarray | None:
    """The other side's interest ``theirs`` (raw, NaN where unknown) as z-scores over the candidates, NaN
    kept where unknown (blended as 0: no opinion); None when fewer than two are known. Summed with the
    blend's z-scores by ``Ranker.reciprocal_weight``: on the demo world that raised mutual matches more, for
    less forward NDCG, than a harmonic mean of the two sides' percentile ranks (README, "Two-sided ranking")."""
    known = np.isfinite(theirs)
    if known.sum() < 2:
        return None
    spread = theirs[known].std()
    return ((theirs - theirs[known].mean()) / (spread if spread > 0 else 1.0)).astype(np.float32)


# ---------------------------------------------------------------- components from other snapshots


class AlignedComponent:
    """A fitted component addressed by another numbering's user and item rows.

    Offers what the ranker asks of a component (``user_scores``, ``linear_items``) in the reference
    numbering. Items the component never saw (added after it was trained) score the component's mean for
    that user, and the ranker gives it a z-score of 0: no opinion rather than a penalty.
    """

    def __init__(self, model: Recommender, user_ids: IdMap, item_ids: IdMap):
        self.model, self.name = model, model.name
        self.user_ids, self.item_ids = user_ids, item_ids
        # reference row -> the component's row, -1 where the component does not know it
        self._users = _translation(user_ids, fitted(model.user_ids, model.name))
        self._items = _translation(item_ids, fitted(model.item_ids, model.name))
        self._known_items = self._items >= 0
        self._linear: tuple | None = None  # linear_items() in reference rows, made on first use

    def linear_items(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The component's item matrix and offsets in reference rows; an unknown item gets the mean row,
        so it scores the mean. Dense forms only (a sparse one is the content model's, the reference)."""
        form = self.model.linear_items()
        if form is None or sp.issparse(form[0]):
            return None
        if self._linear is None:
            self._linear = tuple(None if part is None else self._rows_to_reference(part) for part in form)
        return self._linear

    def user_scores(self, user: UserState) -> UserScores:
        row = None if user.row is None else int(self._users[user.row])
        own = UserState(None if row is None or row < 0 else row, self._to_own(user.history),
                        None if user.negatives is None else self._to_own(user.negatives), user.content, user.features)
        scores = self.model.user_scores(own)
        linear = self.linear_items()
        if scores.query is not None and linear is not None:
            return UserScores.linear(*linear, scores.query, self._known_items)
        return UserScores.dense(self._to_reference(scores.at(None)), self._known_items)

    def own_item_rows(self, rows: np.ndarray) -> np.ndarray:
        """The component's own rows of the reference item ``rows``; -1 where it does not know the item."""
        return self._items[np.asarray(rows, dtype=np.int64)]

    def _rows_to_reference(self, values: np.ndarray) -> np.ndarray:
        out = values[np.maximum(self._items, 0)]
        out[~self._known_items] = values.mean(axis=0)
        return out

    def _to_own(self, row) -> sp.csr_matrix:
        """A (1, n_reference_items) row as a (1, n_own_items) row; items the component lacks drop out."""
        row = sp.csr_matrix(row, dtype=np.float32)
        own = self._items[row.indices]
        kept = own >= 0
        return sp.csr_matrix((row.data[kept], (np.zeros(kept.sum(), dtype=np.int64), own[kept])),
                             shape=(1, len(fitted(self.model.item_ids, self.name))))

    def _to_reference(self, scores: np.ndarray) -> np.ndarray:
        # (n_own_items,) -> (n_reference_items,)
        scores = np.asarray(scores, dtype=np.float32)
        out = scores[np.maximum(self._items, 0)]
        out[~self._known_items] = scores.mean()
        return out


def _translation(reference: IdMap, own: IdMap) -> np.ndarray:
    return np.fromiter((own.index.get(i, -1) for i in reference.ids), dtype=np.int64, count=len(reference))


# What a ranker blends: a fitted model in the reference numbering, or one translated into it.
Component = Recommender | AlignedComponent


def align(model: Recommender, user_ids: IdMap, item_ids: IdMap) -> Component:
    """``model`` itself when it already uses the reference rows (trained on the same snapshot), else wrapped."""
    own_users, own_items = fitted(model.user_ids, model.name), fitted(model.item_ids, model.name)
    if own_users.ids == user_ids.ids and own_items.ids == item_ids.ids:
        return model
    return AlignedComponent(model, user_ids, item_ids)
