"""The hybrid: per-user z-scored component scores, blended with weights, with a fallback chain.

Paths (``HybridResult.path``, the API's ``fallback``):
- ``"none"``: every available component;
- ``"no_two_tower"``: the Two-Tower is unavailable (not fitted, failed to fit or to score): the others;
- ``"cold_start"``: the user has no interactions: content only (collaborative signals know nothing of them).

Scores of different models live on different scales, so each component's scores are standardised per
user (z-scores over the items the user has not seen) before the weighted sum; blending raw scores does
not work. Weights default to content 0.4, collaborative 0.35, two-tower 0.25. With ``tune_weights``, a
validation split carved from the training data first picks each component's setting (``candidates``:
content's popularity prior, ALS regularisation, EASE's ridge), then the weights by coordinate ascent,
where the extra item-item components ``ease`` / ``rp3beta`` may earn a weight too; the components are
then refitted on all the data, except the ``keep_tuned`` ones, which serve as fitted on the fold. On
ml-100k this measured above each component alone and the tuned baselines; on a sparse catalog with
declared skills it hands the weight to content.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .base import ProgressCallback, Recommender, load_artifact, save_artifact, top_k
from .data import EngineError, InteractionData, as_row, holdout_split
from .metrics import heldout_ndcg

CONTENT, COLLABORATIVE, TWO_TOWER = "content_based", "collaborative", "two_tower"
PATH_ALL, PATH_NO_TWO_TOWER, PATH_COLD_START = "none", "no_two_tower", "cold_start"
DEFAULT_WEIGHTS = {CONTENT: 0.4, COLLABORATIVE: 0.35, TWO_TOWER: 0.25}
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
CANDIDATES_PER_COMPONENT = 100  # the shortlist each component adds when weights are tuned
VALIDATION_MIN_ITEMS = 3  # users need this many interactions to lend one to validation (sparse catalogs)
SHORTLIST_CHUNK = 256  # validation users scored at a time while the shortlist is built


def build_component(name: str, seed: int = 0) -> Recommender:
    """A fresh recommender by algorithm name, with its defaults."""
    return candidates(name, seed)[0]()


def candidates(name: str, seed: int = 0) -> list[Callable[[], Recommender]]:
    """Makers of the settings worth comparing on validation data, the default first.

    Grids are small and cheap: content's popularity prior (MovieLens wants a strong one, a sparse job
    catalog with declared skills a weak one), ALS regularisation (it matters more than factors), EASE's
    ridge. Training-heavy models (the Two-Tower) get one setting.
    """
    from . import collaborative as co
    from . import content as cb

    grids: dict[str, list[Callable[[], Recommender]]] = {
        CONTENT: [lambda w=w: cb.ContentRecommender(cb.ContentConfig(popularity_weight=w))
                  for w in (cb.ContentConfig().popularity_weight, 0.0, 0.3, 1.0, 2.0, 4.0)],
        COLLABORATIVE: [lambda r=r: co.CollaborativeRecommender(co.ALSConfig(regularization=r), seed=seed)
                        for r in (co.ALSConfig().regularization, 10.0, 100.0)],
        "ease": [lambda v=v: co.EaseRecommender(co.EaseConfig(l2=v)) for v in (co.EaseConfig().l2, 100.0, 1000.0)],
        "rp3beta": [co.RP3BetaRecommender],
        "popularity": [co.PopularityRecommender],
    }
    if name == TWO_TOWER:
        from .two_tower import TwoTowerRecommender

        return [lambda: TwoTowerRecommender(seed=seed)]
    if name not in grids:
        raise EngineError(f"unknown algorithm {name!r}; known: {sorted([*grids, TWO_TOWER])}")
    return grids[name]


def select_on_validation(
    makers: list[Callable[[], Recommender]], fold: InteractionData, heldout: sp.csr_matrix, k: int = 10,
    progress: ProgressCallback | None = None,
) -> tuple[Callable[[], Recommender], Recommender, float]:
    """(maker, model fitted on ``fold``, NDCG@k on ``heldout``) of the best setting; one setting is not scored."""
    best: tuple[Callable[[], Recommender], Recommender, float] | None = None
    for make in makers:
        model = make().fit(fold, progress=progress)
        ndcg = heldout_ndcg(model, fold, heldout, k) if len(makers) > 1 else float("nan")
        if progress and len(makers) > 1:
            progress("setting", {"algorithm": model.name, "config": str(getattr(model, "config", "")),
                                 "validation_ndcg": ndcg})
        if best is None or ndcg > best[2]:
            best = (make, model, ndcg)
    return best


def fit_tuned(name: str, data: InteractionData, seed: int = 0, k: int = 10, fraction: float = 0.2,
              progress: ProgressCallback | None = None) -> Recommender:
    """The algorithm's best setting on validation carved from ``data``, refitted on all of ``data``."""
    makers = candidates(name, seed)
    split = validation_split(data, fraction, seed + 1)
    if len(makers) > 1 and split is not None:
        makers = [select_on_validation(makers, *split, k, progress)[0]]
    return makers[0]().fit(data, progress=progress)


