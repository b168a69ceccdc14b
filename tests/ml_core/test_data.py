"""Interaction events into the engine's matrices."""
import numpy as np
import pytest

from ml.core.data import EngineError, interaction_matrices


def test_events_become_weighted_cells_with_repeats_added_up_and_dismisses_apart():
    events = [(2, 5, "like"), (0, 1, "view"), (2, 5, "view"), (0, 0, "view"), (1, 3, "dismiss"), (0, 1, "view")]

    matrix, negatives = interaction_matrices(events, n_users=4, n_items=6)

    assert matrix.shape == negatives.shape == (4, 6)
    assert matrix.has_canonical_format and negatives.has_canonical_format
    expected = np.zeros((4, 6), dtype=np.float32)
    expected[2, 5], expected[0, 1], expected[0, 0] = 3.0, 2.0, 1.0
    np.testing.assert_array_equal(matrix.toarray(), expected)
    assert negatives.nnz == 1 and negatives[1, 3] == 1.0
    assert list(np.diff(matrix.indptr)) == [2, 0, 1, 0]  # rows without events stay empty


def test_no_events_give_empty_matrices_and_an_unknown_kind_is_refused():
    matrix, negatives = interaction_matrices([], n_users=3, n_items=2)
    assert matrix.shape == (3, 2) and matrix.nnz == negatives.nnz == 0

    with pytest.raises(EngineError, match="unknown interaction kind 'poke'"):
        interaction_matrices([(0, 0, "poke")], n_users=1, n_items=1)
