"""A/B significance against reference computations made independently of scipy."""

from __future__ import annotations

import math
import random

import pytest

from app.services.analytics.significance import Arm, probability_to_beat, verdict, z_test


def reference_z(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float]:
    """The textbook pooled z-test with the normal tail from math.erfc."""
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (s2 / n2 - s1 / n1) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


@pytest.mark.parametrize(
    ("control", "variant"),
    [
        ((200, 1000), (250, 1000)),
        ((48, 1200), (61, 1180)),
        ((5, 40), (4, 60)),
        ((1, 10**6), (30, 10**6)),
    ],
)
def test_z_test_matches_the_textbook_formula(
    control: tuple[int, int], variant: tuple[int, int]
) -> None:
    test = z_test(Arm(*control), Arm(*variant))
    assert test is not None
    z, p = reference_z(*control, *variant)
    assert test.z == pytest.approx(z, rel=1e-12)
    assert test.p_value == pytest.approx(p, rel=1e-9, abs=1e-15)


def test_a_known_example() -> None:
    # 20 % vs 25 % of 1,000 each: z = 0.05 / sqrt(0.225 * 0.775 * 0.002) = 2.677, p = 0.0074.
    test = z_test(Arm(200, 1000), Arm(250, 1000))
    assert test is not None
    assert round(test.z, 3) == 2.677
    assert round(test.p_value, 4) == 0.0074


def exact_probability(control: Arm, variant: Arm) -> float:
    """P(B > A) for Beta posteriors with integer parameters, in closed form (a sum over the
    variant's successes: Evan Miller's formula), in log space."""
    a_a, b_a = 1 + control.successes, 1 + control.trials - control.successes
    a_b, b_b = 1 + variant.successes, 1 + variant.trials - variant.successes

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    total = 0.0
    for i in range(a_b):
        total += math.exp(
            log_beta(a_a + i, b_a + b_b)
            - math.log(b_b + i)
            - log_beta(1 + i, b_b)
            - log_beta(a_a, b_a)
        )
    return total


@pytest.mark.parametrize(
    ("control", "variant"),
    [
        ((20, 100), (30, 100)),
        ((200, 1000), (250, 1000)),
        ((30, 30), (0, 30)),
        ((0, 0), (0, 0)),
        ((480, 20000), (530, 20000)),
    ],
)
def test_probability_to_beat_matches_the_closed_form(
    control: tuple[int, int], variant: tuple[int, int]
) -> None:
    got = probability_to_beat(Arm(*control), Arm(*variant))
    assert got == pytest.approx(exact_probability(Arm(*control), Arm(*variant)), abs=1e-6)


def test_probability_to_beat_agrees_with_simulation() -> None:
    rng = random.Random(7)
    control, variant = Arm(120, 1000), Arm(140, 1000)
    draws = 40_000
    wins = sum(rng.betavariate(141, 861) > rng.betavariate(121, 881) for _ in range(draws))
    assert probability_to_beat(control, variant) == pytest.approx(wins / draws, abs=0.01)


def test_a_winner_only_when_significant_with_enough_trials() -> None:
    clear = verdict(Arm(200, 1000), Arm(250, 1000))
    assert clear.better is True and "significant" in clear.reason
    worse = verdict(Arm(250, 1000), Arm(200, 1000))
    assert worse.better is False
    noise = verdict(Arm(100, 1000), Arm(105, 1000))
    assert noise.better is None and noise.p_value is not None and noise.p_value > 0.05
    early = verdict(Arm(2, 20), Arm(12, 20))
    assert early.better is None and "not enough data" in early.reason
    flat = verdict(Arm(0, 500), Arm(0, 500))
    assert flat.better is None and flat.z is None


def test_counts_are_validated() -> None:
    with pytest.raises(ValueError):
        Arm(11, 10)
    with pytest.raises(ValueError):
        Arm(-1, 10)
