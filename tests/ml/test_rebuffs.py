"""Who rebuffed whom (ml.serving_set.rebuffed_by), on a tiny market whose answer is known: founder 1 owns
startup 10 and its position 20; developer 2, investor 3 and developer 4 are people items."""
import numpy as np

from ml.core.data import IdMap
from ml.serving_set import rebuffed_by, without_rebuffs

ITEMS = IdMap(["startup:10", "position:20", "developer:2", "investor:3", "developer:4", "position:21"])
FOUNDERS = {"startup:10": (1,), "position:20": (1,), "position:21": (5,)}


def rows(*keys: str) -> list[int]:
    return [ITEMS.index[key] for key in keys]


def test_people_who_dismissed_a_founders_startup_or_position_rebuff_that_founder_only():
    rebuffs = rebuffed_by(item_ids=ITEMS, dismissals=[(2, "startup:10"), (3, "position:20")], founders=FOUNDERS)
    assert rebuffs == {1: rebuffs[1]} and rebuffs[1].tolist() == sorted(rows("developer:2", "investor:3"))


def test_a_founder_who_dismissed_a_developer_closes_their_positions_to_that_developer():
    rebuffs = rebuffed_by(item_ids=ITEMS, dismissals=[(1, "developer:4")], founders=FOUNDERS)
    assert rebuffs[4].tolist() == rows("position:20")  # not founder 5's position 21


def test_a_dismissal_of_an_item_with_no_founder_or_of_an_unknown_item_rebuffs_no_one():
    assert rebuffed_by(item_ids=ITEMS, dismissals=[(2, "startup:99"), (1, "investor:3")], founders=FOUNDERS) == {}


def test_without_rebuffs_leaves_the_mask_it_was_given_untouched():
    allowed = np.ones(len(ITEMS), dtype=bool)
    narrowed = without_rebuffs(allowed, np.array(rows("investor:3")))
    assert allowed.all() and narrowed.sum() == len(ITEMS) - 1
    assert without_rebuffs(allowed, None) is allowed


def test_rebuffs_of_some_users_are_the_whole_rebuffs_of_those_users_only():
    dismissals = [(2, "startup:10"), (3, "position:20"), (4, "position:21"), (1, "developer:4"), (5, "developer:2")]
    every = rebuffed_by(item_ids=ITEMS, dismissals=dismissals, founders=FOUNDERS)
    assert every.keys() == {1, 2, 4, 5}
    for about in ({1}, {4, 5}, {2}, {9}, set()):
        some = rebuffed_by(item_ids=ITEMS, dismissals=dismissals, founders=FOUNDERS, about=about)
        assert some.keys() == every.keys() & about
        assert all(np.array_equal(some[user], every[user]) for user in some)
