"""Diversity and exposure at request time: a ranked list re-ranked by maximal marginal relevance (MMR),
with at most so many items of one group (a startup and its positions).

Pure numpy: :class:`ml.core.ranker.Ranker` calls it on its blended candidates, so the API and the served
evaluation re-rank the same way.

MMR (Carbonell and Goldstein, 1998) picks, one at a time, the candidate that maximises
``(1 - diversity) * relevance - diversity * max cosine similarity to the items already picked``, with
relevance the blended score min-max scaled to [0, 1] over the pool (z-scores and cosines then weigh on
comparable scales). ``diversity`` 0 is the ranking by relevance; 1 picks the most relevant first, then each
time the item least like those already picked.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import top_k
from .data import EngineError

# Chosen by measurement on the demo world (README, "The engine"): served NDCG@10 within 2% of the plain
# ranking, coverage and intra-list diversity up. 0.2 was until the demo world's accepts and the two-sided
# ranking: then it cost 3.2% (developers 4.9%), 0.1 costs 1.4%.
DEFAULT_DIVERSITY = 0.1
DEFAULT_MAX_PER_STARTUP: int | None = None  # no cap unless a request asks for one
# MMR chooses the top k among the best max(POOL_FACTOR * k, MIN_POOL) candidates: room to trade a little
# relevance for variety, at a bounded cost per request (k picks over the pool). MIN_POOL makes the pool the
# same for every k up to a third of it, and MMR's picks from one pool are a prefix of each other: the top 10
# the evaluation ranks (k = 10) are the top 10 the API shows of its k = limit + a margin.
POOL_FACTOR = 3
MIN_POOL = 100
NO_GROUP = -1  # an item that belongs to no group (a person) is never capped


def within_cap(groups: np.ndarray, max_per_group: int) -> np.ndarray:
    """Positions, in order, of the items of ``groups`` (their group ids, best item first) kept when each
    group keeps only its first ``max_per_group`` items; NO_GROUP items are all kept."""
    if max_per_group < 1:
        raise EngineError(f"max_per_group must be >= 1, got {max_per_group}")
    groups = np.asarray(groups, dtype=np.int64)
    order = np.argsort(groups, kind="stable")  # each group's items together, still best first
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    rank_in_group = np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    keep = np.empty(len(groups), dtype=bool)
    keep[order] = (rank_in_group < max_per_group) | (sorted_groups == NO_GROUP)
    return np.flatnonzero(keep)


def mmr(relevance: np.ndarray, vectors, k: int, diversity: float) -> np.ndarray:
    """Positions of the ``k`` items (of ``relevance``, (n,)) MMR picks, in the order picked.

    ``vectors``: (n, d) the items' embeddings, dense or sparse, or a tuple of such (several embeddings:
    their cosine similarities averaged; a zero vector is like nothing); ``diversity`` in [0, 1]. Ties go
    to the earlier item, so diversity 0 keeps the given order of equal scores.
    """
    if not 0.0 <= diversity <= 1.0:
        raise EngineError(f"diversity must be within [0, 1], got {diversity}")
    relevance = np.asarray(relevance, dtype=np.float64)
    n = len(relevance)
    k = min(k, n)
    if k < 1:
        return np.empty(0, dtype=np.int64)
    if diversity == 0.0:
        return np.argsort(-relevance, kind="stable")[:k]
    spread = relevance.max() - relevance.min()
    scaled = (relevance - relevance.min()) / spread if spread > 0 else np.zeros(n)
    similarity = cosine_similarities(vectors)  # (n, n)
    closest = np.full(n, -np.inf)  # each item's greatest similarity to those picked; none picked yet
    free = np.ones(n, dtype=bool)
    picked = []
    for _ in range(k):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        value = np.where(free, (1.0 - diversity) * scaled - diversity * penalty, -np.inf)
        best = int(np.argmax(value))  # the first of equal values
        picked.append(best)
        free[best] = False
        closest = np.maximum(closest, similarity[best])
    return np.asarray(picked, dtype=np.int64)


def cosine_similarities(vectors) -> np.ndarray:
    """(n, n) cosine similarity of the rows of ``vectors`` (dense or sparse; 0 for a zero row), or the
    mean of each one's of a tuple of them."""
    if isinstance(vectors, tuple):
        return np.asarray(sum(cosine_similarities(part) for part in vectors) / len(vectors))
    # one product, normalised after: the norms are the Gram matrix's diagonal (a request's hot path)
    gram = (vectors @ vectors.T).toarray() if sp.issparse(vectors) else vectors @ vectors.T
    gram = np.asarray(gram, dtype=np.float64)
    norms = np.sqrt(np.maximum(np.diag(gram), 0.0))
    norms[norms == 0] = 1.0
    return gram / norms[:, None] / norms[None, :]


def pool_size(k: int) -> int:
    return max(POOL_FACTOR * k, MIN_POOL)


def diversified(relevance: np.ndarray, groups: np.ndarray | None, vectors_of, k: int, diversity: float,
                max_per_group: int | None) -> np.ndarray:
    """Positions of the top ``k`` of candidates with blended ``relevance`` (n,), re-ranked: at most
    ``max_per_group`` per group of ``groups`` (n,) (None: no cap), then MMR with ``diversity`` among the
    best ``pool_size(k)`` of those left. ``vectors_of(positions)`` gives the embeddings of those
    candidates only: a large catalog's vectors are never gathered whole."""
    capped = max_per_group is not None and groups is not None
    relevance = np.asarray(relevance, dtype=np.float32)
    # best first, non-finite scores (items no component may serve) left out, as top_k leaves them out
    order, _ = top_k(relevance, len(relevance) if capped else pool_size(k))
    if max_per_group is not None and groups is not None:  # capped
        order = order[within_cap(np.asarray(groups)[order], max_per_group)]
    if diversity == 0.0:
        return order[:k]
    pool = order[:pool_size(k)]
    return pool[mmr(relevance[pool], vectors_of(pool), k, diversity)]
