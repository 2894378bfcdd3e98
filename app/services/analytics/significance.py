"""Whether one A/B variant beats the control, from counts of successes out of trials.

Two views of the same counts, both computed exactly rather than by simulation, so a test's
page shows the same figures on every read:

- `z_test`: the pooled two-proportion z-test (H0: both rates are equal), two-sided p-value;
- `probability_to_beat`: with a uniform Beta(1, 1) prior, the posterior of each rate is
  Beta(1 + successes, 1 + failures), and P(variant > control) = ∫ f_v(x) F_c(x) dx,
  integrated numerically over where the variant's posterior has its mass.

`verdict` declares a winner only when the difference is significant and both arms have
enough trials: a "winner" after twenty views is noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import integrate, stats


@dataclass(frozen=True)
class Arm:
    """One arm of a test: `successes` (clicks, conversions...) out of `trials` (views...)."""

    successes: int
    trials: int

    def __post_init__(self) -> None:
        if self.trials < 0 or not 0 <= self.successes <= self.trials:
            raise ValueError("successes must be between 0 and trials")

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float


def z_test(control: Arm, variant: Arm) -> ZTest | None:
    """The pooled two-proportion z-test; None when it is undefined (an empty arm, or a
    pooled rate of 0 or 1: no variance to compare against)."""
    if control.trials == 0 or variant.trials == 0:
        return None
    pooled = (control.successes + variant.successes) / (control.trials + variant.trials)
    variance = pooled * (1 - pooled) * (1 / control.trials + 1 / variant.trials)
    if variance <= 0:
        return None
    z = ((variant.successes / variant.trials) - (control.successes / control.trials)) / (
        math.sqrt(variance)
    )
    return ZTest(z=z, p_value=float(2 * stats.norm.sf(abs(z))))


def probability_to_beat(control: Arm, variant: Arm) -> float:
    """P(variant's true rate > control's) under Beta(1, 1) priors."""
    control_post = stats.beta(1 + control.successes, 1 + control.trials - control.successes)
    variant_post = stats.beta(1 + variant.successes, 1 + variant.trials - variant.successes)
    # With thousands of trials the posterior is a narrow spike: integrating over [0, 1]
    # blindly can step over it. Its central 1 - 2e-12 holds all that matters.
    low, high = (float(v) for v in variant_post.ppf([1e-12, 1 - 1e-12]))
    value, _error = integrate.quad(
        lambda x: float(variant_post.pdf(x) * control_post.cdf(x)),
        low,
        high,
        limit=200,
        epsabs=1e-10,
    )
    return min(1.0, max(0.0, value))


@dataclass(frozen=True)
class Verdict:
    """The comparison of one variant with the control."""

    z: float | None
    p_value: float | None
    probability_to_beat: float
    # True when the variant is significantly better (p < alpha) with enough trials; False
    # when it is significantly worse; None while nothing is significant yet.
    better: bool | None
    reason: str


def verdict(control: Arm, variant: Arm, *, alpha: float = 0.05, min_trials: int = 100) -> Verdict:
    test = z_test(control, variant)
    beat = probability_to_beat(control, variant)
    if min(control.trials, variant.trials) < min_trials:
        reason = f"not enough data yet: each arm needs at least {min_trials} trials"
        return Verdict(test.z if test else None, test.p_value if test else None, beat, None, reason)
    if test is None:
        return Verdict(None, None, beat, None, "no difference to test: the rates are 0 or 1")
    if test.p_value >= alpha:
        reason = f"not significant (p = {test.p_value:.3g} >= {alpha})"
        return Verdict(test.z, test.p_value, beat, None, reason)
    better = test.z > 0
    reason = f"significant (p = {test.p_value:.3g} < {alpha}): the variant is " + (
        "better" if better else "worse"
    )
    return Verdict(test.z, test.p_value, beat, better, reason)
