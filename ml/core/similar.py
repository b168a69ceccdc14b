"""Items similar to one item: each fitted component's item-to-item similarity, blended.

What each component knows of two items:
- content_based: cosine of their content vectors (skills, industries, words, ...);
- collaborative and two_tower: cosine of their item vectors (ALS item factors, the item tower's
  embeddings), as :mod:`ml.core.explain` anchors a reason;
- ease and rp3beta: the item-item weight from the item to the other one (how much having the first in
  a history scores the second).
These live on different scales (an EASE weight is a few hundredths where a cosine is a few tenths), so,
as the ranker does for a user, each component's similarities are standardised over the candidates
(z-scores) and averaged with the hybrid's weights over the components that know each candidate: an
item a component never saw (added since its training) has no opinion from it, not a penalty. The
popular prior is no similarity between two items and takes no part.

The caller gives rows in one numbering (a serving set's, aligned components welcome) and turns rows
back into rows of its own; nothing here knows a database.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .base import top_k
from .data import EngineError
from .explain import ITEM_ITEM, ITEM_VECTORS
from .features import TEXT_NAMESPACE
from .ranker import AlignedComponent
from .registry import CONTENT, DEFAULT_WEIGHTS

ITEM_SPACES = {CONTENT: "item_vectors", **ITEM_VECTORS}  # (n_items, d) item vectors: cosine
SIMILARITY_COMPONENTS = (*ITEM_SPACES, *ITEM_ITEM)
# Namespaces a content reason names, in this order; words only when nothing more telling is shared (two
# positions of one startup share many words of its description).
REASON_NAMESPACES = ("skill", "industry", "stage", "remote")
REASON_TERMS = 3


@dataclass
class SimilarItems:
    """One item's most similar items: rows best first, blended scores, each blended component's raw
    similarity (nan where it does not know the item) and z-score (0 there), and the normalised weights."""

    items: np.ndarray  # (k,) int64 item rows
    scores: np.ndarray  # (k,) float32 blended z-scores
    similarities: dict[str, np.ndarray]  # component -> (k,) float64
    z: dict[str, np.ndarray]  # component -> (k,) float32
    weights: dict[str, float]

    def by_contribution(self, n: int) -> list[str]:
        """The components that rated the ``n``-th item, strongest contribution (weight times z-score) first."""
        known = [name for name in self.weights if np.isfinite(self.similarities[name][n])]
        return sorted(known, key=lambda name: self.weights[name] * float(self.z[name][n]), reverse=True)


def similar_items(components: Mapping[str, object], weights: Mapping[str, float], item_row: int,
                  candidates: np.ndarray, k: int) -> SimilarItems:
    """The ``k`` rows of ``candidates`` most similar to ``item_row`` (never itself), by the components
    (name -> fitted model or :class:`AlignedComponent`, one numbering) that ``weights`` blends; EngineError
    when none of them knows ``item_row``."""
    if k < 1:
        raise EngineError(f"k must be >= 1, got {k}")
    rows = np.asarray(candidates, dtype=np.int64)
    rows = rows[rows != item_row]
    if not len(rows):
        return SimilarItems(rows, np.empty(0, np.float32), {}, {}, {})
    asked = blended_components(components, weights)
    raw = {}
    for name in asked:
        values = similarities(components[name], item_row, rows)
        if np.isfinite(values).any():  # a component that does not know the item has no opinion of its likes
            raw[name] = values
    if not raw:
        raise EngineError(f"no similarity component knows item row {item_row}")
    total = sum(asked[name] for name in raw)
    applied = {name: asked[name] / total for name in raw}
    z = {name: _standardised(values) for name, values in raw.items()}
    chosen, scores = top_k(_blend(applied, z, raw), k)
    return SimilarItems(rows[chosen], scores, {n: v[chosen] for n, v in raw.items()},
                        {n: v[chosen] for n, v in z.items()}, applied)


def blended_components(components: Mapping[str, object], weights: Mapping[str, float]) -> dict[str, float]:
    """{component: weight} of the similarity components to blend: those ``weights`` gives weight that
    serve; else, as the ranker falls back, the default weights' that serve; else every one, alike."""
    present = [name for name in SIMILARITY_COMPONENTS if name in components]
    for candidate in (weights, DEFAULT_WEIGHTS, dict.fromkeys(present, 1.0)):
        chosen = {name: float(w) for name, w in candidate.items() if w > 0 and name in present}
        if chosen:
            return chosen
    return {}


