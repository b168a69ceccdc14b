"""Who said yes to whom (ml.serving_set.answered_by): the candidates already interested in the asker, which
serving lifts and the served evaluation counts as the other half of a mutual match. On a tiny market whose
answer is known: founder 1 owns startup 10 and its position 20; founder 5 owns position 21; developers 2 and 4
and investor 3 are people."""
import numpy as np

from ml.core.data import IdMap
from ml.serving_set import answered_by

ITEMS = IdMap(["startup:10", "position:20", "developer:2", "investor:3", "developer:4", "position:21"])
FOUNDERS = {"startup:10": (1,), "position:20": (1,), "position:21": (5,)}


def yes(commitments) -> set[tuple[int, str]]:
    answered = answered_by(item_ids=ITEMS, commitments=commitments, founders=FOUNDERS)
    return {(user, ITEMS.ids[row]) for user, rows in answered.items() for row in rows}


def test_a_developer_who_applied_to_a_founders_position_said_yes_to_that_founder_about_themselves():
    assert yes([(2, "position:20")]) == {(1, "developer:2")}
    assert yes([(4, "position:21")]) == {(5, "developer:4")}  # founder 5's, not founder 1's


def test_an_investor_who_contacted_or_accepted_a_founders_startup_said_yes_to_that_founder():
    assert yes([(3, "startup:10")]) == {(1, "investor:3")}


def test_a_founder_who_contacted_or_accepted_a_person_said_yes_to_them_about_the_founders_items():
    assert yes([(1, "developer:2")]) == {(2, "position:20")}  # a developer is asked about positions
    assert yes([(1, "investor:3")]) == {(3, "startup:10")}  # an investor about startups
    assert yes([(5, "developer:4")]) == {(4, "position:21")}


def test_someone_who_founded_nothing_or_an_item_unknown_says_yes_to_no_one():
    assert yes([(4, "developer:2"), (2, "startup:99")]) == set()


def test_each_positions_founders_are_found_for_any_candidates_in_order():
    from ml.serving_set import ServingSet

    items = IdMap(["position:20", "startup:10", "position:21", "position:22"])
    users = IdMap(["1", "5", "7"])  # founder 9 was never trained: unknown to the models
    serving = ServingSet(user_ids=users, item_ids=items, type_masks={}).with_founders(
        {"position:20": (1, 5), "startup:10": (1,), "position:21": (9,), "position:22": (7,)})
    at, founders = serving._founders_as_users(np.array([3, 1, 0, 2, 0]))
    assert list(zip(at.tolist(), founders.tolist(), strict=True)) == [(0, 2), (2, 0), (2, 1), (4, 0), (4, 1)]


def test_answers_about_some_users_are_the_whole_answers_to_those_users_only():
    commitments = [(2, "position:20"), (4, "position:21"), (3, "startup:10"), (1, "developer:2"),
                   (1, "investor:3"), (5, "developer:4")]
    every = answered_by(item_ids=ITEMS, commitments=commitments, founders=FOUNDERS)
    for about in ({1}, {2, 5}, {3, 4}, {9}, set()):
        some = answered_by(item_ids=ITEMS, commitments=commitments, founders=FOUNDERS, about=about)
        assert some.keys() == every.keys() & about
        assert all(np.array_equal(some[user], every[user]) for user in some)
