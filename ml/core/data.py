"""The engine's input: id maps and the interaction matrix, plus aligned feature arrays.

Everything here is plain numpy / scipy. Outside ids (database primary keys, CSV ids) are
translated to dense row indices by :class:`IdMap`; the maps are saved with every model.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import scipy.sparse as sp

T = TypeVar("T")


class EngineError(ValueError):
    """Bad input to the engine: empty data, unknown user, NaN feature, too little data."""


def fitted(value: T | None, model: str) -> T:
    """A model's fitted state (``None`` until ``fit`` or ``load`` sets it): ``value``, or EngineError saying
    that ``model`` is not fitted."""
    if value is None:
        raise EngineError(f"{model} is not fitted")
    return value


# Positive weight of each interaction kind; ``dismiss`` is negative evidence and goes to
# ``InteractionData.negatives`` instead. Stronger commitments (apply, invest) weigh more than a view. An
# ``accept`` (the target of a contact or application accepting it) is the accepter's interest in the one who
# asked, as strong as a contact.
KIND_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "like": 2.0,
    "save": 2.0,
    "follow": 2.0,
    "contact": 3.0,
    "apply": 4.0,
    "invest_interest": 4.0,
    "accept": 3.0,
}
NEGATIVE_KINDS: dict[str, float] = {"dismiss": 1.0}


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

    def validate(self) -> InteractionData:
        """Raise EngineError on shapes that disagree, NaN features or an empty matrix; return self."""
        shape = (self.n_users, self.n_items)
        if self.n_users == 0 or self.n_items == 0:
            raise EngineError("no users or no items: nothing to learn from")
        _check_shape("matrix", self.matrix, shape)
        if self.matrix.nnz == 0:
            raise EngineError("the interaction matrix is empty: nothing to learn from")
        if self.negatives is not None:
            _check_shape("negatives", self.negatives, shape)
        for name, array, rows in (
            ("user_features", self.user_features, self.n_users),
            ("item_features", self.item_features, self.n_items),
            ("user_content", self.user_content, self.n_users),
            ("item_content", self.item_content, self.n_items),
        ):
            _check_array(name, array, rows)
        vocab_size = None if self.item_content is None else self.item_content.shape[1]
        if self.content_vocab is not None and vocab_size is not None and len(self.content_vocab) != vocab_size:
            raise EngineError("content_vocab and item_content disagree on the number of terms")
        if self.user_content is not None and vocab_size is not None and self.user_content.shape[1] != vocab_size:
            raise EngineError("user_content and item_content must share one vocabulary")
        return self

    def with_matrix(self, matrix: sp.csr_matrix) -> InteractionData:
        """The same users, items and features with other interactions (e.g. a training split)."""
        return dataclasses.replace(self, matrix=sp.csr_matrix(matrix, dtype=np.float32))

    def with_users(self, rows: np.ndarray) -> InteractionData:
        """Only the users ``rows`` (in that order), with every item: their interactions, features and terms."""
        rows = np.asarray(rows, dtype=np.int64)

        def taken(array):
            return None if array is None else array[rows]

        return dataclasses.replace(
            self, user_ids=IdMap([self.user_ids.ids[row] for row in rows.tolist()]), matrix=self.matrix[rows],
            negatives=taken(self.negatives), user_features=taken(self.user_features),
            user_content=taken(self.user_content))


    def with_items(self, rows: np.ndarray) -> InteractionData:
        """Only the items ``rows`` (in that order), with every user: their interactions, features and content."""
        rows = np.asarray(rows, dtype=np.int64)

        def taken(array):
            return None if array is None else array[rows]

        return dataclasses.replace(
            self, item_ids=IdMap([self.item_ids.ids[row] for row in rows.tolist()]), matrix=self.matrix[:, rows],
            negatives=None if self.negatives is None else self.negatives[:, rows],
            item_features=taken(self.item_features), item_content=taken(self.item_content))


def _check_shape(name: str, matrix, shape: tuple[int, int]) -> None:
    if matrix.shape != shape:
        raise EngineError(f"{name} has shape {matrix.shape}, expected {shape} (users x items)")


def _check_array(name: str, array, rows: int) -> None:
    if array is None:
        return
    if array.shape[0] != rows:
        raise EngineError(f"{name} has {array.shape[0]} rows, expected {rows}")
    values = array.data if sp.issparse(array) else np.asarray(array)
    if not np.all(np.isfinite(values)):
        raise EngineError(f"{name} contains NaN or infinite values")


def as_row(row, width: int, name: str = "row") -> sp.csr_matrix:
    """One user's row as (1, width) csr float32, from a csr row, a dense vector or None (an empty row)."""
    if row is None:
        return sp.csr_matrix((1, width), dtype=np.float32)
    if not (sp.isspmatrix_csr(row) and row.dtype == np.float32):  # serving's rows already are: no new matrix
        row = sp.csr_matrix(row, dtype=np.float32)
    if row.shape != (1, width):
        raise EngineError(f"{name} must have shape (1, {width}), got {row.shape}")
    if not np.all(np.isfinite(row.data)):
        raise EngineError(f"{name} contains NaN or infinite values")
    return row


