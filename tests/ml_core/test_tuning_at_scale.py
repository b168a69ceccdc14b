"""Tuning and batch scoring bounded for big data: settings compared on a sample of users (then the chosen one
fitted on all), at most VALIDATION_USERS scoring each, and score blocks bounded by BATCH_CELLS."""
import numpy as np
import scipy.sparse as sp

from ml.core import index, tuning
from ml.core.collaborative import PopularityRecommender
from ml.core.content import ContentConfig, ContentRecommender
from ml.core.data import holdout_split
from tests.ml_core.conftest import make_world


def test_with_users_keeps_each_users_rows_together():
    data = make_world(n_users=20)
    rows = np.array([7, 2, 15])
    part = data.with_users(rows)
    assert part.user_ids.ids == ["u7", "u2", "u15"] and part.item_ids == data.item_ids
    assert (part.matrix != data.matrix[rows]).nnz == 0
    assert (part.user_content != data.user_content[rows]).nnz == 0
    np.testing.assert_array_equal(part.user_features, data.user_features[rows])
    part.validate()


class Recording(ContentRecommender):
    """Content that remembers how many users each fit saw."""

    fits: list[tuple[float, int]] = []

    def fit(self, data, *, progress=None):
        Recording.fits.append((self.config.popularity_weight, data.n_users))
        return super().fit(data, progress=progress)


def test_settings_are_compared_on_a_sample_and_the_best_is_fitted_on_the_whole_fold(monkeypatch):
    data = make_world(n_users=120)
    train, heldout = holdout_split(data.matrix, 0.2, seed=1, min_items=3)
    fold = data.with_matrix(train)
    monkeypatch.setattr(tuning, "SETTING_FIT_USERS", 40)
    Recording.fits = []
    makers = [lambda w=w: Recording(ContentConfig(popularity_weight=w)) for w in (0.0, 4.0)]
    make, model, ndcg = tuning.select_on_validation(makers, fold, heldout, k=10)
    assert Recording.fits[:2] == [(0.0, 40), (4.0, 40)]  # the search, on the sample
    assert Recording.fits[2] == (make().config.popularity_weight, 120)  # the choice, on everyone
    assert model.user_ids == fold.user_ids and 0.0 < ndcg <= 1.0


def test_a_fold_within_the_limit_is_searched_whole(monkeypatch):
    data = make_world(n_users=60)
    train, heldout = holdout_split(data.matrix, 0.2, seed=1, min_items=3)
    Recording.fits = []
    makers = [lambda w=w: Recording(ContentConfig(popularity_weight=w)) for w in (0.0, 4.0)]
    tuning.select_on_validation(makers, data.with_matrix(train), heldout, k=10)
    assert Recording.fits == [(0.0, 60), (4.0, 60)]  # no refit: the search's model is the fold's


def test_the_sample_holds_the_users_with_held_out_items_first():
    heldout = sp.csr_matrix(([1.0] * 5, ([3, 8, 9, 14, 20], [0, 1, 2, 0, 1])), shape=(30, 3))
    sample = tuning._fold_sample(heldout, 7)
    assert len(sample) == 7 and list(sample) == sorted(sample)
    assert {3, 8, 9, 14, 20} <= set(sample.tolist())


def test_score_blocks_stay_within_batch_cells(monkeypatch):
    data = make_world(n_users=50)  # 48 items
    model = PopularityRecommender().fit(data)
    blocks = []

    def score(rows):
        blocks.append(len(rows))
        return model.score(rows)

    monkeypatch.setattr(index, "BATCH_CELLS", 48 * 8)
    items, _ = index.recommend_all(score, np.arange(50), 5, data.matrix)
    assert max(blocks) == 8 and sum(blocks) == 50 and items.shape == (50, 5)
