"""A serving set is built ready for requests: what scoring users needs from each model is made when the set is
built (in gunicorn's master, before the fork), not on the first request of each worker."""
from dataclasses import replace

import numpy as np
import pytest

from ml.core.collaborative import CollaborativeRecommender
from ml.core.content import ContentRecommender
from ml.core.data import IdMap
from ml.core.registry import COLLABORATIVE, CONTENT
from ml.serving_set import ServingSet, build_serving_set, without_rebuffs
from tests.ml_core.conftest import make_world


def test_a_built_set_holds_the_als_gram_inverse_and_every_users_history_length():
    world = make_world()
    world = replace(world, user_ids=IdMap([str(n) for n in range(world.n_users)]),
                    item_ids=IdMap([f"position:{n}" for n in range(world.n_items)]))
    loaded = {CONTENT: ContentRecommender().fit(world), COLLABORATIVE: CollaborativeRecommender(seed=0).fit(world)}
    serving = build_serving_set(loaded, {}, popularity={})
    collaborative, content = serving.components[COLLABORATIVE], serving.components[CONTENT]
    assert collaborative._inverse is not None and collaborative._inverse[0] is collaborative.item_factors
    assert not np.isnan(content._kept_lengths()).any()


def test_the_items_a_role_may_be_served_are_made_once_and_no_request_can_change_them():
    items = IdMap(["position:1", "position:2", "startup:3", "developer:4"])
    serving = ServingSet(item_ids=items, type_masks={"position": np.array([1, 1, 0, 0], bool),
                                                     "startup": np.array([0, 0, 1, 0], bool)},
                         servable=np.array([1, 0, 1, 1], bool))
    allowed = serving.allowed(("position", "startup"))
    np.testing.assert_array_equal(allowed, [True, False, True, False])  # the types' items, servable ones
    assert serving.allowed(["position", "startup"]) is allowed
    with pytest.raises(ValueError):
        allowed[3] = True  # a request narrows a copy
    rebuffed = without_rebuffs(allowed, np.array([0]))
    np.testing.assert_array_equal(rebuffed, [False, False, True, False])
    np.testing.assert_array_equal(serving.allowed(("position", "startup")), [True, False, True, False])
    np.testing.assert_array_equal(serving.with_market(None).allowed(("startup",)), [False, False, True, False])
