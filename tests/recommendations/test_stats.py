"""recommendations.stats against textbook values and against simulation: no database."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from recommendations.stats import (
    RatioEstimate,
    RatioSums,
    difference_test,
    ratio_estimate,
    users_needed,
    wilson_interval,
)


def _sums(x, n) -> RatioSums:
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    return RatioSums(users=len(x), x=x.sum(), n=n.sum(), xx=(x * x).sum(), nn=(n * n).sum(), xn=(x * n).sum())


@pytest.mark.parametrize(("successes", "trials", "low", "high"), [
    # Newcombe 1998, "Two-sided confidence intervals for the single proportion", Table II, method 3.
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_newcombe(successes, trials, low, high):
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_without_trials_is_everything():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_ratio_of_one_item_per_user_has_the_variance_of_a_mean():
    # Each user saw one item: the ratio is the mean of x, whose variance is the sample variance over users.
    x = np.array([1, 0, 0, 1, 1, 0, 0, 0, 1, 0])
    estimate = ratio_estimate(_sums(x, np.ones_like(x)))
    assert estimate.value == pytest.approx(0.4)
    assert estimate.variance == pytest.approx(x.var(ddof=1) / len(x))


def test_ratio_variance_is_deng_et_al_equation():
    rng = np.random.default_rng(3)
    n = rng.integers(1, 30, size=500)
    x = rng.binomial(n, rng.beta(2, 8, size=500))
    mu_x, mu_n = x.mean(), n.mean()
    cov = np.cov(x, n, ddof=1)
    expected = (cov[0, 0] / mu_n**2 - 2 * mu_x * cov[0, 1] / mu_n**3 + mu_x**2 * cov[1, 1] / mu_n**4) / len(x)
    assert ratio_estimate(_sums(x, n)).variance == pytest.approx(expected, rel=1e-9)


def test_ratio_variance_matches_the_spread_over_repeated_experiments():
    # Users who differ in taste (a per-user click probability) and in how much they see: items are not
    # independent, and a binomial over items would understate the spread. The delta method must not.
    rng = np.random.default_rng(7)
    ratios, variances = [], []
    for _ in range(2000):
        n = rng.integers(1, 40, size=300)
        x = rng.binomial(n, rng.beta(1, 4, size=300))
        estimate = ratio_estimate(_sums(x, n))
        ratios.append(estimate.value)
        variances.append(estimate.variance)
    assert np.mean(variances) == pytest.approx(np.var(ratios), rel=0.1)
    binomial = np.mean(ratios) * (1 - np.mean(ratios)) / (300 * 20.5)
    assert np.var(ratios) > 2 * binomial


def test_ratio_without_items_or_users_has_no_value():
    assert ratio_estimate(RatioSums(0, 0, 0, 0, 0, 0)) == RatioEstimate(users=0, value=None, variance=None)
    assert ratio_estimate(RatioSums(1, 1, 4, 1, 16, 4)) == RatioEstimate(users=1, value=0.25, variance=None)


def test_difference_is_a_two_sided_z_test():
    treatment = RatioEstimate(users=100, value=0.30, variance=0.0004)
    control = RatioEstimate(users=100, value=0.25, variance=0.0005)
    tested = difference_test(treatment, control)
    spread = math.sqrt(0.0009)
    assert tested.difference == pytest.approx(0.05)
    assert tested.p_value == pytest.approx(2 * norm.sf(0.05 / spread))
    assert tested.interval == pytest.approx((0.05 - 1.959964 * spread, 0.05 + 1.959964 * spread))


def test_difference_at_z_of_1_96_has_p_of_0_05():
    tested = difference_test(RatioEstimate(10, 1.959964, 0.5), RatioEstimate(10, 0.0, 0.5))
    assert tested.p_value == pytest.approx(0.05, abs=1e-6)
    assert tested.interval[0] == pytest.approx(0.0, abs=1e-6)


def test_no_difference_without_variances():
    assert difference_test(RatioEstimate(1, 0.5, None), RatioEstimate(10, 0.5, 0.01)) is None


def test_users_needed_for_two_proportions():
    # 10% against 12%, unpooled: (1.95996 + 0.84162)^2 (0.1 * 0.9 + 0.12 * 0.88) / 0.02^2 = 3838.1 per group.
    assert users_needed(difference=0.02, treatment_variance=0.12 * 0.88, control_variance=0.1 * 0.9) == 3839
    assert users_needed(difference=0.0, treatment_variance=0.1, control_variance=0.1) is None