@dataclass(frozen=True)
class Events:
    """Interaction events as three aligned arrays: each event's user row, item row and kind (an index into
    ``kinds``). Ten million events take 90 MB so, where as Python tuples they took over a gigabyte; the
    time-based splits select from them with masks. Iterating gives (user row, item row, kind) tuples."""

    users: np.ndarray  # (n,) int32
    items: np.ndarray  # (n,) int32
    codes: np.ndarray  # (n,) int8, each an index into kinds
    kinds: tuple[str, ...]

    @classmethod
    def of(cls, triples: Iterable[tuple[int, int, str]]) -> Events:
        """The events of (user row, item row, kind) tuples."""
        triples = list(triples)
        kinds = tuple(sorted({kind for _, _, kind in triples}))
        code = {kind: n for n, kind in enumerate(kinds)}
        n = len(triples)
        return cls(np.fromiter((user for user, _, _ in triples), np.int32, n),
                   np.fromiter((item for _, item, _ in triples), np.int32, n),
                   np.fromiter((code[kind] for _, _, kind in triples), np.int8, n), kinds)

    def __len__(self) -> int:
        return len(self.users)

    def __iter__(self):
        kinds = self.kinds
        return ((user, item, kinds[code]) for user, item, code in
                zip(self.users.tolist(), self.items.tolist(), self.codes.tolist(), strict=True))

    def take(self, which: np.ndarray) -> Events:
        """The events a boolean mask (or an index array) picks, in their order."""
        return Events(self.users[which], self.items[which], self.codes[which], self.kinds)

    def of_kinds(self, kinds: Iterable[str]) -> np.ndarray:
        """(n,) True where the event's kind is one of ``kinds``."""
        wanted = set(kinds)
        return np.isin(self.codes, [n for n, kind in enumerate(self.kinds) if kind in wanted])

    def present_kinds(self) -> list[str]:
        return [self.kinds[code] for code in np.flatnonzero(np.bincount(self.codes, minlength=len(self.kinds)))]

    def latest_of_each_user(self, fraction: float) -> np.ndarray:
        """(n,) True at each user's latest ``fraction`` of their events (at least one of every user who has
        any), each user's events being in the order they happened."""
        order = np.argsort(self.users, kind="stable")  # each user's events together, still in time order
        users = self.users[order]
        counts = np.bincount(users)
        first = np.cumsum(counts) - counts
        held = np.maximum(1, (fraction * counts).astype(np.int64))
        latest = np.arange(len(users)) - first[users] >= counts[users] - held[users]
        mask = np.empty(len(users), dtype=bool)
        mask[order] = latest
        return mask