def similarities(component, item_row: int, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) float64: how similar ``component`` finds each of ``rows`` to ``item_row``; nan where
    it does not know one of them (all nan when it does not know ``item_row``)."""
    model, (own_item,), own_rows = _in_own_rows(component, np.asarray([item_row]), np.asarray(rows, dtype=np.int64))
    out = np.full(len(own_rows), np.nan)
    known = own_rows >= 0
    if own_item < 0 or not known.any():
        return out
    if model.name in ITEM_ITEM:
        out[known] = _weights_from(getattr(model, ITEM_ITEM[model.name]), int(own_item), own_rows[known])
    elif model.name in ITEM_SPACES:
        out[known] = _cosine(getattr(model, ITEM_SPACES[model.name]), int(own_item), own_rows[known])
    else:
        raise EngineError(f"{model.name} has no item-to-item similarity")
    return out


def _in_own_rows(component, item_rows: np.ndarray, rows: np.ndarray):
    """(the fitted model, ``item_rows`` and ``rows`` in its numbering, -1 where it lacks them)."""
    if isinstance(component, AlignedComponent):
        return component.model, component.own_item_rows(item_rows), component.own_item_rows(rows)
    n_items = len(component.item_ids)
    return component, np.where(item_rows < n_items, item_rows, -1), np.where(rows < n_items, rows, -1)


def _weights_from(weights, item: int, rows: np.ndarray) -> np.ndarray:
    """The item-item weights from ``item`` to ``rows``: one row of the matrix, never the whole of it."""
    if sp.issparse(weights):
        return sp.csr_matrix(weights)[item].toarray()[0][rows].astype(np.float64)
    return np.asarray(weights[item, rows], dtype=np.float64)


def _cosine(vectors, item: int, rows: np.ndarray) -> np.ndarray:
    if sp.issparse(vectors):
        vectors = sp.csr_matrix(vectors)
        dots = (vectors[rows] @ vectors[item].T).toarray().ravel()
        norms = np.sqrt(np.asarray(vectors[rows].multiply(vectors[rows]).sum(axis=1)).ravel())
        own = float(np.sqrt(vectors[item].multiply(vectors[item]).sum()))
    else:
        vectors = np.asarray(vectors, dtype=np.float64)
        dots = vectors[rows] @ vectors[item]
        norms, own = np.linalg.norm(vectors[rows], axis=1), float(np.linalg.norm(vectors[item]))
    denominator = norms * own
    return np.where(denominator > 0, dots / np.where(denominator > 0, denominator, 1.0), 0.0)


def _standardised(values: np.ndarray) -> np.ndarray:
    """z-scores over the known values; 0 (no opinion) where unknown."""
    known = np.isfinite(values)
    mean, std = values[known].mean(), values[known].std()
    z = np.zeros(len(values), dtype=np.float32)
    z[known] = (values[known] - mean) / (std if std > 0 else 1.0)
    return z


def _blend(weights: dict[str, float], z: dict[str, np.ndarray], raw: dict[str, np.ndarray]) -> np.ndarray:
    """The weighted mean of the z-scores of the components that know each candidate (Ranker._blend)."""
    blended = sum(w * z[name] for name, w in weights.items())
    opinions = sum(w * np.isfinite(raw[name]) for name, w in weights.items())
    return (blended / np.maximum(opinions, 1e-6)).astype(np.float32)


# ---------------------------------------------------------------- reasons


def shared_terms(content, item_row: int, rows: np.ndarray) -> list[dict[str, list[str]]]:
    """Per row of ``rows``, the content terms it shares with ``item_row``, by namespace (values sorted):
    ``{"skill": ["django", "python"], "industry": ["fintech"]}``. ``content``: the content model."""
    vectors = sp.csr_matrix(content.item_vectors)
    if not 0 <= item_row < vectors.shape[0]:
        return [{} for _ in rows]
    own = set(vectors.indices[vectors.indptr[item_row]:vectors.indptr[item_row + 1]].tolist())
    out = []
    for row in np.asarray(rows, dtype=np.int64):
        terms = vectors.indices[vectors.indptr[row]:vectors.indptr[row + 1]]
        grouped: dict[str, list[str]] = defaultdict(list)
        for column in terms.tolist():
            if column in own:
                namespace, _, value = content.vocab[column].partition(":")
                grouped[namespace].append(value)
        out.append({namespace: sorted(values) for namespace, values in grouped.items()})
    return out


def shared_text(shared: dict[str, list[str]]) -> str | None:
    """The content reason for what two items share ("Shares django, python; industry: fintech"); None
    when they share nothing worth naming. Skills go unlabelled: they are what most items are chosen by."""
    parts = [_listing(shared[ns]) if ns == "skill" else f"{ns}: {_listing(shared[ns])}"
             for ns in REASON_NAMESPACES if shared.get(ns)]
    if not parts and shared.get(TEXT_NAMESPACE):
        parts = [_listing(shared[TEXT_NAMESPACE])]
    return f"Shares {'; '.join(parts)}" if parts else None


def _listing(values: list[str]) -> str:
    shown = ", ".join(values[:REASON_TERMS])
    return f"{shown}, ..." if len(values) > REASON_TERMS else shown
