"""The one small interface every recommender implements; the hybrid only combines them.

Also the artifact format every model shares: a directory holding ``arrays.npz`` (read with
``allow_pickle=False``; sparse matrices stored as their csr parts) and ``meta.json`` (algorithm,
config, id maps, metrics, data fingerprint), so loading never unpickles anything.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .data import EngineError, IdMap, InteractionData, fingerprint

# Called with (event, info): e.g. ("epoch", {"epoch": 3, "epochs": 20, "train_loss": .., "val_loss": ..}).
ProgressCallback = Callable[[str, dict], None]

ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"
_SPARSE_PARTS = ("data", "indices", "indptr", "shape")


class Recommender(ABC):
    """fit -> score / recommend -> save / load.

    Users and items are dense rows of the ``InteractionData`` the model was fitted on;
    its ``user_ids`` / ``item_ids`` maps are saved with the model, with ``metrics`` (filled by
    whoever evaluates it) and the ``fingerprint`` of the data it saw.
    """

    name: str = "base"
    user_ids: IdMap | None = None
    item_ids: IdMap | None = None
    fingerprint: str | None = None

    @property
    def metrics(self) -> dict:
        if not hasattr(self, "_metrics"):
            self._metrics: dict = {}
        return self._metrics

    @metrics.setter
    def metrics(self, value: dict) -> None:
        self._metrics = dict(value)

    @abstractmethod
    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> Recommender:
        """Fit on ``data``; raise EngineError on data it cannot learn from."""

    @abstractmethod
    def score(self, user_rows: np.ndarray) -> np.ndarray:
        """(len(user_rows), n_items) float32 scores; higher is better."""

    def prepare_for_requests(self) -> None:
        """Make now what scoring users would otherwise make on first use: a web process calls it when it loads
        the model, so that under gunicorn it is made once in the master and shared by the workers, where each
        freshly forked worker's first request made it again (3 s at a million items). Nothing by default."""
        return None

    def recommend(self, user_row: int, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` item rows for one user, best first, ``exclude`` rows left out."""
        if k < 1:
            raise EngineError(f"k must be >= 1, got {k}")
        scores = self.score(np.asarray([user_row]))[0].astype(np.float32, copy=True)
        if exclude is not None and len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        return top_k(scores, k)

    def user_scores(self, user: UserState) -> UserScores:
        """This user's scores from their current rows, without retraining: what serving, the evaluation
        and the offline command rank by. A linear model (:meth:`linear_items`) answers with its query
        vector (:meth:`_query`), so any subset of items, or a retrieval index, can be scored from it."""
        form = self.linear_items()
        if form is None:
            raise EngineError(f"{self.name} cannot score a user from their current rows")
        return UserScores.linear(*form, self._query(user))

    def linear_items(self) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray | None] | None:
        """(item matrix A, offsets b) when one user's scores are ``A @ q + b`` for a query ``q``
        (:meth:`_query`), else None."""
        return None

    def _query(self, user: UserState) -> np.ndarray:
        """The query ``q`` of :meth:`linear_items` for one user."""
        raise EngineError(f"{self.name} does not score as a product of item vectors and a user query")

    def non_finite_parameters(self) -> list[str]:
        """Names of the model's weights that hold NaN or infinity (none for a sound model): every numpy
        array, sparse matrix, tensor and torch module it holds as a public attribute. A model loaded from
        damaged files can parse and still hold them, and would serve NaN scores."""
        return [label for name, value in vars(self).items() if not name.startswith("_")
                for label in _non_finite_arrays(name, value)]

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write weights, config, id maps and metrics to the directory ``path``."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Recommender:
        """Read what ``save`` wrote, without unpickling arbitrary objects."""

    def _remember_data(self, data: InteractionData) -> None:
        self.user_ids, self.item_ids = data.user_ids, data.item_ids
        self.fingerprint = fingerprint(data)

    def _check_rows(self, user_rows) -> np.ndarray:
        """User rows as an int array; EngineError for a model not fitted or a row it never saw."""
        if self.user_ids is None:
            raise EngineError(f"{self.name} is not fitted")
        rows = np.atleast_1d(np.asarray(user_rows, dtype=np.int64))
        bad = rows[(rows < 0) | (rows >= len(self.user_ids))]
        if len(bad):
            raise EngineError(f"unknown user row {int(bad[0])}: the model knows {len(self.user_ids)} users")
        return rows

    def _common_meta(self, config: dict[str, Any]) -> dict[str, Any]:
        return {
            "algorithm": self.name,
            "config": config,
            "user_ids": self.user_ids.to_json() if self.user_ids else [],
            "item_ids": self.item_ids.to_json() if self.item_ids else [],
            "metrics": self.metrics,
            "fingerprint": self.fingerprint,
        }

    def _restore_common(self, meta: dict[str, Any]) -> None:
        if meta.get("algorithm") != self.name:
            raise EngineError(f"artifact holds {meta.get('algorithm')!r}, not {self.name!r}")
        self.user_ids = IdMap.from_json(meta["user_ids"])
        self.item_ids = IdMap.from_json(meta["item_ids"])
        self.metrics = meta.get("metrics", {})
        self.fingerprint = meta.get("fingerprint")


@dataclass(frozen=True)
class UserState:
    """One user as they are now, in a model's numbering: what :meth:`Recommender.user_scores` reads.

    ``row``: the user's row in the training data, None for a user the model never saw;
    ``history``: (1, n_items) positive interaction weights; ``negatives``: (1, n_items) dismissals or None;
    ``content``: (1, v) declared terms in the content vocabulary, or None; ``features``: (d_u,) dense user
    features as the platform encodes them, or None.
    """

    row: int | None
    history: sp.csr_matrix
    negatives: sp.csr_matrix | None = None
    content: sp.csr_matrix | None = None
    features: np.ndarray | None = None


class UserScores:
    """One component's scores for one user, computed only for the item rows asked for.

    Linear components hold their item matrix and the user's ``query`` (a retrieval index searches with
    it); the others hold every item's score, computed once. ``known``: which items the component was
    trained with (bool per item row; None: all), the others scoring its mean.
    """

    def __init__(self, items, offsets: np.ndarray | None, query: np.ndarray | None, scores: np.ndarray | None,
                 known: np.ndarray | None = None):
        self._items, self._offsets, self.query, self._all = items, offsets, query, scores
        self.known = known

    @classmethod
    def linear(cls, items, offsets: np.ndarray | None, query: np.ndarray, known: np.ndarray | None = None
               ) -> UserScores:
        return cls(items, offsets, np.asarray(query, dtype=np.float32), None, known)

    @classmethod
    def dense(cls, scores: np.ndarray, known: np.ndarray | None = None) -> UserScores:
        return cls(None, None, None, np.asarray(scores, dtype=np.float32).ravel(), known)

    def at(self, rows: np.ndarray | None) -> np.ndarray:
        """Scores of the item ``rows`` (None: all items)."""
        if self._all is not None:
            return self._all if rows is None else self._all[rows]
        if rows is None:
            return self.of(self._items, self._offsets)
        return self.of(self._items[rows], None if self._offsets is None else self._offsets[rows])

    def of(self, items, offsets: np.ndarray | None) -> np.ndarray:
        """A linear component's scores of the items given by their vectors (and offsets)."""
        scores = np.asarray(items @ self.query, dtype=np.float32).ravel()
        return scores if offsets is None else scores + offsets


def _non_finite_arrays(name: str, value: Any) -> list[str]:
    """``[name]`` (or a module's ``name.<parameter>``) for each array in ``value`` that is not all finite.
    Tensors and modules are recognised by their methods, so that this module never imports torch."""
    if sp.issparse(value):
        value = value.data
    if hasattr(value, "state_dict") and callable(value.state_dict):  # a torch module: its parameters and buffers
        return [label for key, tensor in value.state_dict().items()
                for label in _non_finite_arrays(f"{name}.{key}", tensor)]
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
        return [name]
    return []


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest finite scores, best first."""
    finite = np.isfinite(scores)
    k = min(k, int(finite.sum()))
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    candidates = np.argpartition(-np.where(finite, scores, -np.inf), k - 1)[:k]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return order.astype(np.int64), scores[order].astype(np.float32)


def save_artifact(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray | sp.spmatrix]) -> None:
    """Write ``meta`` as JSON and ``arrays`` (dense or sparse) as one npz into the directory ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    flat: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if sp.issparse(value):
            csr = sp.csr_matrix(value)
            for part in _SPARSE_PARTS:
                flat[f"{key}__{part}"] = np.asarray(getattr(csr, part))
        else:
            flat[key] = np.asarray(value)
    np.savez(path / ARRAYS_FILE, **flat)  # type: ignore[arg-type]  # numpy's stub: a key could be allow_pickle
    (path / META_FILE).write_text(json.dumps(meta, indent=1))


def load_artifact(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray | sp.csr_matrix]]:
    """(meta, arrays) as ``save_artifact`` wrote them; EngineError when missing or unreadable."""
    path = Path(path)
    try:
        meta = json.loads((path / META_FILE).read_text())
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as stored:
            flat = {key: stored[key] for key in stored.files}
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read the model artifact in {path}: {exc}") from exc
    arrays: dict[str, np.ndarray | sp.csr_matrix] = {}
    for key, value in flat.items():
        base, _, part = key.rpartition("__")
        if part in _SPARSE_PARTS and base:
            if part == "data":
                arrays[base] = sp.csr_matrix(
                    (value, flat[f"{base}__indices"], flat[f"{base}__indptr"]), shape=tuple(flat[f"{base}__shape"])
                )
        else:
            arrays[key] = value
    return meta, arrays
