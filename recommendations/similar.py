"""Similar items and people like you (docs/api.md, "Marketplace"): the items of one item's type that
the serving models find most like it, with reasons.

A read: the serving set ranks the type's items by ``ml.core.similar`` (each component's item-to-item
similarity, standardised and blended with the hybrid weights in force), then the titles of the best and
the item's own row come in one statement; items closed or deleted since the models' snapshot are dropped
and the ranking reaches further down, as ``services._recommendable`` does for a user.

Whose weights: the weights tuned for the role that is recommended the item's type measure how much each
component says about that role's choices among such items (positions and startups: developers; startups
for an investor: investors; developers and investors: founders).
"""
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from ml.core import explain
from ml.core import similar as engine
from ml.core.data import EngineError
from ml.core.ranker import single_threaded_blas
from ml.core.registry import CONTENT
from ml.platform_data import ROLE_ITEM_TYPES, item_key, parse_item_key
from ml.serving_set import ServingSet
from profiles.models import ItemType, Position
from recsys_site import db
from recsys_site.exceptions import NotFound

from . import selectors
from .model_store import serving_models

CATALOG_TYPES = (ItemType.POSITION, ItemType.STARTUP)  # any authenticated user may ask
PEOPLE_TYPES = (ItemType.DEVELOPER, ItemType.INVESTOR)  # founders and staff
SHORTLIST_MARGIN = 10  # ranked beyond the limit, so that a few closed or deleted items cost no second pass
# The co-interaction reason's verb. Most of the interactions the models learn from on this platform are
# views (profiles/demo: about 4 views per apply, save or contact), so a shared crowd is first of all one
# that looked at both; naming an application would claim more than the models know.
CO_INTERACTION_KIND = "view"


@dataclass
class SimilarItem:
    item_type: str
    item_id: int
    title: str
    score: float
    reasons: list[str]


def similar_items(*, item_type: str, item_id: int, limit: int = 10,
                  viewer_role: str | None = None) -> list[SimilarItem]:
    """Up to ``limit`` items of ``item_type`` most similar to item ``item_id``, best first, never the item
    itself, only ones that may still be shown (open positions; rows that exist). NotFound, saying which,
    for an item that does not exist, a closed position, or one the serving models do not know.
    ``viewer_role``: the asker's role, which picks a startup's weights (see the module's docstring)."""
    models = serving_models()
    serving = models.serving
    key = item_key(item_type, item_id)
    row = serving.item_ids.index.get(key) if serving.ready and serving.item_ids is not None else None
    if row is None:
        _refuse_unknown(item_type, item_id, serving)
    weights = models.weights_for(weights_role(item_type=item_type, viewer_role=viewer_role))
    with single_threaded_blas():
        return _shortlist(serving, weights, item_type, item_id, row, limit)


def weights_role(*, item_type: str, viewer_role: str | None) -> str:
    """The role whose hybrid weights rate similarity among ``item_type`` items: the viewer's own when it
    is recommended such items, else the first role that is."""
    roles = [role for role, types in ROLE_ITEM_TYPES.items() if item_type in types]
    return viewer_role if viewer_role in roles else roles[0]


def _shortlist(serving: ServingSet, weights: dict[str, float], item_type: str, item_id: int, row: int,
               limit: int) -> list[SimilarItem]:
    key = item_key(item_type, item_id)
    allowed = serving.allowed([item_type]).copy()
    k = limit + SHORTLIST_MARGIN
    while True:
        try:
            found = engine.similar_items(serving.components, weights, row, np.flatnonzero(allowed), k)
        except EngineError:  # every component that would rate it was trained before it existed
            raise NotFound(_unknown_detail(item_type, item_id)) from None
        keys = [serving.item_numbering().ids[r] for r in found.items]
        titles, names = selectors.titles_and_anchor_names([key, *keys], [key])
        if key not in names:
            raise NotFound(missing_detail(item_type, item_id))
        if key not in titles:
            raise NotFound(_closed_detail(item_id))
        shown = [n for n, candidate in enumerate(keys) if candidate in titles][:limit]
        if len(shown) >= limit or len(found.items) < k:
            return _answer(serving, found, shown, keys, titles, row, names[key])
        allowed[[r for r, candidate in zip(found.items, keys, strict=True) if candidate not in titles]] = False
        k *= 4


def _answer(serving: ServingSet, found: engine.SimilarItems, shown: list[int], keys: list[str],
            titles: dict[str, str], row: int, anchor: str) -> list[SimilarItem]:
    content = serving.components.get(CONTENT) if CONTENT in found.weights else None
    shared = (engine.shared_terms(content, row, found.items[shown]) if content is not None
              else [{} for _ in shown])
    results = []
    for n, terms in zip(shown, shared, strict=True):
        item_type, item_id = parse_item_key(keys[n])
        results.append(SimilarItem(item_type, item_id, titles[keys[n]], round(float(found.scores[n]), 6),
                                   _reasons(found, n, terms, anchor)))
    return results


def _reasons(found: engine.SimilarItems, n: int, terms: dict[str, list[str]], anchor: str) -> list[str]:
    """The reasons of the components that rated the ``n``-th item, strongest contribution first: content
    names the terms the two items share; a component that learnt from interactions speaks only where it
    finds the item closer than most (a z-score above 0), and all of them say the same sentence once."""
    reasons: list[str] = []
    for name in found.by_contribution(n):
        if name == CONTENT:
            text = engine.shared_text(terms)
        else:
            text = (explain.co_interaction_text(anchor, CO_INTERACTION_KIND)
                    if found.z[name][n] > 0 and found.similarities[name][n] > 0 else None)
        if text is not None and text not in reasons:
            reasons.append(text)
    return reasons


# ---------------------------------------------------------------- refusals


def _refuse_unknown(item_type: str, item_id: int, serving: ServingSet) -> NoReturn:
    """Why an item outside the models' numbering has no similar items: it does not exist, or it is newer
    than the models (people are learnt only by training; a new position or startup is scored by content
    at once, so it is unknown only when no content model serves)."""
    if not selectors.titles_and_anchor_names([], [item_key(item_type, item_id)])[1]:
        raise NotFound(missing_detail(item_type, item_id))
    if not serving.ready:
        raise NotFound(f"No model serves yet, so the models know no {item_type}; train one "
                       "(POST /api/v1/models/train).")
    raise NotFound(_unknown_detail(item_type, item_id))


def missing_detail(item_type: str, item_id: int) -> str:
    return f"No {item_type} has {'user id' if item_type in PEOPLE_TYPES else 'id'} {item_id}."


def _unknown_detail(item_type: str, item_id: int) -> str:
    return (f"The models do not know {item_type} {item_id} yet (it is newer than their training); similar "
            "items come once the next training has seen it.")


def _closed_detail(item_id: int) -> str:
    status = db.rows(f"SELECT status FROM {db.table(Position)} WHERE id = %s", [item_id])
    said = f"is {status[0][0]}" if status else "is no longer open"
    return f"Position {item_id} {said}; similar positions are shown for open positions only."
