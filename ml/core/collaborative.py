"""Collaborative filtering on implicit, weighted interactions, and the item-item models the hybrid blends.

- :class:`CollaborativeRecommender`: implicit-ALS matrix factorisation (Hu, Koren, Volinsky 2008). The
  matrix holds the summed weights of each user's interaction kinds; ``dismiss`` enters as negative
  evidence (preference 0 with its own confidence). Users whose interactions changed are folded in by one
  exact least-squares solve against the fixed item factors; item factors give item-to-item similarity.
- :class:`EaseRecommender` (Steck 2019) and :class:`RP3BetaRecommender` (Paudel et al. 2017): item-item
  models that score a user from their history, so new interactions count at once.
- :class:`PopularityRecommender`: the floor every model must beat.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .base import ProgressCallback, Recommender, UserScores, UserState, load_artifact, save_artifact, top_k
from .data import EngineError, InteractionData, as_row, cells_of, csr_of_cells, fitted

EASE_MAX_ITEMS = 20000  # EASE inverts an (items x items) Gram matrix: 20k items is 3.2 GB in float64


class _HistoryScorer(Recommender):
    """A recommender that scores users from their interaction rows: it keeps the training matrix."""

    matrix: sp.csr_matrix | None = None

    def score(self, user_rows: np.ndarray) -> np.ndarray:
        rows = self._check_rows(user_rows)
        return self._score_histories(fitted(self.matrix, self.name)[rows])

    def user_scores(self, user: UserState) -> UserScores:
        """Every item's score from the user's current interaction row, without retraining."""
        if self.item_ids is None:
            raise EngineError(f"{self.name} is not fitted")
        return UserScores.dense(self._score_histories(as_row(user.history, len(self.item_ids), "history"))[0])

    def _score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError


# ---------------------------------------------------------------- popularity


class PopularityRecommender(_HistoryScorer):
    """Everyone gets the items most users interacted with."""

    name = "popularity"

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None

    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> PopularityRecommender:
        data.validate()
        self.counts = np.asarray((data.matrix > 0).sum(axis=0), dtype=np.float32).ravel()
        self.matrix = sp.csr_matrix(data.matrix.shape, dtype=np.float32)
        self._remember_data(data)
        return self

    def _score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        # log, as the ranker blends popularity: the order is the counts', the z-scores not dominated by a few hits
        return np.tile(np.log1p(fitted(self.counts, self.name)), (histories.shape[0], 1))

    def save(self, path: Path) -> None:
        save_artifact(path, self._common_meta({}), {"counts": self.counts})

    @classmethod
    def load(cls, path: Path) -> PopularityRecommender:
        meta, arrays = load_artifact(path)
        model = cls()
        model._restore_common(meta)
        model.counts = arrays["counts"]
        model.matrix = sp.csr_matrix((len(fitted(model.user_ids, cls.name)), len(fitted(model.item_ids, cls.name))),
                                     dtype=np.float32)
        return model


# ---------------------------------------------------------------- implicit ALS


@dataclass
class ALSConfig:
    # Tuned on validation carved from the ml-100k training split (ml-100k notes: reg and alpha matter
    # more than factors; library defaults score 0.278 NDCG@10, these 0.328). 64 factors, not 128: on
    # ml-100k (shared/tools/offline_eval.py) ALS scored 0.3266 against 0.3289 and the hybrid 0.3331 against
    # 0.3340, while at a million users and items an iteration takes 5.5 s against 10.1 s (2 cores), and
    # each served vector and fold-in is half the size.
    factors: int = 64
    regularization: float = 30.0
    alpha: float = 5.0  # confidence = alpha * interaction weight
    # 10, not 15: on ml-100k ALS scored 0.3264 against 0.3266 and the hybrid 0.3340 against 0.3331, and at
    # a million an iteration of the final fit takes about 8 s.
    iterations: int = 10
    dismiss_weight: float = 1.0  # confidence of "not this one" per unit of negative evidence
    # Every positive cell weighs 1, whatever its kinds add up to. On a seeded platform world, the kinds'
    # summed weights (a user's view, save and apply of one position: 7) as confidences lost a quarter of
    # the held-out NDCG@10 against binary cells (0.032 vs 0.041, regularization 10, alpha 1).
    binary: bool = True


class CollaborativeRecommender(Recommender):
    """Implicit-ALS with dismisses as negative evidence, fold-in and item-to-item similarity."""

    name = "collaborative"

    def __init__(self, config: ALSConfig | None = None, seed: int = 0):
        self.config = config or ALSConfig()
        self.seed = seed
        self.user_factors: np.ndarray | None = None  # (n_users, factors)
        self.item_factors: np.ndarray | None = None  # (n_items, factors)
        # (item_factors it was computed from, (Y'Y + reg I)^-1)
        self._inverse: tuple[np.ndarray, np.ndarray] | None = None

    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> CollaborativeRecommender:
        from implicit.cpu.als import AlternatingLeastSquares

        data.validate()
        c = self.config
        _began(progress, self.name, "iteration", c.iterations)
        # implicit parallelises over users itself; a BLAS thread pool on top only oversubscribes the cores
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=c.factors, regularization=c.regularization, alpha=c.alpha, iterations=c.iterations,
                random_state=self.seed,
            )
            model.fit(self._confidence_matrix(data.matrix, data.negatives), show_progress=False,
                      callback=_als_progress(progress, c.iterations))
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self._remember_data(data)
        return self

    def _confidence_matrix(self, matrix: sp.csr_matrix, negatives: sp.csr_matrix | None) -> sp.csr_matrix:
        """Positives as they are; negatives as negative values, which implicit reads as "preference 0".
        A dismissed item is not a positive any more, whatever was recorded before."""
        positives = sp.csr_matrix(matrix > 0 if self.config.binary else matrix, dtype=np.float32)
        if negatives is None or not negatives.nnz:
            return positives
        negatives = sp.csr_matrix(negatives, dtype=np.float32)
        (rows, cols), (dismissed_rows, dismissed_cols) = cells_of(positives), cells_of(negatives)
        n_items = positives.shape[1]
        kept = ~np.isin(rows * n_items + cols, dismissed_rows * n_items + dismissed_cols)
        values = np.concatenate([positives.data[kept], -self.config.dismiss_weight * negatives.data])
        nonzero = values != 0
        return csr_of_cells(np.concatenate([rows[kept], dismissed_rows])[nonzero],
                            np.concatenate([cols[kept], dismissed_cols])[nonzero], values[nonzero], *positives.shape)

    def score(self, user_rows: np.ndarray) -> np.ndarray:
        rows = self._check_rows(user_rows)
        return (fitted(self.user_factors, self.name)[rows] @ fitted(self.item_factors, self.name).T).astype(np.float32)

    def linear_items(self) -> tuple[np.ndarray, None]:
        return fitted(self.item_factors, self.name), None

    def _query(self, user: UserState) -> np.ndarray:
        """The user's factors from their current rows (the model's own user factors are never read, so a
        new interaction counts at once). One exact ALS user step:
        (Y'Y + reg I + sum_i (c_i - 1) y_i y_i') x = sum_{i positive} c_i y_i,
        solved by the Woodbury identity: with (Y'Y + reg I)^-1 made once per set of item factors, a user
        with k items costs a (k, k) solve instead of a (factors, factors) one.
        """
        if self.item_factors is None:
            raise EngineError("collaborative is not fitted")
        n_items = len(self.item_factors)
        negatives = None if user.negatives is None else as_row(user.negatives, n_items, "negatives")
        row = self._confidence_matrix(as_row(user.history, n_items, "history"), negatives)
        items, values = row.indices, row.data * self.config.alpha
        seen = self.item_factors[items].astype(np.float64)
        confidence = np.abs(values)
        inverse = self._regularised_gram_inverse()
        inverse_b = inverse @ (seen.T @ np.where(values > 0, confidence, 0.0))
        extra = confidence - 1.0  # each item's weight beyond the one Y'Y already gives it
        u, extra = seen[extra != 0], extra[extra != 0]
        if not len(extra):
            return inverse_b.astype(np.float32)
        inverse_ut = inverse @ u.T
        small = np.diag(1.0 / extra) + u @ inverse_ut
        return (inverse_b - inverse_ut @ np.linalg.solve(small, u @ inverse_b)).astype(np.float32)

    def prepare_for_requests(self) -> None:
        self._regularised_gram_inverse()

    def _regularised_gram_inverse(self, block: int = 65536) -> np.ndarray:
        """(Y'Y + reg I)^-1 in float64, computed once per set of item factors: every fold-in needs it, and
        Y'Y costs a pass over the whole catalog (summed block by block: no float64 copy of all the factors,
        950 MB at a million items)."""
        factors = fitted(self.item_factors, self.name)
        if self._inverse is None or self._inverse[0] is not factors:
            gram = self.config.regularization * np.eye(factors.shape[1])
            for start in range(0, len(factors), block):
                y = factors[start:start + block].astype(np.float64)
                gram += y.T @ y
            self._inverse = (factors, np.linalg.inv(gram))
        return self._inverse[1]

    def similar_items(self, item_row: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items closest to ``item_row`` by cosine of the item factors, itself excluded."""
        if self.item_factors is None:
            raise EngineError("collaborative is not fitted")
        if not 0 <= item_row < len(self.item_factors):
            raise EngineError(f"unknown item row {item_row}")
        norms = np.linalg.norm(self.item_factors, axis=1)
        norms[norms == 0] = 1.0
        cosine = self.item_factors @ self.item_factors[item_row] / (norms * norms[item_row])
        cosine[item_row] = -np.inf
        return top_k(cosine.astype(np.float32), k)

    def save(self, path: Path) -> None:
        meta = self._common_meta({**asdict(self.config), "seed": self.seed})
        save_artifact(path, meta, {"user_factors": self.user_factors, "item_factors": self.item_factors})

    @classmethod
    def load(cls, path: Path) -> CollaborativeRecommender:
        meta, arrays = load_artifact(path)
        config = dict(meta["config"])
        model = cls(ALSConfig(**{k: v for k, v in config.items() if k != "seed"}), seed=config.get("seed", 0))
        model._restore_common(meta)
        model.user_factors, model.item_factors = arrays["user_factors"], arrays["item_factors"]
        return model


def _als_progress(progress: ProgressCallback | None, iterations: int):
    if progress is None:
        return None
    return lambda iteration, seconds, loss: progress(
        "iteration", {"algorithm": "collaborative", "iteration": iteration + 1, "iterations": iterations}
    )


# Progress hooks: a fit says it begins ("fit", with how many steps of which unit it takes) and reports each
# step done, so that a watcher (ml.training's run progress, a console) can show how far it is.


def _began(progress: ProgressCallback | None, algorithm: str, unit: str, total: int) -> None:
    if progress is not None:
        progress("fit", {"algorithm": algorithm, "unit": unit, "total": total})


def _stepped(progress: ProgressCallback | None, algorithm: str, step: int, steps: int) -> None:
    if progress is not None:
        progress("step", {"algorithm": algorithm, "step": step, "steps": steps})


# ---------------------------------------------------------------- item-item models


class _ItemItemRecommender(_HistoryScorer):
    """Scores = the binarised history times an item-item weight matrix (dense or sparse), learnt by ``fit``."""

    config_class: type

    def __init__(self, config=None) -> None:
        self.config = config or self.config_class()
        self.weights: np.ndarray | sp.csr_matrix | None = None  # (n_items, n_items)

    def _score_histories(self, histories: sp.csr_matrix) -> np.ndarray:
        scores = (histories > 0).astype(np.float32) @ self.weights
        return np.asarray(scores.toarray() if sp.issparse(scores) else scores, dtype=np.float32)

    def save(self, path: Path) -> None:
        save_artifact(path, self._common_meta(asdict(self.config)), {"weights": self.weights, "matrix": self.matrix})

    @classmethod
    def load(cls, path: Path) -> _ItemItemRecommender:
        meta, arrays = load_artifact(path)
        model = cls(cls.config_class(**meta["config"]))
        model._restore_common(meta)
        model.weights, model.matrix = arrays["weights"], arrays["matrix"]
        return model


@dataclass
class EaseConfig:
    l2: float = 300.0  # ridge on the item-item weights; validation on ml-100k preferred 200-500


class EaseRecommender(_ItemItemRecommender):
    """Scores = X B with B the closed-form ridge regression of each item on all the others (zero diagonal)."""

    name = "ease"
    config_class = EaseConfig

    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> EaseRecommender:
        data.validate()
        if data.n_items > EASE_MAX_ITEMS:
            raise EngineError(f"EASE needs at most {EASE_MAX_ITEMS} items, got {data.n_items}")
        _began(progress, self.name, "step", 3)
        x = (data.matrix > 0).astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.config.l2
        _stepped(progress, self.name, 1, 3)
        inverse = np.linalg.inv(gram)  # the costly step: (items x items)
        _stepped(progress, self.name, 2, 3)
        weights = inverse / -np.diag(inverse)
        np.fill_diagonal(weights, 0.0)
        self.weights = weights.astype(np.float32)
        self.matrix = sp.csr_matrix(data.matrix > 0, dtype=np.float32)
        self._remember_data(data)
        _stepped(progress, self.name, 3, 3)
        return self


@dataclass
class RP3BetaConfig:
    alpha: float = 1.0  # exponent on the random-walk transition probabilities
    beta: float = 0.5  # divides by popularity^beta: demotes blockbusters every walk reaches
    neighbours: int = 200  # item-item weights kept per item


class RP3BetaRecommender(_ItemItemRecommender):
    """Three-step random walk item -> user -> item, re-weighted against popularity, sparsified."""

    name = "rp3beta"
    config_class = RP3BetaConfig

    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> RP3BetaRecommender:
        data.validate()
        c = self.config
        _began(progress, self.name, "step", 2)
        x = sp.csr_matrix(data.matrix > 0, dtype=np.float32)
        user_to_item = _row_normalise(x).power(c.alpha)
        item_to_user = _row_normalise(sp.csr_matrix(x.T)).power(c.alpha)
        walk = (item_to_user @ user_to_item).tocsr()
        popularity = np.asarray(x.sum(axis=0)).ravel()
        walk = walk @ sp.diags(1.0 / np.power(np.maximum(popularity, 1.0), c.beta))
        walk.setdiag(0.0)
        _stepped(progress, self.name, 1, 2)
        self.weights = _keep_top_per_row(sp.csr_matrix(walk), c.neighbours)
        self.matrix = x
        self._remember_data(data)
        _stepped(progress, self.name, 2, 2)
        return self


def _row_normalise(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums) @ matrix)


def _keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest entries; the long tail of weak co-occurrences is mostly noise."""
    matrix.eliminate_zeros()
    rows, cols, values = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        data = matrix.data[start:end]
        keep = np.argpartition(-data, k - 1)[:k] if len(data) > k else np.arange(len(data))
        rows.append(np.full(len(keep), row))
        cols.append(matrix.indices[start:end][keep])
        values.append(data[keep])
    return sp.csr_matrix(
        (np.concatenate(values).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape
    )