def validation_split(data: InteractionData, fraction: float, seed: int) -> tuple[InteractionData, sp.csr_matrix] | None:
    """(fold, heldout) carved per user from ``data``; None when no user has enough interactions to spare one."""
    train, heldout = holdout_split(data.matrix, fraction, seed, min_items=VALIDATION_MIN_ITEMS)
    return None if heldout.nnz == 0 else (data.with_matrix(train), heldout)


@dataclass
class HybridConfig:
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    tune_weights: bool = False  # fit the weights on a validation split carved from the training data
    validation_fraction: float = 0.2  # per user, as the offline harness splits
    validation_users: int = 2000  # at most this many users score the weights (a sample beyond it)
    # NDCG cut-off that settings and weights are tuned at. Deeper than the usual 10: each validation user
    # then has more hits, a less noisy objective (nested validation within ml-100k training files preferred
    # 20 to 10 on three splits).
    k: int = 20
    # Components fitted once, on the validation fold, and kept after tuning instead of refitted on all the
    # data. The Two-Tower is most of the fit time; on ml-100k (seeds 0-2) keeping it scored the same as
    # refitting it (NDCG@10 0.3280 vs 0.3286 on average) in 30-40 s instead of 65-115 s.
    keep_tuned: list[str] = field(default_factory=lambda: [TWO_TOWER])


@dataclass
class HybridResult:
    """One user's recommendations; ``components`` holds each algorithm's z-scores of ``items``."""

    items: np.ndarray
    scores: np.ndarray
    components: dict[str, np.ndarray]
    path: str
    weights: dict[str, float]
    reasons: list[list[str]]


