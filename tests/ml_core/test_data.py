"""Interaction events into the engine's matrices."""
import numpy as np
import pytest

from ml.core.data import EngineError, Events, interaction_matrices


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


def _latest_by_hand(triples, fraction):
    """Each user's latest ``fraction`` of their events (at least one), counted one user at a time."""
    by_user: dict[int, list[int]] = {}
    for n, (user, _, _) in enumerate(triples):
        by_user.setdefault(user, []).append(n)
    held = set()
    for positions in by_user.values():
        held.update(positions[len(positions) - max(1, int(fraction * len(positions))):])
    return [n in held for n in range(len(triples))]


def test_each_users_latest_share_is_picked_wherever_their_events_are():
    rng = np.random.default_rng(0)
    kinds = rng.choice(["view", "like", "dismiss"], 600)
    triples = [(int(user), int(item), str(kind)) for user, item, kind in
               zip(rng.integers(0, 40, 600), rng.integers(0, 90, 600), kinds, strict=True)]
    events = Events.of(triples)

    latest = events.latest_of_each_user(0.2)

    assert latest.tolist() == _latest_by_hand(triples, 0.2)
    assert list(events) == triples  # the arrays give the same events back, kinds by name
    held = events.take(latest)
    assert len(held) == sum(_latest_by_hand(triples, 0.2)) and set(held.present_kinds()) <= {"view", "like", "dismiss"}


def test_one_event_is_held_out_and_kinds_are_picked_by_name():
    events = Events.of([(3, 1, "view"), (3, 2, "apply"), (5, 0, "dismiss")])
    assert events.latest_of_each_user(0.2).tolist() == [False, True, True]  # one of each user's, at least
    assert events.of_kinds(["apply", "dismiss"]).tolist() == [False, True, True]
    assert events.of_kinds(["accept"]).tolist() == [False, False, False]  # a kind none of them has


def test_matrices_of_events_and_of_tuples_are_the_same():
    triples = [(0, 1, "view"), (1, 0, "apply"), (0, 1, "like"), (1, 1, "dismiss")]
    from_events = interaction_matrices(Events.of(triples), n_users=2, n_items=2)
    from_tuples = interaction_matrices(triples, n_users=2, n_items=2)
    for mine, theirs in zip(from_events, from_tuples, strict=True):
        np.testing.assert_array_equal(mine.toarray(), theirs.toarray())
    assert from_events[0][0, 1] == 3.0 and from_events[1][1, 1] == 1.0
