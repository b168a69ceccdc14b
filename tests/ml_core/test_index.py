"""Top-K retrieval with exclusions."""
import numpy as np
import scipy.sparse as sp

from ml.core.index import recommend_all, top_k_rows


def test_top_k_rows_orders_best_first_and_skips_excluded():
    scores = np.asarray([[0.1, 0.9, 0.5, 0.7], [1.0, 0.0, 0.2, 0.3]])
    exclude = sp.csr_matrix(([1], ([0], [1])), shape=(2, 4))
    items, values = top_k_rows(scores, 2, exclude)
    assert items.tolist() == [[3, 2], [0, 3]]
    np.testing.assert_allclose(values, [[0.7, 0.5], [1.0, 0.3]])


def test_top_k_rows_pads_when_too_few_candidates_remain():
    items, values = top_k_rows(np.asarray([[0.5, 0.2]]), 3, sp.csr_matrix(([1], ([0], [0])), shape=(1, 2)))
    assert items.tolist() == [[1, -1, -1]]
    assert np.isneginf(values[0, 1:]).all()


def test_recommend_all_batches_users():
    scores = np.arange(12, dtype=np.float32).reshape(3, 4)
    items, _ = recommend_all(lambda rows: scores[rows], np.asarray([2, 0]), 1)
    assert items.tolist() == [[3], [3]]
