"""Every metric against values worked out by hand."""
import math

import numpy as np
import pytest

from ml.core import metrics as m

RANKED = [3, 1, 7, 5, 9]  # hits at ranks 2 and 4
RELEVANT = {1, 5, 8}


def test_precision_and_recall_count_hits_in_the_top_k():
    assert m.precision_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 5)
    assert m.recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert m.precision_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 2)


def test_ndcg_discounts_hits_by_rank_against_the_ideal_list():
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m.ndcg_at_k(RANKED, RELEVANT, 5) == pytest.approx(dcg / ideal)
    assert m.ndcg_at_k([1, 5, 8], RELEVANT, 3) == pytest.approx(1.0)


def test_average_precision_averages_precision_at_each_hit():
    assert m.average_precision_at_k(RANKED, RELEVANT, 5) == pytest.approx((1 / 2 + 2 / 4) / 3)


def test_hit_and_reciprocal_rank_look_at_the_first_hit():
    assert m.hit_at_k(RANKED, RELEVANT, 5) == 1.0
    assert m.hit_at_k(RANKED, RELEVANT, 1) == 0.0
    assert m.reciprocal_rank(RANKED, RELEVANT, 5) == pytest.approx(1 / 2)
    assert m.reciprocal_rank([0, 2], RELEVANT, 2) == 0.0


def test_coverage_counts_distinct_recommended_items():
    assert m.catalog_coverage([[0, 1], [1, 2]], 10) == pytest.approx(0.3)


def test_intra_list_diversity_is_one_minus_mean_pairwise_cosine():
    vectors = np.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # pairs: (0,1) cos 0, (0,2) cos 1/sqrt2, (1,2) cos 1/sqrt2
    expected = 1 - (0 + 2 / math.sqrt(2)) / 3
    assert m.intra_list_diversity([[0, 1, 2]], vectors) == pytest.approx(expected)
    assert m.intra_list_diversity([[0, 0]], vectors) == pytest.approx(0.0)


def test_novelty_is_mean_self_information_of_recommended_items():
    counts = np.asarray([50, 25, 1])
    assert m.novelty([[0, 1]], counts, 100) == pytest.approx((1 + 2) / 2)


def test_evaluate_lists_averages_over_users_with_held_out_items():
    result = m.evaluate_lists([RANKED, [4]], [RELEVANT, set()], k=5, n_items=10)
    assert result["users"] == 1
    assert result["ndcg"] == pytest.approx(m.ndcg_at_k(RANKED, RELEVANT, 5))
    assert result["coverage"] == pytest.approx(0.5)


def test_evaluate_lists_refuses_when_nobody_has_held_out_items():
    with pytest.raises(m.EngineError):
        m.evaluate_lists([[1]], [set()], k=5, n_items=10)