class HybridRecommender(Recommender):
    name = "hybrid"

    def __init__(
        self,
        config: HybridConfig | None = None,
        seed: int = 0,
        tune: bool | None = None,
        factories: dict[str, Callable[[], Recommender]] | None = None,
    ):
        """``factories``: per component name, how to make it when not by its defaults (e.g. a Two-Tower preset)."""
        self.config = config or HybridConfig()
        if tune is not None:
            self.config.tune_weights = tune
        self.seed = seed
        self.factories = dict(factories or {})
        self.models: dict[str, Recommender] = {}
        self.unavailable: dict[str, str] = {}  # component -> why it is not serving
        self.matrix: sp.csr_matrix | None = None  # who has interactions: seen items and cold starts
        self.negatives: sp.csr_matrix | None = None
        self.validation: dict = {}  # the weight search's trace when weights were tuned

    # ------------------------------------------------------------ fitting

    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> HybridRecommender:
        data.validate()
        kept: dict[str, Recommender] = {}
        if self.config.tune_weights:
            kept = self._tune(data, progress)
        names = [n for n in self._names() if n not in kept]
        self.models, self.unavailable = self._fit_components(names, data, progress)
        self.models |= kept
        if CONTENT not in self.models:
            raise EngineError(f"the hybrid needs the content model: {self.unavailable.get(CONTENT)}")
        self.matrix = sp.csr_matrix(data.matrix)
        self.negatives = None if data.negatives is None else sp.csr_matrix(data.negatives)
        self._remember_data(data)
        return self

    def _names(self) -> list[str]:
        """Components with a positive weight (content always: it is the cold-start path)."""
        return [n for n, w in self.config.weights.items() if w > 0 or n == CONTENT]

    def _tune(self, data: InteractionData, progress: ProgressCallback | None) -> dict[str, Recommender]:
        """Pick each component's setting, then the weights, on one validation split carved from ``data``.

        Returns the fold-fitted models of ``keep_tuned`` that earned a weight, to serve as they are.
        """
        started = time.perf_counter()
        split = validation_split(data, self.config.validation_fraction, self.seed + 1)
        if split is None:
            self.validation = {"skipped": "no user has enough interactions to hold some out; default weights"}
            return {}
        fold, heldout = split
        names = [*dict.fromkeys([*self.config.weights, "ease", "rp3beta"])]
        models, failed = self._fit_components(names, fold, progress, heldout)
        users = _validation_users(heldout, self.config.validation_users, self.seed)
        shortlist, unscorable = _Shortlist.build(models, fold.matrix, users, heldout)
        failed |= unscorable
        weights, trace = coordinate_ascent(shortlist, {n: self.config.weights.get(n, 0.0) for n in shortlist.z},
                                           self.config.k)
        self.config.weights = {n: round(w, 4) for n, w in weights.items()}
        self.validation = {"ndcg": trace[-1], "trace": trace, "failed": failed, "users": len(users),
                           "settings": {n: str(getattr(m, "config", "")) for n, m in models.items()},
                           "seconds": round(time.perf_counter() - started, 1)}
        if progress:
            progress("weights", {"algorithm": "hybrid", **self.config.weights, "validation_ndcg": trace[-1]})
        return {n: models[n] for n in self.config.keep_tuned if self.config.weights.get(n, 0) > 0}

    def _fit_components(
        self, names, data: InteractionData, progress, heldout: sp.csr_matrix | None = None
    ) -> tuple[dict[str, Recommender], dict[str, str]]:
        """Fit each named component; one that cannot learn from the data is reported, not fatal.

        With ``heldout``, each component's setting is chosen on it and remembered for later fits.
        """
        models, failed = {}, {}
        for name in names:
            started = time.perf_counter()
            try:
                if heldout is not None:
                    makers = [self.factories[name]] if name in self.factories else candidates(name, self.seed)
                    self.factories[name], models[name], _ = select_on_validation(
                        makers, data, heldout, self.config.k, progress
                    )
                else:
                    models[name] = self.factories.get(name, candidates(name, self.seed)[0])().fit(
                        data, progress=progress
                    )
            except Exception as exc:  # e.g. too little data for the Two-Tower: serve with the others
                failed[name] = f"{type(exc).__name__}: {exc}"
            if progress:
                progress("component", {"algorithm": name, "seconds": round(time.perf_counter() - started, 2),
                                       "ok": name in models})
        return models, failed

    # ------------------------------------------------------------ scoring

    def active_weights(self, path: str) -> dict[str, float]:
        """The weights a path blends with, normalised to sum 1."""
        if path == PATH_COLD_START:
            return {CONTENT: 1.0}
        weights = {n: w for n, w in self.config.weights.items() if w > 0 and n in self.models}
        if path == PATH_NO_TWO_TOWER:
            weights.pop(TWO_TOWER, None)
        total = sum(weights.values())
        if total <= 0:
            return {CONTENT: 1.0}
        return {n: w / total for n, w in weights.items()}

    def path_of(self, user_row: int | None, has_history: bool) -> str:
        if not has_history:
            return PATH_COLD_START
        if TWO_TOWER in self.models and self.config.weights.get(TWO_TOWER, 0) > 0 and user_row is not None:
            return PATH_ALL
        return PATH_NO_TWO_TOWER

    def score(self, user_rows: np.ndarray) -> np.ndarray:
        rows = self._check_rows(user_rows)
        out = np.empty((len(rows), len(self.item_ids)), dtype=np.float32)
        has_history = np.diff(self.matrix.indptr)[rows] > 0
        paths = np.asarray([self.path_of(int(r), bool(h)) for r, h in zip(rows, has_history, strict=True)])
        for path in np.unique(paths):
            chosen = paths == path
            out[chosen] = self._blend(rows[chosen], path)[0]
        return out

    def _blend(self, rows: np.ndarray, path: str) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
        """(blended, per-component z-scores, path taken) for known users, from the fitted rows."""
        return self._blend_with(path, lambda name: self.models[name].score(rows), self.matrix[rows])

    def _blend_with(self, path: str, score: Callable[[str], np.ndarray], seen) -> tuple[np.ndarray, dict, str]:
        """Weighted z-scores of the path's components; the Two-Tower failing turns the path to no_two_tower."""
        parts: dict[str, np.ndarray] = {}
        for name in self.active_weights(path):
            try:
                parts[name] = zscore(score(name), seen)
            except Exception as exc:  # a broken Two-Tower must not fail the request: serve without it
                if name != TWO_TOWER:
                    raise
                self.unavailable[TWO_TOWER] = f"scoring failed: {exc}"
                return self._blend_with(PATH_NO_TWO_TOWER, score, seen)
        weights = self.active_weights(path)
        return sum(w * parts[n] for n, w in weights.items()), parts, path

    def recommend_for(
        self,
        user_row: int | None,
        k: int = 10,
        history=None,
        negatives=None,
        user_content=None,
        exclude: np.ndarray | None = None,
    ) -> HybridResult:
        """Top ``k`` for one user, seen and dismissed items excluded, with path, component scores and reasons.

        ``user_row``: the user's row in the training data, or None for a user the models never saw.
        ``history`` / ``negatives``: the user's current (1, n_items) interaction rows when they changed
        since training (folded in without retraining); by default the training rows.
        ``user_content``: the user's declared terms, (1, v), for a new user or a changed profile.
        """
        if k < 1:
            raise EngineError(f"k must be >= 1, got {k}")
        fresh = user_row is None or any(x is not None for x in (history, negatives, user_content))
        if user_row is not None:
            user_row = int(self._check_rows([user_row])[0])
        history, negatives = self._current_rows(user_row, history, negatives)
        path = self.path_of(user_row, history.nnz > 0)
        content = self.models[CONTENT]
        if user_content is None and user_row is not None:
            user_content = content.declared[user_row]
        if fresh:

            def fold_in(name: str) -> np.ndarray:
                return fold_in_scores(self.models[name], name, user_row, history, negatives, user_content)[None, :]

            blended, parts, path = self._blend_with(path, fold_in, history)
        else:
            blended, parts, path = self._blend(np.asarray([user_row]), path)
        scores = blended[0].astype(np.float32, copy=True)
        extra = np.asarray([] if exclude is None else exclude, dtype=np.int64)
        scores[np.concatenate([history.indices, negatives.indices, extra])] = -np.inf
        items, values = top_k(scores, k)
        reasons = content.explain_profile(items, user_content, history)
        components = {n: p[0][items] for n, p in parts.items()}
        return HybridResult(items, values, components, path, self.active_weights(path), reasons)

    def _current_rows(self, user_row, history, negatives) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """The given interaction rows, else the training ones for a known user, else empty rows."""
        if user_row is not None:
            history = self.matrix[user_row] if history is None else history
            if negatives is None and self.negatives is not None:
                negatives = self.negatives[user_row]
        n_items = len(self.item_ids)
        return as_row(history, n_items, "history"), as_row(negatives, n_items, "negatives")

    # ------------------------------------------------------------ persistence

    def save(self, path: Path) -> None:
        """Each component in its own sub-directory, plus weights and the interaction rows used to exclude."""
        path = Path(path)
        for name, model in self.models.items():
            model.save(path / name)
        meta = self._common_meta(asdict(self.config) | {"seed": self.seed})
        meta |= {"components": list(self.models), "unavailable": self.unavailable, "validation": self.validation}
        arrays = {"matrix": self.matrix}
        if self.negatives is not None:
            arrays["negatives"] = self.negatives
        save_artifact(path, meta, arrays)

    @classmethod
    def load(cls, path: Path) -> HybridRecommender:
        path = Path(path)
        meta, arrays = load_artifact(path)
        config = dict(meta["config"])
        seed = config.pop("seed", 0)
        model = cls(HybridConfig(**config), seed=seed)
        model._restore_common(meta)
        model.unavailable, model.validation = dict(meta["unavailable"]), dict(meta["validation"])
        for name in meta["components"]:
            try:
                model.models[name] = type(build_component(name, seed)).load(path / name)
            except (EngineError, OSError, RuntimeError, KeyError, json.JSONDecodeError) as exc:
                if name == CONTENT:
                    raise EngineError(f"cannot load the hybrid's content model: {exc}") from exc
                model.unavailable[name] = f"cannot load: {exc}"
        model.matrix, model.negatives = arrays["matrix"], arrays.get("negatives")
        return model


