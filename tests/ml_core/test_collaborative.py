"""Collaborative filtering: fold-in, dismisses as negative evidence, item-to-item similarity."""
import numpy as np
import scipy.sparse as sp

from ml.core.base import UserState
from ml.core.collaborative import CollaborativeRecommender, EaseRecommender
from ml.core.data import interaction_matrices

from .conftest import group_of_item, own_items


def fold_in(model, history, negatives=None) -> np.ndarray:
    """Every item's score for a user given by their current rows, as serving asks."""
    return model.user_scores(UserState(None, history, negatives)).at(None)


def test_fold_in_scores_a_changed_user_like_training_would(world):
    model = CollaborativeRecommender(seed=0).fit(world)
    trained = model.score(np.asarray([0]))[0]
    folded = fold_in(model, world.matrix[0])
    assert np.corrcoef(trained, folded)[0, 1] > 0.99


def test_fold_in_of_a_new_user_follows_their_first_interactions(world):
    model = CollaborativeRecommender(seed=0).fit(world)
    history = sp.csr_matrix(([1.0, 1.0], ([0, 0], [30, 31])), shape=(1, world.n_items))
    scores = fold_in(model, history)
    scores[[30, 31]] = -np.inf
    top = np.argsort(-scores)[:5]
    assert all(group_of_item(i) == 1 for i in top)


def test_dismissed_item_scores_lower_than_without_the_dismiss(world):
    model = CollaborativeRecommender(seed=0).fit(world)
    unseen = np.setdiff1d(own_items(0), world.matrix[0].indices)[0]
    dismissed = sp.csr_matrix(([1.0], ([0], [unseen])), shape=(1, world.n_items))
    assert fold_in(model, world.matrix[0], dismissed)[unseen] < fold_in(model, world.matrix[0])[unseen]


def test_similar_items_come_from_the_same_group(world):
    model = CollaborativeRecommender(seed=0).fit(world)
    items, scores = model.similar_items(3, k=5)
    assert 3 not in items
    assert all(group_of_item(i) == group_of_item(3) for i in items)


def test_item_item_models_fold_in_new_interactions_at_once(world):
    model = EaseRecommender().fit(world)
    np.testing.assert_allclose(fold_in(model, world.matrix[5]), model.score(np.asarray([5]))[0], rtol=1e-5)


def test_interaction_kinds_carry_weights_and_dismiss_is_negative():
    matrix, negatives = interaction_matrices(
        [(0, 0, "view"), (0, 0, "apply"), (0, 1, "dismiss"), (1, 1, "save")], n_users=2, n_items=2
    )
    assert matrix[0, 0] == 5.0 and matrix[1, 1] == 2.0 and matrix[0, 1] == 0
    assert negatives[0, 1] == 1.0


def test_the_gram_inverse_summed_block_by_block_is_the_whole_catalogs(world):
    model = CollaborativeRecommender(seed=0).fit(world)
    factors = model.item_factors.astype(np.float64)
    whole = np.linalg.inv(factors.T @ factors + model.config.regularization * np.eye(factors.shape[1]))
    assert np.allclose(model._regularised_gram_inverse(block=7), whole)  # 48 items: the last block is short