def interaction_matrices(
    events: Events | Iterable[tuple[int, int, str]],
    n_users: int,
    n_items: int,
    weights: dict[str, float] | None = None,
    negative_kinds: dict[str, float] | None = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(matrix, negatives) from events (or (user_row, item_row, kind) tuples); repeated events add up."""
    weights = KIND_WEIGHTS if weights is None else weights
    negative_kinds = NEGATIVE_KINDS if negative_kinds is None else negative_kinds
    events = events if isinstance(events, Events) else Events.of(events)
    for kind in events.present_kinds():
        if kind not in weights and kind not in negative_kinds:
            raise EngineError(f"unknown interaction kind {kind!r}; known: {sorted(weights) + sorted(negative_kinds)}")

    def cells(weight_of: dict[str, float]) -> sp.csr_matrix:
        chosen = events.take(events.of_kinds(weight_of))
        weight = np.array([weight_of.get(kind, 0.0) for kind in events.kinds], dtype=np.float64)
        return csr_of_cells(chosen.users, chosen.items, weight[chosen.codes], n_users, n_items)

    return cells(weights), cells(negative_kinds)


def csr_of_cells(rows, cols, values, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """The (n_rows, n_cols) float32 matrix of the cells (rows[k], cols[k]) = values[k], repeated cells
    added up. Built from the sorted cell keys directly: serving makes a few such rows per request, and
    scipy's way round through a COO matrix costs several times as much."""
    keys = np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64)
    cells, position = np.unique(keys, return_inverse=True)
    data = np.bincount(position, weights=np.asarray(values, dtype=np.float64), minlength=len(cells))
    indptr = np.searchsorted(cells, np.arange(n_rows + 1, dtype=np.int64) * n_cols)
    return sp.csr_matrix((data.astype(np.float32), (cells % max(n_cols, 1)).astype(np.int32), indptr),
                         shape=(n_rows, n_cols))


def cells_of(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each stored value of ``matrix``, in storage order."""
    return np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr)), matrix.indices


def holdout_split(
    matrix: sp.csr_matrix, fraction: float = 0.2, seed: int = 0, min_items: int = 5
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(train, heldout): a random ``fraction`` of each user's items held out.

    Users with fewer than ``min_items`` items keep them all in train, as the offline harness does,
    so validation carved from a training file looks like the test split carved from the whole.
    """
    matrix = sp.csr_matrix(matrix)
    rng = np.random.default_rng(seed)
    keep = np.ones(matrix.nnz, dtype=bool)
    for user in range(matrix.shape[0]):
        start, end = matrix.indptr[user], matrix.indptr[user + 1]
        n = end - start
        if n < min_items:
            continue
        n_out = max(1, int(round(n * fraction)))
        keep[start + rng.choice(n, size=n_out, replace=False)] = False
    return _mask(matrix, keep), _mask(matrix, ~keep)


def _mask(matrix: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    coo = matrix.tocoo()
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape, dtype=np.float32)


def fingerprint(data: InteractionData) -> str:
    """A short hash of the ids and interactions: equal fingerprints mean nothing changed."""
    digest = hashlib.sha256()
    for ids in (data.user_ids.ids, data.item_ids.ids):
        digest.update("\x1f".join(ids).encode())
    for matrix in (data.matrix, data.negatives):
        if matrix is not None:
            csr = sp.csr_matrix(matrix)
            csr.sort_indices()
            for part in (csr.indptr, csr.indices, csr.data.astype(np.float32)):
                digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]


def unit_rows(matrix) -> sp.csr_matrix:
    """``matrix`` (csr float32) with every nonzero row scaled to unit length. Works on the nonzeros
    directly: serving normalises one user's row per request, where scipy's diagonal product costs 0.6 ms."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    row_of = cells_of(matrix)[0]
    matrix.data /= row_lengths(matrix, row_of)[row_of].astype(np.float32)
    return matrix


def row_lengths(matrix: sp.csr_matrix, row_of: np.ndarray | None = None) -> np.ndarray:
    """(n_rows,) float64 each row's Euclidean length, 1 for an empty row (so dividing by it leaves it empty);
    ``row_of``: the row of each stored value (``cells_of``), where the caller has it already."""
    row_of = cells_of(matrix)[0] if row_of is None else row_of
    norms = np.sqrt(np.bincount(row_of, weights=np.square(matrix.data, dtype=np.float64), minlength=matrix.shape[0]))
    norms[norms == 0] = 1.0
    return norms
