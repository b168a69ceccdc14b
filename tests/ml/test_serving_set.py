"""A serving set is built ready for requests: what scoring users needs from each model is made when the set is
built (in gunicorn's master, before the fork), not on the first request of each worker."""
from dataclasses import replace

import numpy as np

from ml.core.collaborative import CollaborativeRecommender
from ml.core.content import ContentRecommender
from ml.core.data import IdMap
from ml.core.registry import COLLABORATIVE, CONTENT
from ml.serving_set import build_serving_set
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
