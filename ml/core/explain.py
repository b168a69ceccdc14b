"""Why each component scored an item, in words a user can check against their own history.

Content explains itself (``ContentRecommender.explain``: the terms an item shares with the user). The
components that learn from interactions explain an item by its *anchor*: the item of the user's history
it is closest to in the component's own item space, since that closeness is what lifted its score —
- collaborative and two_tower: cosine of their item vectors (ALS item factors, the item tower's embeddings);
- ease and rp3beta: the item-item weight from the history item to the recommended one, which is that
  history item's share of the score.
The popular fallback is explained by its count. The caller names anchors (titles, and the user's own kind
of interaction with each); the sentences are made here so every client says the same thing.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .data import EngineError
from .ranker import AlignedComponent, Ranking
from .registry import COLLABORATIVE, EASE, RP3BETA, TWO_TOWER

# The attribute holding each anchored component's item space, in its own rows.
ITEM_VECTORS = {COLLABORATIVE: "item_factors", TWO_TOWER: "item_embeddings"}  # (n_items, d): cosine
ITEM_ITEM = {EASE: "weights", RP3BETA: "weights"}  # (n_items, n_items): weight from row to column
# Components whose reason says "people who did this also did that"; the Two-Tower's says "like that one".
CO_INTERACTION = (COLLABORATIVE, EASE, RP3BETA)

# The user's kind of interaction with an anchor, as a reason says it: (what they did to it, what others
# did with the recommended item in the same words).
KIND_PHRASES = {
    "apply": ("applied to", "applied here"),
    "save": ("saved", "saved this one"),
    "like": ("liked", "liked this one"),
    "view": ("viewed", "viewed this one"),
    "follow": ("followed", "followed this one"),
    "contact": ("contacted", "contacted this one"),
    "invest_interest": ("showed investment interest in", "showed interest here"),
    "accept": ("accepted", "accepted this one"),
}


# How content reasons read to a role whose declared terms are not only their own (the defaults,
# ``content.REASONS``, speak of the reader's own profile): a founder is matched on their skills and those
# their startups and open positions ask for, on their startups' industries and stages, and on the checks
# their raising rounds take (``ml.platform_data``'s founder record), so a founder's reasons say so, and
# count what the staff page's profile lists as "matched on".
CONTENT_WORDING: dict[str, dict[str, str]] = {
    "founder": {
        "skill": "Matches {matched} of the {declared} skills you and your startups list: {terms}",
        "industry": "In your startups' industry: {terms}",
        "stage": "Invests at your startups' stage: {terms}",
        "check": "Checks that fit your raising round: {terms}",
    },
}


def anchored(name: str) -> bool:
    """Whether component ``name`` is explained by an anchor in the user's history."""
    return name in ITEM_VECTORS or name in ITEM_ITEM


