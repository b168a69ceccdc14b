"""The engine's input: id maps and the interaction matrix, plus aligned feature arrays.

Everything here is plain numpy / scipy. Outside ids (database primary keys, CSV ids) are
translated to dense row indices by :class:`IdMap`; the maps are saved with every model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


class EngineError(ValueError):
    """Bad input to the engine: empty data, unknown user, NaN feature, too little data."""


@dataclass
class IdMap:
    """Outside id (kept as str) <-> dense row index."""

    ids: list[str]
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        self.index = {i: n for n, i in enumerate(self.ids)}
        if len(self.index) != len(self.ids):
            raise EngineError("id map has duplicate ids")

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, outside_id) -> int:
        try:
            return self.index[str(outside_id)]
        except KeyError:
            raise EngineError(f"unknown id {outside_id!r}") from None

    def to_json(self) -> list[str]:
        return list(self.ids)

    @classmethod
    def from_json(cls, ids: list[str]) -> IdMap:
        return cls(ids)


@dataclass
class InteractionData:
    """What every recommender fits on.

    matrix:          (n_users, n_items) csr float32, the summed positive weight of each
                     user's interactions with each item (0 = none).
    negatives:       (n_users, n_items) csr float32 of explicit negative evidence
                     (e.g. ``dismiss``), or None.
    user_features:   (n_users, d_u) float32 dense, encoded by ml.core.features, or None.
    item_features:   (n_items, d_i) float32 dense, encoded by ml.core.features, or None.
    user_content:    (n_users, v) csr, a user's declared tastes in the same columns as
                     ``item_content`` (e.g. skills, industries), or None.
    item_content:    (n_items, v) csr, an item's content terms (skills, industry, genres,
                     text tokens), or None.
    content_vocab:   names of the ``*_content`` columns, so reasons can name them.
    """

    user_ids: IdMap
    item_ids: IdMap
    matrix: sp.csr_matrix
    negatives: sp.csr_matrix | None = None
    user_features: np.ndarray | None = None
    item_features: np.ndarray | None = None
    user_content: sp.csr_matrix | None = None
    item_content: sp.csr_matrix | None = None
    content_vocab: list[str] | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)
