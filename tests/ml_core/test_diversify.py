"""Diversity and exposure at request time: MMR and the per-startup cap, on toys whose answer is known, and
through the one ranker."""
import numpy as np
import pytest
import scipy.sparse as sp

from ml.core import diversify
from ml.core.base import UserState
from ml.core.collaborative import CollaborativeRecommender
from ml.core.content import ContentRecommender
from ml.core.data import EngineError
from ml.core.metrics import gini
from ml.core.ranker import Ranker

from .conftest import make_world

# Three near-copies of one item (x), then two items unlike it and each other (y, z), slightly less relevant.
RELEVANCE = np.array([1.0, 0.99, 0.98, 0.9, 0.85])
VECTORS = np.array([[1.0, 0, 0], [1.0, 0.01, 0], [1.0, 0, 0.01], [0, 1.0, 0], [0, 0, 1.0]])


def test_no_diversity_keeps_the_order_of_relevance():
    assert diversify.mmr(RELEVANCE, VECTORS, 5, 0.0).tolist() == [0, 1, 2, 3, 4]


def test_diversity_puts_unlike_items_before_near_copies_of_the_best():
    assert diversify.mmr(RELEVANCE, VECTORS, 3, 0.5).tolist() == [0, 3, 4]


def test_a_little_diversity_lets_a_much_more_relevant_copy_stay_ahead():
    relevance = np.array([1.0, 0.99, 0.0])
    vectors = np.array([[1.0, 0], [1.0, 0.0], [0, 1.0]])
    assert diversify.mmr(relevance, vectors, 3, 0.1).tolist() == [0, 1, 2]
    assert diversify.mmr(relevance, vectors, 3, 0.9).tolist() == [0, 2, 1]


def test_sparse_vectors_pick_as_dense_ones():
    assert diversify.mmr(RELEVANCE, sp.csr_matrix(VECTORS), 3, 0.5).tolist() == [0, 3, 4]


def test_diversity_outside_zero_to_one_is_refused():
    with pytest.raises(EngineError, match="diversity"):
        diversify.mmr(RELEVANCE, VECTORS, 3, 1.5)


def test_the_cap_keeps_each_groups_best_items_and_every_ungrouped_one():
    groups = np.array([7, 7, 3, 7, diversify.NO_GROUP, 3, diversify.NO_GROUP, 3])
    assert diversify.within_cap(groups, 1).tolist() == [0, 2, 4, 6]
    assert diversify.within_cap(groups, 2).tolist() == [0, 1, 2, 4, 5, 6]


def test_diversified_caps_then_re_ranks_and_leaves_out_non_finite_scores():
    relevance = np.array([5.0, 4.0, -np.inf, 3.0, 2.0, 1.0])
    groups = np.array([1, 1, 2, 2, 3, diversify.NO_GROUP])

    def vectors_of(positions):
        return np.eye(6)[positions]

    chosen = diversify.diversified(relevance, groups, vectors_of, 10, 0.0, 1)
    assert chosen.tolist() == [0, 3, 4, 5]  # one per startup, the unscorable item never


def test_gini_is_zero_when_equal_and_near_one_when_one_takes_all():
    assert gini([3, 3, 3, 3]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 12]) == pytest.approx(0.75)
    assert gini([]) == gini([0, 0]) == 0.0


# ---------------------------------------------------------------- through the one ranker


@pytest.fixture(scope="module")
def ranker_and_user():
    world = make_world()
    content, collaborative = ContentRecommender().fit(world), CollaborativeRecommender().fit(world)
    groups = np.arange(world.n_items) // 4  # four items a startup
    ranker = Ranker({"content_based": content, "collaborative": collaborative},
                    {"content_based": 0.5, "collaborative": 0.5}, world.n_items,
                    item_vectors=content.linear_items()[0], groups=groups)
    user = UserState(0, world.matrix[0], None, world.user_content[0])
    return ranker, user, groups


def test_the_ranker_at_diversity_zero_without_a_cap_is_todays_ranking(ranker_and_user):
    ranker, user, _ = ranker_and_user
    plain = ranker.rank(user, 10)
    zero = ranker.rank(user, 10, diversity=0.0, max_per_group=None)
    assert zero.items.tolist() == plain.items.tolist() and zero.scores.tolist() == plain.scores.tolist()


def test_the_ranker_caps_each_group_and_keeps_its_components_in_step(ranker_and_user):
    ranker, user, groups = ranker_and_user
    capped = ranker.rank(user, 8, max_per_group=1)
    assert len(set(groups[capped.items].tolist())) == len(capped.items) == 8
    plain = ranker.rank(user, 48)
    position = {int(item): n for n, item in enumerate(plain.items)}
    for name, z in capped.components.items():
        assert z.tolist() == [plain.components[name][position[int(item)]] for item in capped.items]


def test_the_ranker_s_diversified_top_ten_is_a_prefix_of_its_top_twenty(ranker_and_user):
    """The API asks for limit + a margin and shows the first limit; the evaluation asks for K."""
    ranker, user, _ = ranker_and_user
    assert (ranker.rank(user, 10, diversity=0.5).items.tolist()
            == ranker.rank(user, 20, diversity=0.5).items[:10].tolist())


def test_the_ranker_refuses_a_cap_below_one(ranker_and_user):
    ranker, user, _ = ranker_and_user
    with pytest.raises(EngineError, match="max_per_group"):
        ranker.rank(user, 10, max_per_group=0)


def test_several_embeddings_average_their_similarities():
    a = np.array([[1.0, 0], [1.0, 0], [0, 1.0]])  # items 0 and 1 alike here
    b = np.array([[1.0, 0], [0, 1.0], [0, 1.0]])  # unlike here
    assert diversify.cosine_similarities((a, sp.csr_matrix(b)))[0, 1] == pytest.approx(0.5)
