"""Ranking metrics for top-K lists, and held-out evaluation of a fitted recommender.

Per user: ``ranked`` is the recommended item rows, best first; ``relevant`` the held-out items.
Definitions follow the offline harness: Precision@K divides by K, Recall@K by |relevant|, NDCG@K uses
binary gains and the ideal DCG of min(|relevant|, K) hits, MAP@K averages precision at each hit over
min(|relevant|, K), MRR is 1 / rank of the first hit within the list (0 without one).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .data import EngineError, InteractionData
from .index import recommend_all


def _hits(ranked: Sequence[int], relevant: set[int], k: int) -> list[int]:
    return [1 if item in relevant else 0 for item in list(ranked)[:k]]


def precision_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return sum(_hits(ranked, relevant, k)) / k


def recall_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return sum(_hits(ranked, relevant, k)) / len(relevant) if relevant else 0.0


def ndcg_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    if not relevant:
        return 0.0
    dcg = sum(hit / math.log2(pos + 2) for pos, hit in enumerate(_hits(ranked, relevant, k)))
    ideal = sum(1 / math.log2(pos + 2) for pos in range(min(len(relevant), k)))
    return dcg / ideal


def average_precision_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    if not relevant:
        return 0.0
    found, total = 0, 0.0
    for pos, hit in enumerate(_hits(ranked, relevant, k)):
        if hit:
            found += 1
            total += found / (pos + 1)
    return total / min(len(relevant), k)


def hit_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return 1.0 if any(_hits(ranked, relevant, k)) else 0.0


def reciprocal_rank(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return next((1 / (pos + 1) for pos, hit in enumerate(_hits(ranked, relevant, k)) if hit), 0.0)


def catalog_coverage(lists: Sequence[Sequence[int]], n_items: int) -> float:
    """Share of the catalog that appears in at least one list."""
    return len({i for ranked in lists for i in ranked if i >= 0}) / n_items if n_items else 0.0


def intra_list_diversity(lists: Sequence[Sequence[int]], item_vectors) -> float:
    """Mean pairwise cosine distance (1 - cosine) between the items of each list, averaged over lists."""
    vectors = item_vectors.toarray() if sp.issparse(item_vectors) else np.asarray(item_vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1.0, norms)
    values = []
    for ranked in lists:
        items = [i for i in ranked if i >= 0]
        if len(items) < 2:
            continue
        cosine = unit[items] @ unit[items].T
        n = len(items)
        values.append(1.0 - (cosine.sum() - np.trace(cosine)) / (n * (n - 1)))
    return float(np.mean(values)) if values else 0.0


def gini(counts) -> float:
    """The Gini coefficient of non-negative ``counts`` (e.g. recommendations per startup): 0 when all are
    equal, (n - 1) / n when one holds everything; 0 for an empty or all-zero population."""
    values = np.sort(np.asarray(counts, dtype=np.float64).ravel())
    n, total = len(values), values.sum() if len(values) else 0.0
    if n == 0 or total <= 0:
        return 0.0
    # mean absolute difference over twice the mean, by the sorted form: sum_i (2i - n - 1) x_i / (n sum x)
    return float(np.dot(2 * np.arange(1, n + 1) - n - 1, values) / (n * total))


def novelty(lists: Sequence[Sequence[int]], item_counts: np.ndarray, n_users: int) -> float:
    """Mean self-information -log2(share of users who interacted with the item) of recommended items."""
    share = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0) / max(n_users, 1)
    information = [-math.log2(min(share[i], 1.0)) for ranked in lists for i in ranked if i >= 0]
    return float(np.mean(information)) if information else 0.0


RANKING_METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": average_precision_at_k,
    "hit": hit_at_k,
    "mrr": reciprocal_rank,
}


def evaluate_lists(
    lists: Sequence[Sequence[int]],
    relevant: Sequence[set[int]],
    k: int,
    n_items: int,
    item_counts: np.ndarray | None = None,
    n_users: int | None = None,
    item_vectors=None,
) -> dict[str, float]:
    """Every metric averaged over the users with held-out items; beyond-accuracy ones where inputs allow."""
    pairs = [(list(r)[:k], rel) for r, rel in zip(lists, relevant, strict=True) if rel]
    if not pairs:
        raise EngineError("no user has held-out items to evaluate on")
    out = {name: float(np.mean([fn(r, rel, k) for r, rel in pairs])) for name, fn in RANKING_METRICS.items()}
    out["coverage"] = catalog_coverage([r for r, _ in pairs], n_items)
    if item_counts is not None:
        out["novelty"] = novelty([r for r, _ in pairs], item_counts, n_users or len(lists))
    if item_vectors is not None:
        out["diversity"] = intra_list_diversity([r for r, _ in pairs], item_vectors)
    out["users"] = len(pairs)
    out["k"] = k
    return out


def evaluate_recommender(model, train: InteractionData, heldout: sp.csr_matrix, k: int = 10) -> dict[str, float]:
    """Metrics of a model fitted on ``train`` against ``heldout`` (same shape), training items excluded."""
    heldout = sp.csr_matrix(heldout)
    users = np.flatnonzero(np.diff(heldout.indptr))
    exclude = train.matrix if train.negatives is None else train.matrix + abs(train.negatives)
    items, _ = recommend_all(model.score, users, k, sp.csr_matrix(exclude))
    relevant = [set(heldout.indices[heldout.indptr[u] : heldout.indptr[u + 1]]) for u in users]
    counts = np.asarray((train.matrix > 0).sum(axis=0)).ravel()
    return evaluate_lists(list(items), relevant, k, train.n_items, counts, train.n_users, train.item_content)


def heldout_ndcg(model, train: InteractionData, heldout: sp.csr_matrix, k: int = 10,
                 users: np.ndarray | None = None) -> float:
    """NDCG@k alone, the quick way, for choosing settings on validation data: over ``users`` (rows), by
    default every user with held-out items."""
    heldout = sp.csr_matrix(heldout)
    if users is None:
        users = np.flatnonzero(np.diff(heldout.indptr))
    items, _ = recommend_all(model.score, users, k, sp.csr_matrix(train.matrix))
    relevant = [set(heldout.indices[heldout.indptr[u] : heldout.indptr[u + 1]]) for u in users]
    return float(np.mean([ndcg_at_k(r, rel, k) for r, rel in zip(items, relevant, strict=True)]))