def anchors(component, history_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """(len(item_rows),) for each of ``item_rows``, the one of ``history_rows`` that ``component`` (a fitted
    model or an :class:`AlignedComponent`, rows in its reference numbering) links it to most strongly;
    -1 where no history item links to it positively (a weak or opposite link explains nothing).
    An item is never its own anchor (it may be in the history when seen items are not left out)."""
    history = np.unique(np.asarray(history_rows, dtype=np.int64))
    items = np.asarray(item_rows, dtype=np.int64)
    found = np.full(len(items), -1, dtype=np.int64)
    if not len(history) or not len(items):
        return found
    strength = link_strengths(component, history, items)  # (len(history), len(items))
    strength[history[:, None] == items[None, :]] = -np.inf
    best = np.argmax(strength, axis=0)
    linked = strength[best, np.arange(len(items))] > 0
    found[linked] = history[best[linked]]
    return found


def link_strengths(component, history_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """(len(history_rows), len(item_rows)) float64: how strongly ``component`` links each history item to
    each item; -inf where it does not know either (an item added since it was trained)."""
    model, history, items = _in_own_rows(component, history_rows, item_rows)
    if model.name in ITEM_ITEM:
        strength = _item_item(getattr(model, ITEM_ITEM[model.name]), np.maximum(history, 0), np.maximum(items, 0))
    elif model.name in ITEM_VECTORS:
        strength = _cosine(getattr(model, ITEM_VECTORS[model.name]), np.maximum(history, 0), np.maximum(items, 0))
    else:
        raise EngineError(f"{model.name} is not explained by anchors")
    strength[history < 0, :] = -np.inf
    strength[:, items < 0] = -np.inf
    return strength


def _in_own_rows(component, history_rows: np.ndarray, item_rows: np.ndarray):
    """(the fitted model, the history rows and item rows in its numbering, -1 where it lacks them): an
    aligned component's own arrays are read in place rather than translated whole for a few rows."""
    if isinstance(component, AlignedComponent):
        return component.model, component.own_item_rows(history_rows), component.own_item_rows(item_rows)
    return component, history_rows, item_rows


def _item_item(weights, history: np.ndarray, items: np.ndarray) -> np.ndarray:
    if sp.issparse(weights):
        return sp.csr_matrix(weights)[history][:, items].toarray().astype(np.float64)
    return np.asarray(weights[np.ix_(history, items)], dtype=np.float64)


def _cosine(vectors: np.ndarray, history: np.ndarray, items: np.ndarray) -> np.ndarray:
    return _unit(vectors[history]) @ _unit(vectors[items]).T


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def by_contribution(ranking: Ranking, n: int) -> list[str]:
    """The components that scored the ``n``-th item of ``ranking``, strongest contribution to its blended
    score (the component's weight times its z-score) first."""
    contribution = {name: weight * float(ranking.components[name][n]) for name, weight in ranking.weights.items()}
    return sorted(contribution, key=contribution.__getitem__, reverse=True)


# ---------------------------------------------------------------- the sentences


def anchored_text(name: str, anchor: str, kind: str) -> str:
    """Component ``name``'s reason for an item anchored on the history item titled ``anchor``, with which
    the user interacted by ``kind``."""
    return co_interaction_text(anchor, kind) if name in CO_INTERACTION else similar_text(anchor, kind)


def co_interaction_text(anchor: str, kind: str) -> str:
    did, did_here = KIND_PHRASES[kind]
    return f"People who {did} {anchor} also {did_here}"


def similar_text(anchor: str, kind: str) -> str:
    return f"Like {anchor}, which you {KIND_PHRASES[kind][0]}"


def popular_text(audience: str) -> str:
    """The popular fallback's reason; ``audience``: who the reader is among (e.g. "developers"). It names
    no period: the popularity it ranks by counts every positive interaction ever made."""
    return f"Popular with {audience}"


def two_sided_text(role: str, shared: dict[str, list[str]], limit: int = 3) -> str | None:
    """A reason that names both sides of a two-sided match, from the terms the other side's declared tastes
    share with the asker's side (``ContentRecommender.shared_terms`` of ``ReverseInterest.best_pair``):
    for a founder, "You need django; they list django and prefer fintech, your industry"; for a developer,
    "Its founders look for django, which you list and work in fintech, your industry". None when the pair
    shares no skill, industry or stage (a reason must say something the reader can check)."""
    skills, industries, stages = (", ".join(shared.get(namespace, [])[:limit]) for namespace in
                                  ("skill", "industry", "stage"))
    if role == "founder":
        theirs = [f"list {skills}" if skills else "", f"prefer {industries}, your industry" if industries else "",
                  f"invest at {stages}, your stage" if stages else ""]
        said = _joined(theirs)
        if not said:
            return None
        return f"You need {skills}; they {said}" if skills else f"They {said}"
    said = _joined([f"look for {skills}, which you list" if skills else "",
                    f"work in {industries}, your industry" if industries else ""])
    return f"Its founders {said}" if said else None


def answered_text(role: str) -> str:
    """The reason for a candidate whose side already said yes to the reader (``ml.serving_set.answered_by``):
    a founder's developer or investor applied, contacted, showed interest or accepted; a developer's
    position's founders contacted or accepted them."""
    if role == "founder":
        return "Already interested in you: they applied, got in touch or accepted"
    return "Its founders already got in touch with you"


def _joined(parts: list[str]) -> str:
    """The non-empty ``parts`` as a phrase: "a", "a and b", "a, b and c"."""
    parts = [part for part in parts if part]
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else ""
