"""The one ranker: its fallback chain, exclusions, per-algorithm scores, and the tuning that sets its weights."""
import numpy as np
import pytest
import scipy.sparse as sp

from ml.core.base import Recommender, UserState
from ml.core.collaborative import CollaborativeRecommender, EaseRecommender
from ml.core.content import ContentRecommender
from ml.core.data import EngineError
from ml.core.offline import fit_hybrid, item_popularity
from ml.core.ranker import PATH_ALL, PATH_COLD_START, PATH_POPULAR, Ranker
from ml.core.tuning import tune, zscore

from .conftest import group_of_item, group_of_user, make_world, own_items, small_two_tower

WEIGHTS = {"content_based": 0.4, "collaborative": 0.35, "two_tower": 0.25}


class BrokenTwoTower(Recommender):
    """Fits, then fails to score: the ranker must serve without it."""

    name = "two_tower"

    def fit(self, data, *, progress=None):
        return self

    def score(self, user_rows):
        raise RuntimeError("GPU fell off the bus")

    def user_scores(self, user):
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
def components(cold_world):
    return {"content_based": ContentRecommender().fit(cold_world),
            "collaborative": CollaborativeRecommender(seed=0).fit(cold_world),
            "two_tower": small_two_tower().fit(cold_world)}


def ranker(data, components, weights=WEIGHTS, **kwargs) -> Ranker:
    return Ranker(components, weights, data.n_items, popularity=item_popularity(data.matrix), **kwargs)


def state(data, user, history=None, negatives=None, content=True) -> UserState:
    return UserState(user, data.matrix[user] if history is None else history, negatives,
                     data.user_content[user] if content else None)


def test_a_known_user_is_blended_from_every_component(cold_world, components):
    result = ranker(cold_world, components).rank(state(cold_world, 0), 5)
    assert result.path == PATH_ALL
    assert set(result.components) == {"content_based", "collaborative", "two_tower"}
    assert all(len(scores) == 5 for scores in result.components.values())
    assert sum(result.weights.values()) == pytest.approx(1.0)
    assert all(group_of_item(i) == 0 for i in result.items)


def test_a_user_without_interactions_is_ranked_by_content_alone(cold_world, components):
    result = ranker(cold_world, components).rank(state(cold_world, cold_world.n_users - 1), 5)
    assert result.path == PATH_COLD_START and set(result.components) == {"content_based"}
    assert all(group_of_item(i) == 1 for i in result.items)


def test_a_failing_two_tower_is_left_out_and_named(cold_world, components):
    result = ranker(cold_world, {**components, "two_tower": BrokenTwoTower()}).rank(state(cold_world, 0), 5)
    assert result.path == "no_two_tower"
    assert set(result.components) == {"content_based", "collaborative"}
    assert "GPU fell off the bus" in result.unavailable["two_tower"]


def test_weights_that_leave_a_component_out_are_no_fallback(cold_world, components):
    result = ranker(cold_world, components, {"content_based": 1.0}).rank(state(cold_world, 0), 5)
    assert result.path == PATH_ALL and set(result.components) == {"content_based"}


def test_without_content_the_others_serve_and_a_user_without_history_gets_the_popular_items(cold_world, components):
    others = {n: m for n, m in components.items() if n != "content_based"}
    unavailable = {"content_based": "no active content_based version"}
    with_history = ranker(cold_world, others, unavailable=unavailable).rank(state(cold_world, 0), 5)
    assert with_history.path == "no_content" and set(with_history.components) == {"collaborative", "two_tower"}
    assert all(group_of_item(i) == 0 for i in with_history.items)

    empty = sp.csr_matrix((1, cold_world.n_items), dtype=np.float32)
    cold = ranker(cold_world, others, unavailable=unavailable).rank(state(cold_world, 1, empty, content=False), 5)
    popularity = item_popularity(cold_world.matrix)
    assert cold.path == PATH_POPULAR
    assert sorted(popularity[cold.items].tolist(), reverse=True) == sorted(popularity, reverse=True)[:5]


def test_no_model_at_all_still_ranks_the_popular_items(cold_world):
    result = ranker(cold_world, {}).rank(state(cold_world, 0), 3)
    assert result.path == PATH_POPULAR and len(result.items) == 3
    assert not set(result.items) & set(cold_world.matrix[0].indices)


