"""The hybrid's fallback chain, exclusions, per-algorithm scores, reasons and weight tuning."""
import numpy as np
import pytest
import scipy.sparse as sp

from ml.core.base import Recommender
from ml.core.data import EngineError
from ml.core.hybrid import (
    PATH_ALL,
    PATH_COLD_START,
    PATH_NO_TWO_TOWER,
    HybridConfig,
    HybridRecommender,
    zscore,
)

from .conftest import group_of_item, make_world, own_items, small_two_tower


class BrokenTwoTower(Recommender):
    """Fits, then fails to score: the hybrid must serve without it."""

    name = "two_tower"

    def fit(self, data, *, progress=None):
        return self

    def score(self, user_rows):
        raise RuntimeError("GPU fell off the bus")

    def save(self, path):
        raise NotImplementedError

    @classmethod
    def load(cls, path):
        raise NotImplementedError


@pytest.fixture(scope="module")
def cold_world():
    """The checkerboard plus one user (the last) with no interactions but a declared group."""
    data = make_world()
    data.matrix = sp.csr_matrix(data.matrix)
    last = data.n_users - 1
    data.matrix.data[data.matrix.indptr[last] : data.matrix.indptr[last + 1]] = 0
    data.matrix.eliminate_zeros()
    return data


@pytest.fixture(scope="module")
def hybrid(cold_world):
    factories = {"two_tower": small_two_tower}
    return HybridRecommender(seed=0, factories=factories).fit(cold_world)


def test_known_user_takes_every_component(hybrid):
    result = hybrid.recommend_for(0, k=5)
    assert result.path == PATH_ALL
    assert set(result.components) == {"content_based", "collaborative", "two_tower"}
    assert all(len(scores) == 5 for scores in result.components.values())
    assert sum(result.weights.values()) == pytest.approx(1.0)
    assert all(group_of_item(i) == 0 for i in result.items)
    assert len(result.reasons) == 5 and all(result.reasons)


def test_user_without_interactions_falls_back_to_content(hybrid, cold_world):
    result = hybrid.recommend_for(cold_world.n_users - 1, k=5)
    assert result.path == PATH_COLD_START
    assert set(result.components) == {"content_based"}
    assert all(group_of_item(i) == 1 for i in result.items)


def test_failing_two_tower_falls_back_to_content_and_collaborative(cold_world):
    model = HybridRecommender(seed=0, factories={"two_tower": BrokenTwoTower}).fit(cold_world)
    result = model.recommend_for(0, k=5)
    assert result.path == PATH_NO_TWO_TOWER
    assert set(result.components) == {"content_based", "collaborative"}
    assert np.isfinite(model.score(np.arange(4))).all()


def test_two_tower_that_cannot_fit_is_reported_not_fatal(cold_world):
    def too_little_data():
        raise EngineError("the Two-Tower needs at least 500 interactions")

    model = HybridRecommender(seed=0, factories={"two_tower": too_little_data}).fit(cold_world)
    assert "two_tower" in model.unavailable
    assert model.recommend_for(0, k=3).path == PATH_NO_TWO_TOWER


def test_seen_and_dismissed_items_are_never_recommended(hybrid, cold_world):
    seen = cold_world.matrix[0].indices
    dismissed_item = np.setdiff1d(own_items(0), seen)[0]
    dismissed = sp.csr_matrix(([1.0], ([0], [dismissed_item])), shape=(1, cold_world.n_items))
    result = hybrid.recommend_for(0, k=cold_world.n_items, negatives=dismissed)
    assert not set(result.items) & set(seen)
    assert dismissed_item not in result.items


def test_new_interactions_change_recommendations_without_retraining(hybrid, cold_world):
    """The cold user starts liking the other group's items: the folded-in history follows them."""
    history = sp.csr_matrix((np.ones(6), ([0] * 6, own_items(0)[:6])), shape=(1, cold_world.n_items))
    result = hybrid.recommend_for(cold_world.n_users - 1, k=5, history=history)
    assert result.path != PATH_COLD_START
    assert not set(result.items) & set(own_items(0)[:6])


def test_brand_new_user_is_served_from_a_content_vector(hybrid, cold_world):
    result = hybrid.recommend_for(None, k=5, user_content=cold_world.user_content[1])
    assert result.path == PATH_COLD_START
    assert all(group_of_item(i) == 1 for i in result.items)


def test_tuned_weights_are_normalised_and_recorded(cold_world, tmp_path):
    factories = {"two_tower": BrokenTwoTower}
    model = HybridRecommender(HybridConfig(tune_weights=True), seed=0, factories=factories).fit(cold_world)
    assert sum(model.config.weights.values()) == pytest.approx(1.0)
    assert model.validation["ndcg"] > 0.5
    assert {"ease", "rp3beta"} <= set(model.config.weights)


def test_zscore_standardises_on_unseen_items_only():
    scores = np.asarray([[10.0, 1.0, 2.0, 3.0]])
    z = zscore(scores, np.asarray([[1, 0, 0, 0]]))
    np.testing.assert_allclose(z[0, 1:], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    np.testing.assert_allclose(zscore(np.ones((1, 3))), 0.0)
