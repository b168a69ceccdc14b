"""The one small interface every recommender implements; the hybrid only combines them."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .data import EngineError, InteractionData

# Called with (event, info): e.g. ("epoch", {"epoch": 3, "epochs": 20, "train_loss": .., "val_loss": ..}).
ProgressCallback = Callable[[str, dict], None]


class Recommender(ABC):
    """fit -> score / recommend -> save / load.

    Users and items are dense rows of the ``InteractionData`` the model was fitted on;
    its ``user_ids`` / ``item_ids`` maps are saved with the model.
    """

    name: str = "base"

    @abstractmethod
    def fit(self, data: InteractionData, *, progress: ProgressCallback | None = None) -> Recommender:
        """Fit on ``data``; raise EngineError on data it cannot learn from."""

    @abstractmethod
    def score(self, user_rows: np.ndarray) -> np.ndarray:
        """(len(user_rows), n_items) float32 scores; higher is better."""

    def recommend(self, user_row: int, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` item rows for one user, best first, ``exclude`` rows left out."""
        if k < 1:
            raise EngineError(f"k must be >= 1, got {k}")
        scores = self.score(np.asarray([user_row]))[0].astype(np.float32, copy=True)
        if exclude is not None and len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        return top_k(scores, k)

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write weights, config, id maps and metrics to the directory ``path``."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Recommender:
        """Read what ``save`` wrote, without unpickling arbitrary objects."""


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest finite scores, best first."""
    finite = np.isfinite(scores)
    k = min(k, int(finite.sum()))
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    candidates = np.argpartition(-np.where(finite, scores, -np.inf), k - 1)[:k]
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return order.astype(np.int64), scores[order].astype(np.float32)