# ---------------------------------------------------------------- helpers


def zscore(scores: np.ndarray, seen: np.ndarray | sp.spmatrix | None = None) -> np.ndarray:
    """Each row standardised by the mean and std of its unseen items; a constant row becomes 0.

    Seen items are left out of the statistics because models score them far above the rest (they were
    fitted to them), which would squash the differences among the candidates that matter.
    """
    scores = np.asarray(scores, dtype=np.float32)
    counted = np.ones(scores.shape, dtype=bool) if seen is None else ~_dense_bool(seen)
    counted &= np.isfinite(scores)
    count = np.maximum(counted.sum(axis=1, keepdims=True), 1)
    mean = np.where(counted, scores, 0.0).sum(axis=1, keepdims=True) / count
    var = (np.where(counted, scores - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count
    std = np.sqrt(var)
    return ((scores - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def _dense_bool(seen) -> np.ndarray:
    return (seen.toarray() if sp.issparse(seen) else np.asarray(seen)) != 0


def fold_in_scores(model, name, user_row, history, negatives, user_content) -> np.ndarray:
    """(n_items,) scores of component ``name`` for one user from their current rows, without retraining."""
    if name == CONTENT:
        return model.score_profile(user_content, history, negatives)
    if name == COLLABORATIVE:
        return model.fold_in(history, negatives)
    if name == TWO_TOWER:
        try:
            return model.score_history(history.indices)
        except EngineError:
            if user_row is None:
                raise
            return model.score(np.asarray([user_row]))[0]  # id-based towers: the user's embedding at training
    return model.fold_in(history)


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
        cls, models: dict[str, Recommender], matrix: sp.csr_matrix, users: np.ndarray, heldout: sp.csr_matrix
    ) -> tuple[_Shortlist, dict[str, str]]:
        """(shortlist, failed): a component that cannot score is left out and reported."""
        scorable, failed = {}, {}
        for name, model in models.items():
            try:
                model.score(users[:1])
                scorable[name] = model
            except Exception as exc:  # same policy as serving: a failing component drops out
                failed[name] = f"{type(exc).__name__}: {exc}"
        chunks = [cls._chunk(scorable, matrix, users[s : s + SHORTLIST_CHUNK], heldout)
                  for s in range(0, len(users), SHORTLIST_CHUNK)]
        z = {n: np.vstack([c.z[n] for c in chunks]) for n in scorable}
        relevant = np.vstack([c.relevant for c in chunks])
        return cls(z, relevant, np.concatenate([c.n_relevant for c in chunks])), failed

    @classmethod
    def _chunk(
        cls, models: dict[str, Recommender], matrix: sp.csr_matrix, users: np.ndarray, heldout: sp.csr_matrix
    ) -> _Shortlist:
        """The shortlist of a few users, so that only (chunk, n_items) score blocks are ever held."""
        rows = np.arange(len(users))
        seen = matrix[users].toarray() > 0
        full = {name: zscore(model.score(users), seen) for name, model in models.items()}
        per_component = min(CANDIDATES_PER_COMPONENT, matrix.shape[1])
        top = [np.argpartition(np.where(seen, np.inf, -s), per_component - 1, axis=1)[:, :per_component]
               for s in full.values()]
        candidates = np.sort(np.concatenate(top, axis=1), axis=1)
        # a seen item, or a candidate repeated, must not count in a ranking: send it to the bottom
        dropped = seen[rows[:, None], candidates]
        dropped[:, 1:] |= candidates[:, 1:] == candidates[:, :-1]
        z = {n: np.where(dropped, -np.inf, s[rows[:, None], candidates]) for n, s in full.items()}
        relevant = (heldout[users].toarray() > 0)[rows[:, None], candidates] & ~dropped
        return cls(z, relevant, np.diff(heldout[users].indptr))

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
