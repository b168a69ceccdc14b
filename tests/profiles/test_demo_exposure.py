"""What the demo world's events show (profiles.demo.world.Exposure): the whole type by popularity in a small
catalog, mostly a search of the user's industries in a big one, and the probabilities the oracle ranks by."""
import numpy as np
import pytest

from profiles.demo.world import (
    CANDIDATES_PER_EVENT,
    CHANNELS,
    DEVELOPER,
    POSITION,
    SCROLLABLE_ITEMS,
    Exposure,
    WorldSize,
    make_world,
    rng_for,
    searched_share,
)

END = 1_790_000_000
DEVELOPER_POSITION = next(c for c in CHANNELS if (c.role, c.target_type) == (DEVELOPER, POSITION))


def exposure_of(positions: int) -> Exposure:
    world = make_world(0, WorldSize(users=600, positions=positions, startups=300, interactions=0), END)
    return Exposure(world, DEVELOPER_POSITION)


def test_no_search_up_to_a_scrollable_catalog_then_a_growing_share():
    assert searched_share(0) == searched_share(SCROLLABLE_ITEMS) == 0.0
    assert searched_share(4 * SCROLLABLE_ITEMS) == pytest.approx(0.75)
    assert 0.99 < searched_share(800_000) < 1.0


def test_a_small_catalog_is_drawn_by_popularity_alone_as_before_searches():
    exposure = exposure_of(400)
    actor = np.arange(50)
    drawn = exposure.draw(rng_for(0, "test"), actor)
    before = rng_for(0, "test").choice(400, size=(50, CANDIDATES_PER_EVENT), p=exposure.item_p)
    np.testing.assert_array_equal(drawn, before)  # the same draws, so small worlds are what they were
    np.testing.assert_allclose(exposure.probability(actor, np.tile(np.arange(400), (50, 1))),
                               np.tile(exposure.item_p, (50, 1)))


def test_in_a_big_catalog_a_developer_is_shown_the_industries_they_look_in():
    exposure = exposure_of(4 * SCROLLABLE_ITEMS)
    developers = exposure.world.developers
    actor = np.repeat(np.arange(len(developers.track)), 40)
    drawn = exposure.draw(rng_for(1, "test"), actor)
    liked = developers.affinity[actor[:, None], exposure.industry[drawn]] > 0
    by_popularity = developers.affinity[actor[:, None], exposure.industry[
        rng_for(1, "other").choice(len(exposure.item_p), size=drawn.shape, p=exposure.item_p)]] > 0
    assert liked.mean() > 0.75 + 0.25 * by_popularity.mean() - 0.02  # searches, plus what popularity brings
    assert by_popularity.mean() < 0.5


def test_the_exposure_probabilities_are_each_users_distribution_over_the_type_and_match_the_draws():
    exposure = exposure_of(4 * SCROLLABLE_ITEMS)
    n_items = len(exposure.item_p)
    actor = np.array([3, 17])
    probability = exposure.probability(actor, np.tile(np.arange(n_items), (2, 1)))
    np.testing.assert_allclose(probability.sum(axis=1), 1.0)
    drawn = exposure.draw(rng_for(2, "test"), np.repeat(actor[:1], 20_000))
    seen = np.bincount(exposure.industry[drawn.ravel()], minlength=exposure.industry_p.size) / drawn.size
    expected = np.bincount(exposure.industry, weights=probability[0], minlength=exposure.industry_p.size)
    np.testing.assert_allclose(seen, expected, atol=0.01)
