"""Serving the hybrid from separately trained components, framework-free.

Each algorithm's active version may come from a different training run, and every run numbers users
and items by the snapshot it saw. Serving picks one reference numbering (the content model's, since
content is the hybrid's floor) and wraps every other component in :class:`AlignedComponent`, which
translates rows by outside id. :class:`ServingHybrid` then blends them for one user from that user's
*current* interaction rows and declared profile, so a new interaction or a profile edit counts at once.
"""
from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from .base import Recommender, top_k
from .content import ContentRecommender
from .data import EngineError, IdMap
from .features import ContentVocabulary
from .hybrid import (
    CONTENT,
    PATH_ALL,
    PATH_NO_TWO_TOWER,
    TWO_TOWER,
    HybridConfig,
    HybridRecommender,
    HybridResult,
    fold_in_scores,
)
from .retrieval import Retrieval, kept_rows

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


class AlignedComponent:
    """A fitted component addressed by another model's user and item rows.

    Offers what the hybrid asks of a component (``score``, ``fold_in``, ``score_history``) in the
    reference numbering. Items the component never saw (added after it was trained) score the
    component's mean for that user, a z-score near 0: no opinion rather than a penalty.
    """

    def __init__(self, model: Recommender, user_ids: IdMap, item_ids: IdMap):
        self.model, self.name = model, model.name
        self.user_ids, self.item_ids = user_ids, item_ids
        # reference row -> the component's row, -1 where the component does not know it
        self._users = _translation(user_ids, model.user_ids)
        self._items = _translation(item_ids, model.item_ids)
        self._known_items = self._items >= 0
        self._linear: tuple | None = None  # linear_items() in reference rows, made on first use

    def score(self, user_rows) -> np.ndarray:
        rows = self._users[np.atleast_1d(np.asarray(user_rows, dtype=np.int64))]
        if (rows < 0).any():
            raise EngineError(f"{self.name} was trained before this user existed")
        return self._to_reference(self.model.score(rows))

    def fold_in(self, history, negatives=None) -> np.ndarray:
        rows = [self._to_own(history)] + ([] if negatives is None else [self._to_own(negatives)])
        return self._to_reference(self.model.fold_in(*rows)[None, :])[0]

    def score_history(self, item_rows, user_feature_row=None) -> np.ndarray:
        own = self._items[np.asarray(item_rows, dtype=np.int64)]
        return self._to_reference(self.model.score_history(own[own >= 0], user_feature_row)[None, :])[0]

    def linear_items(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The component's item matrix and offsets in reference rows; an unknown item gets the mean row,
        so it scores the mean, as in :meth:`score`. Dense forms only (the content model is the reference)."""
        form = self.model.linear_items()
        if form is None or sp.issparse(form[0]):
            return None
        if self._linear is None:
            self._linear = tuple(None if part is None else self._rows_to_reference(part) for part in form)
        return self._linear

    def user_query(self, user_row, history, negatives, user_content) -> np.ndarray:
        own_row = None if user_row is None else int(self._users[user_row])
        return self.model.user_query(None if own_row is None or own_row < 0 else own_row, self._to_own(history),
                                     None if negatives is None else self._to_own(negatives), user_content)

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
                             shape=(1, len(self.model.item_ids)))

    def _to_reference(self, scores: np.ndarray) -> np.ndarray:
        # (n, n_own_items) -> (n, n_reference_items)
        scores = np.asarray(scores, dtype=np.float32)
        out = scores[:, np.maximum(self._items, 0)]
        out[:, ~self._known_items] = scores.mean(axis=1, keepdims=True)
        return out


def _translation(reference: IdMap, own: IdMap) -> np.ndarray:
    return np.fromiter((own.index.get(i, -1) for i in reference.ids), dtype=np.int64, count=len(reference))


def align(model: Recommender, user_ids: IdMap, item_ids: IdMap) -> Recommender | AlignedComponent:
    """``model`` itself when it already uses the reference rows (trained on the same snapshot), else wrapped."""
    if model.user_ids.ids == user_ids.ids and model.item_ids.ids == item_ids.ids:
        return model
    return AlignedComponent(model, user_ids, item_ids)


def content_vocabulary(content: ContentRecommender) -> ContentVocabulary:
    """The TF-IDF vocabulary the content model was fitted with, to encode a user's declared terms today.

    The artifact keeps the terms but not their IDF. Both were fitted on the item catalog, with
    ``idf = log((1 + n_items) / (1 + df)) + 1`` (``features.ContentVocabulary.fit``), and the item vectors
    still show which items carry each term, so the IDF is recovered exactly: a term no item carries
    (a user-only skill) has df 0, as it had then.
    """
    if content.item_vectors is None:
        raise EngineError("content_based is not fitted")
    vectors = sp.csr_matrix(content.item_vectors)
    n_items, n_terms = vectors.shape
    df = np.bincount(vectors.indices[vectors.data != 0], minlength=n_terms)
    idf = np.log((1.0 + n_items) / (1.0 + df)) + 1.0
    return ContentVocabulary(list(content.vocab), idf.tolist())


class UserScores:
    """One component's scores for one user, computed for just the item rows asked for (None: all).

    Linear components (:meth:`Recommender.linear_items`) score any rows as ``items[rows] @ query``; the
    others score every item once, up front.
    """

    def __init__(self, model, user_row, history, negatives, user_content):
        form = model.linear_items()
        if form is None:
            self.query = None
            self._all = fold_in_scores(model, model.name, user_row, history, negatives, user_content)
        else:
            (self._items, self._offsets), self._all = form, None
            self.query = model.user_query(user_row, history, negatives, user_content)

    def at(self, rows: np.ndarray | None) -> np.ndarray:
        if self._all is not None:
            return self._all if rows is None else self._all[rows]
        if rows is None:
            return self.of(self._items, self._offsets)
        return self.of(self._items[rows], None if self._offsets is None else self._offsets[rows])

    def of(self, items, offsets: np.ndarray | None) -> np.ndarray:
        """A linear component's scores of the items given by their vectors (and offsets)."""
        scores = np.asarray(items @ self.query, dtype=np.float32).ravel()
        return scores if offsets is None else scores + offsets


class ServingHybrid(HybridRecommender):
    """The hybrid over loaded (and aligned) components, ranking one user from their current rows.

    It blends as ``HybridRecommender.recommend_for`` does for a user given by fresh rows (same paths,
    weights and z-scores), but also lets seen items back in when asked (``exclude_seen=False``;
    dismissed items stay out), restricts the ranking to allowed items, and drops any non-content
    component that fails to score (not only the Two-Tower), so a broken model never fails a request.
    Reasons are a separate step (:meth:`reasons`), for the items that survive the caller's filters.

    ``retrieval`` (default: exact) decides which items are blended: on a large catalog, each component's
    best candidates from its cluster index (``ml.core.retrieval``), with z-scores estimated on a sample.
    """

    def __init__(self, models: dict, user_ids: IdMap, item_ids: IdMap, weights: dict[str, float],
                 retrieval: Retrieval | None = None):
        super().__init__(HybridConfig(weights=dict(weights)))
        if CONTENT not in models:
            raise EngineError("the hybrid needs the content model")
        self.models = dict(models)
        self.user_ids, self.item_ids = user_ids, item_ids
        self.retrieval = retrieval or Retrieval.exact(self.models, len(item_ids))
        # Every request passes the user's current rows, so the training rows are never read.
        self.matrix = sp.csr_matrix((len(user_ids), len(item_ids)), dtype=np.float32)

    def rank(self, user_row: int | None, k: int, history: sp.csr_matrix, negatives: sp.csr_matrix,
             user_content: sp.csr_matrix, allowed: np.ndarray, exclude_seen: bool = True) -> HybridResult:
        """Top ``k`` of the ``allowed`` items (bool, one per item row), dismissed items always left out.

        ``user_row``: the user's reference row, or None for a user the models never saw;
        ``history`` / ``negatives``: (1, n_items) current interaction rows; ``user_content``: (1, v).
        """
        if k < 1:
            raise EngineError(f"k must be >= 1, got {k}")
        path = self.path_of(user_row, history.nnz > 0)
        scores = self._user_scores(path, user_row, history, negatives, user_content)
        if TWO_TOWER not in scores and path == PATH_ALL:
            path = PATH_NO_TWO_TOWER
        weights = self.active_weights(path)
        keep = allowed.copy()
        keep[negatives.indices] = False
        if exclude_seen:
            keep[history.indices] = False
        candidates = self._candidates({n: scores[n] for n in weights}, keep)
        seen = self._seen_among_stats_rows(history)
        z = {n: self._standardised(n, scores[n], candidates, seen) for n in weights}
        chosen, values = top_k(sum(w * z[n] for n, w in weights.items()), k)
        components = {n: z[n][chosen] for n in weights}
        return HybridResult(candidates[chosen], values, components, path, weights, [[] for _ in chosen])

    def _user_scores(self, path, user_row, history, negatives, user_content) -> dict[str, UserScores]:
        """Each of the path's components' scores; one that fails is left out, and remembered."""
        scores = {}
        for name in self.active_weights(path):
            try:
                scores[name] = UserScores(self.models[name], user_row, history, negatives, user_content)
            except Exception as exc:  # e.g. a user the Two-Tower never saw, or a model that loads but is broken
                if name == CONTENT:
                    raise
                self.unavailable[name] = f"cannot score this user: {type(exc).__name__}: {exc}"
                self.models.pop(name)
        return scores

    def _candidates(self, scores: dict[str, UserScores], keep: np.ndarray) -> np.ndarray:
        """The kept item rows worth blending: all of a small group's; of a large group's, each component's
        best ``candidates`` among the clusters it probes (or among all, for a component without an index)."""
        config, found = self.retrieval.config, []
        for group, rows in self.retrieval.group_rows.items():
            if np.count_nonzero(keep[rows]) <= config.exact_up_to:  # a view: no copy of a large group's rows
                found.append(kept_rows(rows, keep))
                continue
            for name, user_scores in scores.items():
                index = self.retrieval.indexes.get((name, group))
                if index is None:
                    kept = kept_rows(rows, keep)
                    found.append(kept[top_k(user_scores.at(kept), config.candidates)[0]])
                else:
                    found.append(index.search(user_scores.query, keep, config.candidates))
        return np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def _seen_among_stats_rows(self, history: sp.csr_matrix) -> np.ndarray:
        """Positions, among the items whose scores give the z-scores' statistics, of those the user has
        interacted with: they are left out of the statistics, as :func:`ml.core.hybrid.zscore` leaves them."""
        sample = self.retrieval.stats_rows
        if sample is None or not len(sample):
            return history.indices
        at = np.minimum(np.searchsorted(sample, history.indices), len(sample) - 1)  # the sample is sorted
        return at[sample[at] == history.indices]

    def _standardised(self, name: str, scores: UserScores, rows: np.ndarray, seen: np.ndarray) -> np.ndarray:
        """z-scores of ``rows`` by the mean and std of the unseen items' scores (or a sample's), as
        :func:`ml.core.hybrid.zscore` standardises a whole row. ``seen``: see :meth:`_seen_among_stats_rows`."""
        linear = name in self.retrieval.samples  # its sample's vectors are copied once: read them in place
        values = scores.of(*self.retrieval.samples[name]) if linear else scores.at(self.retrieval.stats_rows)
        counted = np.isfinite(values)
        counted[seen] = False
        counted_values = values[counted]
        mean, std = (counted_values.mean(), counted_values.std()) if len(counted_values) else (0.0, 0.0)
        return ((scores.at(rows) - mean) / (std if std > 0 else 1.0)).astype(np.float32)

    def reasons(self, item_rows, user_content: sp.csr_matrix, history: sp.csr_matrix) -> list[list[str]]:
        """Per item, why it suits the user: their declared terms it matches, else what their history shares."""
        return self.models[CONTENT].explain_profile(item_rows, user_content, history)
