"""The components one process serves, made ready to rank: one numbering, item types, the content
vocabulary, retrieval indexes and item popularity. The API (``recommendations.model_store``) builds one
from the active versions; the served evaluation (``ml.evaluation``) from models it has just fitted, so
both rank through the same :class:`ml.core.ranker.Ranker` with the same candidates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml.core.base import Recommender, UserState
from ml.core.data import IdMap
from ml.core.features import ContentVocabulary, platform_item_terms
from ml.core.ranker import Ranker, align
from ml.core.registry import COLLABORATIVE, CONTENT, EASE, RP3BETA, TWO_TOWER
from ml.core.retrieval import Retrieval

from .platform_data import parse_item_key

# Whose item and user numbering the others are aligned to: the first of these that is loaded. Content
# first: it knows every item of its snapshot, interacted with or not.
REFERENCE_ORDER = (CONTENT, COLLABORATIVE, TWO_TOWER, EASE, RP3BETA)


@dataclass(frozen=True)
class ServingSet:
    components: dict[str, Recommender] = field(default_factory=dict)  # aligned to user_ids / item_ids
    unavailable: dict[str, str] = field(default_factory=dict)  # algorithm -> why it does not serve
    user_ids: IdMap | None = None
    item_ids: IdMap | None = None
    vocabulary: ContentVocabulary | None = None  # encodes a user's declared terms as at training
    type_masks: dict[str, np.ndarray] = field(default_factory=dict)  # item type -> bool per item row
    retrieval: Retrieval | None = None  # cluster indexes per item type, for catalogs too large to scan
    popularity: np.ndarray | None = None  # (n_items,) users who interacted with each item

    @property
    def ready(self) -> bool:
        """Something to rank with: at least one component (and so an item numbering)."""
        return bool(self.components)

    def allowed(self, item_types) -> np.ndarray:
        masks = [self.type_masks[t] for t in item_types if t in self.type_masks]
        return np.logical_or.reduce(masks) if masks else np.zeros(len(self.item_ids), dtype=bool)

    def ranker(self, weights: dict[str, float]) -> Ranker:
        return Ranker(self.components, weights, len(self.item_ids), popularity=self.popularity,
                      retrieval=self.retrieval, unavailable=self.unavailable)

    def user_state(self, user_id: int, history, negatives, terms: list[str], features: np.ndarray) -> UserState:
        """User ``user_id`` as they are now: their current interaction rows (in this set's item numbering),
        declared terms and dense features."""
        declared = None if self.vocabulary is None else self.vocabulary.transform([terms])
        return UserState(self.user_ids.index.get(str(user_id)), history, negatives, declared,
                         np.asarray(features, dtype=np.float32))


def build_serving_set(loaded: dict[str, Recommender], unavailable: dict[str, str], popularity: dict[str, int],
                      fresh_items: dict[str, dict] | None = None) -> ServingSet:
    """``loaded`` (algorithm -> fitted model, each from any snapshot) aligned to one numbering;
    ``popularity``: {item key: users who interacted with it}; ``fresh_items``: {item key: record} of the
    catalog items created or edited since training, which the content model scores at once (the other
    components give them their mean, a z-score of 0, until they are trained on them)."""
    loaded = dict(loaded)
    vocabulary = None
    if CONTENT in loaded:
        vocabulary = loaded[CONTENT].vocabulary()
        if fresh_items:
            keys = list(fresh_items)
            vectors = vocabulary.transform([platform_item_terms(fresh_items[key]) for key in keys])
            loaded[CONTENT] = loaded[CONTENT].with_items(keys, vectors)
    reference = next((loaded[name] for name in REFERENCE_ORDER if name in loaded), None)
    if reference is None:
        return ServingSet(unavailable=dict(unavailable))
    users, items = reference.user_ids, reference.item_ids
    item_types = np.asarray([parse_item_key(key)[0] for key in items.ids])
    components = {name: align(model, users, items) for name, model in loaded.items()}
    return ServingSet(
        components=components, unavailable=dict(unavailable), user_ids=users, item_ids=items,
        vocabulary=vocabulary,
        type_masks={item_type: item_types == item_type for item_type in np.unique(item_types)},
        retrieval=Retrieval(components, item_types),
        popularity=np.fromiter((popularity.get(key, 0) for key in items.ids), dtype=np.float32, count=len(items)),
    )
