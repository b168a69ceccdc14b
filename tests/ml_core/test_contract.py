"""One contract, every recommender: fit the checkerboard, rank own-group items first, round-trip to disk."""
from __future__ import annotations

import numpy as np
import pytest

from ml.core.base import Recommender
from ml.core.collaborative import (
    CollaborativeRecommender,
    EaseRecommender,
    PopularityRecommender,
    RP3BetaRecommender,
)
from ml.core.content import ContentRecommender
from ml.core.data import EngineError
from ml.core.hybrid import HybridConfig, HybridRecommender

from .conftest import group_of_item, group_of_user, small_two_tower


def small_hybrid(tune: bool = False) -> HybridRecommender:
    factories = {"two_tower": small_two_tower}
    return HybridRecommender(HybridConfig(tune_weights=tune), seed=0, factories=factories)


FACTORIES = {
    "content_based": ContentRecommender,
    "collaborative": lambda: CollaborativeRecommender(seed=0),
    "ease": EaseRecommender,
    "rp3beta": RP3BetaRecommender,
    "two_tower": small_two_tower,
    "hybrid": small_hybrid,
    "hybrid_tuned": lambda: small_hybrid(tune=True),
}


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def fitted(request, world) -> tuple[str, Recommender]:
    return request.param, FACTORIES[request.param]().fit(world)


def test_scores_every_item_for_every_user(fitted, world):
    _, model = fitted
    scores = model.score(np.arange(world.n_users))
    assert scores.shape == (world.n_users, world.n_items)
    assert np.isfinite(scores).all()


def test_recommends_unseen_items_of_the_users_own_group(fitted, world):
    _, model = fitted
    for user in range(world.n_users):
        seen = world.matrix[user].indices
        items, scores = model.recommend(user, 5, exclude=seen)
        assert len(items) == 5
        assert not set(items) & set(seen)
        assert all(group_of_item(i) == group_of_user(user) for i in items), (user, items)
        assert np.all(np.diff(scores) <= 0)


def test_save_then_load_gives_identical_scores(fitted, world, tmp_path):
    name, model = fitted
    model.save(tmp_path / name)
    loaded = type(model).load(tmp_path / name)
    rows = np.arange(world.n_users)
    np.testing.assert_allclose(loaded.score(rows), model.score(rows), rtol=1e-5, atol=1e-5)
    assert loaded.item_ids.ids == world.item_ids.ids


def test_rejects_a_user_row_it_never_saw(fitted, world):
    _, model = fitted
    with pytest.raises(EngineError):
        model.score(np.asarray([world.n_users]))


def test_popularity_ranks_by_interaction_count(world):
    model = PopularityRecommender().fit(world)
    counts = np.asarray(world.matrix.sum(axis=0)).ravel()
    items, _ = model.recommend(0, 3)
    assert sorted(counts[items].tolist(), reverse=True) == sorted(counts, reverse=True)[:3]
