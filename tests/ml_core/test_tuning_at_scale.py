"""Tuning and batch scoring bounded for big data: settings and weights searched on a sample of users and the
items they touched, at most VALIDATION_USERS scoring each, and score blocks bounded by BATCH_CELLS."""
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


def test_with_items_keeps_each_items_columns_together():
    data = make_world(n_users=20)
    rows = np.array([9, 0, 30])
    part = data.with_items(rows)
    assert part.item_ids.ids == [data.item_ids.ids[r] for r in rows] and part.user_ids == data.user_ids
    assert (part.matrix != data.matrix[:, rows]).nnz == 0
    assert (part.item_content != data.item_content[rows]).nnz == 0
    part.validate()


class Recording(ContentRecommender):
    """Content that remembers the size of the data each fit saw."""

    fits: list[tuple[float, int, int]] = []

    def fit(self, data, *, progress=None):
        Recording.fits.append((self.config.popularity_weight, data.n_users, data.n_items))
        return super().fit(data, progress=progress)


def test_a_large_fold_is_searched_on_a_sample_of_users_and_the_items_they_touched(monkeypatch):
    data = make_world(n_users=120)
    untouched = sp.diags(np.r_[0.0, np.ones(data.n_items - 1)].astype(np.float32))  # nobody met item 0
    train, heldout = holdout_split(data.matrix @ untouched, 0.2, seed=1, min_items=3)
    fold = data.with_matrix(train)
    monkeypatch.setattr(tuning, "SETTING_FIT_USERS", 40)
    sample = tuning.search_sample(fold, heldout)
    assert len(sample.users) == 40 and sample.fold.user_ids.ids == [fold.user_ids.ids[r] for r in sample.users]
    touched = set(np.flatnonzero(np.asarray(train[sample.users].sum(axis=0)).ravel()
                                 + np.asarray(heldout[sample.users].sum(axis=0)).ravel()).tolist())
    assert set(sample.items.tolist()) == touched and 0 not in touched
    assert sample.heldout.shape == (40, len(touched)) and sample.heldout.nnz == heldout[sample.users].nnz
    # settings and weights are searched there, and nothing is fitted on the whole fold
    Recording.fits = []
    monkeypatch.setattr(tuning, "settings_grid", lambda name, seed=0: [
        lambda w=w: Recording(ContentConfig(popularity_weight=w)) for w in (0.0, 4.0)])
    tuned = tuning.tune(["content_based"], fold, split=(fold, heldout), k=10)
    assert Recording.fits == [(0.0, 40, len(touched)), (4.0, 40, len(touched))]
    assert tuned.sampled and tuned.validation["sample"] == {"users": 40, "items": len(touched)}
    assert tuned.fold_models["content_based"].item_ids == sample.fold.item_ids and tuned.weights


def test_a_fold_within_the_limit_is_searched_whole(monkeypatch):
    data = make_world(n_users=60)
    train, heldout = holdout_split(data.matrix, 0.2, seed=1, min_items=3)
    fold = data.with_matrix(train)
    sample = tuning.search_sample(fold, heldout)
    assert sample.fold is fold and sample.heldout is heldout and sample.users is None
    Recording.fits = []
    makers = [lambda w=w: Recording(ContentConfig(popularity_weight=w)) for w in (0.0, 4.0)]
    tuning.select_on_validation(makers, fold, heldout, k=10)
    assert Recording.fits == [(0.0, 60, 48), (4.0, 60, 48)]


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