def test_seen_and_dismissed_items_are_never_recommended(cold_world, components):
    seen = cold_world.matrix[0].indices
    dismissed_item = np.setdiff1d(own_items(0), seen)[0]
    dismissed = sp.csr_matrix(([1.0], ([0], [dismissed_item])), shape=(1, cold_world.n_items))
    result = ranker(cold_world, components).rank(state(cold_world, 0, negatives=dismissed), cold_world.n_items)
    assert not set(result.items) & set(seen)
    assert dismissed_item not in result.items
    again = ranker(cold_world, components).rank(state(cold_world, 0, negatives=dismissed), cold_world.n_items,
                                                exclude_seen=False)
    assert set(seen) <= set(again.items) and dismissed_item not in again.items


def test_allowed_items_bound_the_ranking(cold_world, components):
    allowed = np.zeros(cold_world.n_items, dtype=bool)
    allowed[[30, 31, 2]] = True
    result = ranker(cold_world, components).rank(state(cold_world, 0), 10, allowed)
    assert set(result.items) <= {30, 31, 2} - set(cold_world.matrix[0].indices)


def test_new_interactions_change_recommendations_without_retraining(cold_world, components):
    """The cold user starts liking the other group's items: the current history leads."""
    history = sp.csr_matrix((np.ones(6), ([0] * 6, own_items(0)[:6])), shape=(1, cold_world.n_items))
    result = ranker(cold_world, components).rank(state(cold_world, cold_world.n_users - 1, history), 5)
    assert result.path != PATH_COLD_START
    assert not set(result.items) & set(own_items(0)[:6])


def test_a_brand_new_user_is_served_from_their_declared_terms(cold_world, components):
    empty = sp.csr_matrix((1, cold_world.n_items), dtype=np.float32)
    result = ranker(cold_world, components).rank(UserState(None, empty, None, cold_world.user_content[1]), 5)
    assert result.path == PATH_COLD_START
    assert all(group_of_item(i) == 1 for i in result.items)


def test_tuned_weights_are_normalised_and_recorded(cold_world):
    tuned = tune(["content_based", "collaborative", "ease"], cold_world)
    assert sum(tuned.weights.values()) == pytest.approx(1.0)
    assert tuned.validation["ndcg"] > 0.5
    assert set(tuned.fold_models) == {"content_based", "collaborative", "ease"}


def test_a_component_that_cannot_fit_is_reported_and_the_others_are_tuned(cold_world):
    def too_little_data():
        raise EngineError("the Two-Tower needs at least 500 interactions")

    tuned = tune(["content_based", "collaborative", "two_tower"], cold_world, factories={"two_tower": too_little_data})
    assert "500 interactions" in tuned.validation["failed"]["two_tower"]
    assert "two_tower" not in tuned.weights and tuned.weights


def test_the_tuned_hybrid_ranks_each_users_own_group_first(cold_world):
    hybrid = fit_hybrid(cold_world, seed=0)
    assert isinstance(hybrid.components.get("ease"), EaseRecommender) or hybrid.weights.get("ease", 0) == 0
    for user in range(cold_world.n_users - 1):
        result = hybrid.rank(state(cold_world, user), 5)
        assert all(group_of_item(i) == group_of_user(user) for i in result.items), user


