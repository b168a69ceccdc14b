"""The statistics of online metrics and experiments: pure functions of counts, no Django.

Rates are ratios of sums over users (clicks / items shown). The unit an experiment randomises is the user,
and one user's items are not independent of each other (a user who clicks, clicks more than once), so a
ratio's variance is not that of a binomial over items: :func:`ratio_estimate` uses the delta method over
per-user sums (Deng, Knoblich, Lu 2018, "Applying the Delta Method in Metric Analytics", section 3),
which stays right however unequal the users' numbers of items are. Intervals of a plain count of
successes in trials (the online metrics, where nothing is compared) are Wilson's score intervals.
"""
import math
from dataclasses import dataclass

from scipy.stats import norm

ALPHA = 0.05
POWER = 0.8


def wilson_interval(successes: int, trials: int, *, confidence: float = 1 - ALPHA) -> tuple[float, float]:
    """Wilson's score interval of a proportion (Newcombe 1998, method 3): unlike the normal approximation it
    stays inside [0, 1] and is not empty at 0 or n successes. Without trials: [0, 1], nothing is known."""
    if trials <= 0:
        return 0.0, 1.0
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


@dataclass(frozen=True)
class RatioSums:
    """Sums over a group's users of each user's numerator x (e.g. clicks) and denominator n (items shown),
    their squares and their product: all the delta method needs, and what SQL can sum."""

    users: int
    x: float
    n: float
    xx: float
    nn: float
    xn: float


@dataclass(frozen=True)
class RatioEstimate:
    users: int
    value: float | None  # sum x / sum n; None without a denominator
    variance: float | None  # of ``value``; None with fewer than two users

    @property
    def per_user_variance(self) -> float | None:
        """The variance one user contributes (``variance`` times the users): what sample sizes scale."""
        return None if self.variance is None else self.variance * self.users

    def interval(self, *, confidence: float = 1 - ALPHA) -> tuple[float, float] | None:
        if self.value is None or self.variance is None:
            return None
        half = norm.ppf(1 - (1 - confidence) / 2) * math.sqrt(self.variance)
        return self.value - half, self.value + half


def ratio_estimate(sums: RatioSums) -> RatioEstimate:
    """R = sum x / sum n, and by the delta method Var(R) ~ (s_x^2 - 2 R s_xn + R^2 s_n^2) / (U mean_n^2),
    where s are the sample (co)variances of the users' x and n and U the users (Deng et al. 2018, eq. 3)."""
    users = sums.users
    if users <= 0 or sums.n <= 0:
        return RatioEstimate(users=max(users, 0), value=None, variance=None)
    ratio = sums.x / sums.n
    if users < 2:
        return RatioEstimate(users=users, value=ratio, variance=None)
    mean_x, mean_n = sums.x / users, sums.n / users
    var_x = (sums.xx - users * mean_x * mean_x) / (users - 1)
    var_n = (sums.nn - users * mean_n * mean_n) / (users - 1)
    cov = (sums.xn - users * mean_x * mean_n) / (users - 1)
    variance = (var_x - 2 * ratio * cov + ratio * ratio * var_n) / (users * mean_n * mean_n)
    return RatioEstimate(users=users, value=ratio, variance=max(variance, 0.0))  # >= 0 but for rounding


@dataclass(frozen=True)
class Difference:
    difference: float
    interval: tuple[float, float]
    p_value: float


def difference_test(treatment: RatioEstimate, control: RatioEstimate, *,
                    confidence: float = 1 - ALPHA) -> Difference | None:
    """treatment - control, its interval and the two-sided z-test's p-value (independent groups: the
    variances add). None when either side has no value or no variance."""
    if treatment.value is None or control.value is None or treatment.variance is None or control.variance is None:
        return None
    difference = treatment.value - control.value
    variance = treatment.variance + control.variance
    if variance == 0:  # both groups constant: the difference is exact
        return Difference(difference, (difference, difference), 1.0 if difference == 0 else 0.0)
    spread = math.sqrt(variance)
    half = norm.ppf(1 - (1 - confidence) / 2) * spread
    p_value = float(2 * norm.sf(abs(difference) / spread))
    return Difference(difference, (difference - half, difference + half), p_value)


def users_needed(*, difference: float, treatment_variance: float, control_variance: float,
                 alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Users per group a two-sided z-test at ``alpha`` needs to detect ``difference`` with ``power``, the
    groups' per-user variances given: n = (z_(1-alpha/2) + z_power)^2 (var_t + var_c) / difference^2.
    None when there is no difference to detect."""
    if difference == 0 or not math.isfinite(difference):
        return None
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return max(1, math.ceil(z * z * (treatment_variance + control_variance) / (difference * difference)))
