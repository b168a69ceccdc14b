"""One contract, every recommender: fit the checkerboard, rank own-group items first (from the fitted rows
and from the user's current rows, as serving asks), round-trip to disk."""
from __future__ import annotations

import numpy as np
import pytest

from ml.core.base import Recommender, UserState
from ml.core.collaborative import (
    CollaborativeRecommender,
    EaseRecommender,
    PopularityRecommender,
    RP3BetaRecommender,
)
from ml.core.content import ContentRecommender
from ml.core.data import EngineError
from ml.core.registry import COMPONENTS, load_component

from .conftest import group_of_item, group_of_user, small_two_tower

FACTORIES = {
    "content_based": ContentRecommender,
    "collaborative": lambda: CollaborativeRecommender(seed=0),
    "ease": EaseRecommender,
    "rp3beta": RP3BetaRecommender,
    "two_tower": small_two_tower,
}


def test_every_registered_component_but_popularity_is_under_contract():
    assert set(COMPONENTS) - {"popularity"} == set(FACTORIES)


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


def test_scores_a_user_from_their_current_rows_as_from_the_fitted_ones(fitted, world):
    _, model = fitted
    for user in range(0, world.n_users, 7):
        state = UserState(user, world.matrix[user], None, world.user_content[user], world.user_features[user])
        scores = model.user_scores(state)
        every = scores.at(None)
        assert every.shape == (world.n_items,) and np.isfinite(every).all()
        np.testing.assert_allclose(scores.at(np.asarray([3, 40])), every[[3, 40]], rtol=1e-5, atol=1e-6)
        unseen = np.setdiff1d(np.arange(world.n_items), world.matrix[user].indices)
        best = unseen[np.argsort(-every[unseen])[:5]]
        assert all(group_of_item(i) == group_of_user(user) for i in best), (user, best)


def test_a_user_the_model_never_saw_is_scored_from_their_rows(fitted, world):
    name, model = fitted
    user = 1
    scores = model.user_scores(UserState(None, world.matrix[user], None, world.user_content[user],
                                          world.user_features[user])).at(None)
    unseen = np.setdiff1d(np.arange(world.n_items), world.matrix[user].indices)
    best = unseen[np.argsort(-scores[unseen])[:5]]
    assert all(group_of_item(i) == group_of_user(user) for i in best), (name, best)


def test_save_then_load_gives_identical_scores(fitted, world, tmp_path):
    name, model = fitted
    model.save(tmp_path / name)
    loaded = load_component(tmp_path / name)
    assert type(loaded) is type(model)
    rows = np.arange(world.n_users)
    np.testing.assert_allclose(loaded.score(rows), model.score(rows), rtol=1e-5, atol=1e-5)
    state = UserState(0, world.matrix[0], None, world.user_content[0])
    np.testing.assert_allclose(loaded.user_scores(state).at(None), model.user_scores(state).at(None), rtol=1e-5,
                               atol=1e-5)
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