def test_zscore_standardises_on_unseen_items_only():
    scores = np.asarray([[10.0, 1.0, 2.0, 3.0]])
    z = zscore(scores, np.asarray([[1, 0, 0, 0]]))
    np.testing.assert_allclose(z[0, 1:], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    np.testing.assert_allclose(zscore(np.ones((1, 3))), 0.0)


def test_weights_are_also_tuned_per_group_of_users_on_their_allowed_items():
    data = make_world(n_users=240)
    labels = np.asarray(["even" if user % 2 == 0 else "odd" for user in range(data.n_users)])
    half = np.arange(data.n_items) < data.n_items // 2
    allowed = {"even": half, "odd": ~half}
    tuned = tune(["content_based", "collaborative"], data, groups=labels, allowed=allowed)
    assert set(tuned.weights_by_group) == {"even", "odd"}
    assert all(sum(w.values()) == pytest.approx(1.0) for w in tuned.weights_by_group.values())
    by_group = tuned.validation["by_group"]
    assert by_group["even"]["own_weights"] and by_group["even"]["ndcg"] >= by_group["even"]["ndcg_with_overall_weights"]


def test_a_group_with_few_validation_users_keeps_the_overall_weights(cold_world):
    labels = np.asarray(["even" if user % 2 == 0 else "odd" for user in range(cold_world.n_users)])  # 32 each
    tuned = tune(["content_based", "collaborative"], cold_world, groups=labels)
    assert tuned.weights_by_group == {} and tuned.validation["by_group"]["odd"]["own_weights"] is False


def test_a_crowded_item_loses_its_crowding_from_the_blend_and_falls_below_what_then_scores_more(
        cold_world, components):
    plain = ranker(cold_world, components).rank(state(cold_world, 0), 5)
    first, second = plain.items[:2]
    crowding = np.zeros(cold_world.n_items)
    crowding[first] = plain.scores[0] - plain.scores[1] + 0.5  # half a z-score below the second
    crowded = ranker(cold_world, components, crowding=crowding).rank(state(cold_world, 0), cold_world.n_items)
    assert crowded.items[0] == second
    assert crowded.scores[list(crowded.items).index(first)] == pytest.approx(plain.scores[1] - 0.5, abs=1e-5)


def test_the_popular_path_lowers_crowded_items_too(cold_world):
    popularity = item_popularity(cold_world.matrix)
    plain = ranker(cold_world, {}).rank(state(cold_world, 0), 3)
    crowding = np.zeros(cold_world.n_items)
    crowding[plain.items[0]] = 100.0
    crowded = ranker(cold_world, {}, crowding=crowding).rank(state(cold_world, 0), 3)
    assert plain.items[0] not in crowded.items
    assert crowded.scores.tolist() == popularity[crowded.items].tolist()  # scores stay the popularity counts


class FixedInterest:
    """The other side's interest in the user: a fixed raw score per item row, NaN where unknown."""

    def __init__(self, theirs: np.ndarray):
        self.theirs = theirs

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.theirs[rows]


def test_the_other_sides_interest_adds_its_z_score_times_the_reciprocal_weight(cold_world, components):
    user = state(cold_world, 0)
    plain = ranker(cold_world, components).rank(user, cold_world.n_items)
    theirs = np.full(cold_world.n_items, np.nan, dtype=np.float32)
    last = plain.items[-1]
    theirs[plain.items] = 0.0
    theirs[last] = 1.0  # the forward ranking's last item is the one whose side would answer
    reverse = FixedInterest(theirs)
    one_sided = ranker(cold_world, components).rank(user, cold_world.n_items, reverse=reverse)
    assert one_sided.items.tolist() == plain.items.tolist()  # weight 0: measured, not blended
    two_sided = ranker(cold_world, components, reciprocal_weight=1.0).rank(user, cold_world.n_items, reverse=reverse)
    z = (theirs[plain.items] - theirs[plain.items].mean()) / theirs[plain.items].std()
    by_item = dict(zip(plain.items.tolist(), plain.scores.tolist(), strict=True))
    for item, score, reported in zip(two_sided.items, two_sided.scores, two_sided.reciprocal, strict=True):
        expected = z[plain.items.tolist().index(item)]
        assert reported == pytest.approx(expected, abs=1e-5)
        assert score == pytest.approx(by_item[item] + expected, abs=1e-4)
    assert two_sided.items.tolist().index(last) < plain.items.tolist().index(last)


def test_an_unknown_interest_counts_as_no_opinion(cold_world, components):
    user = state(cold_world, 0)
    plain = ranker(cold_world, components).rank(user, cold_world.n_items)
    unknown = FixedInterest(np.full(cold_world.n_items, np.nan, dtype=np.float32))
    ranked = ranker(cold_world, components, reciprocal_weight=1.0).rank(user, cold_world.n_items, reverse=unknown)
    assert ranked.items.tolist() == plain.items.tolist() and ranked.reciprocal is None
    theirs = np.full(cold_world.n_items, np.nan, dtype=np.float32)
    theirs[plain.items[:2]] = [0.0, 1.0]
    partly = ranker(cold_world, components, reciprocal_weight=1.0).rank(user, cold_world.n_items,
                                                                        reverse=FixedInterest(theirs))
    assert np.isnan(partly.reciprocal[np.isin(partly.items, plain.items[2:])]).all()
    scores = dict(zip(partly.items.tolist(), partly.scores.tolist(), strict=True))
    assert all(scores[item] == pytest.approx(score, abs=1e-5)  # unknown: the blend alone
               for item, score in zip(plain.items[2:].tolist(), plain.scores[2:].tolist(), strict=True))
