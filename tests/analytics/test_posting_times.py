"""Best posting times recover a planted weekday x hour peak and fall back to priors."""

from __future__ import annotations

import random

import pytest

from app.services.analytics.posting_times import HOURS, best_times, platform_prior


def planted(peak_day: int, peak_hour: int, n: int, seed: int) -> list[tuple[int, int, float]]:
    """Posts spread over the week; those within two hours of the peak engage more, all
    with noise larger than the effect of any single post."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        day, hour = rng.randrange(7), rng.randrange(24)
        distance = abs((day * 24 + hour) - (peak_day * 24 + peak_hour))
        distance = min(distance, HOURS - distance)
        rate = 0.02 + (0.03 if distance <= 1 else 0.012 if distance <= 3 else 0.0)
        rows.append((day, hour, max(0.0, rate + rng.gauss(0, 0.015))))
    return rows


def week_distance(a: tuple[int, int], b: tuple[int, int]) -> int:
    d = abs((a[0] * 24 + a[1]) - (b[0] * 24 + b[1]))
    return min(d, HOURS - d)


@pytest.mark.parametrize(("day", "hour", "seed"), [(2, 14, 1), (5, 20, 2), (0, 0, 3), (6, 23, 4)])
def test_recovers_a_planted_peak_within_an_hour(day: int, hour: int, seed: int) -> None:
    # The platform prior peaks elsewhere (LinkedIn: weekday mornings): history must win.
    found = best_times(planted(day, hour, 3000, seed), "LINKEDIN")
    assert found.source == "HISTORY"
    assert found.sample_size == 3000
    best = found.slots[0]
    assert week_distance((best.weekday, best.hour), (day, hour)) <= 1, found.slots
    assert best.lift > 1.2
    assert 0.5 < found.confidence <= 1.0


def test_thin_history_falls_back_to_the_platform_prior_and_says_so() -> None:
    found = best_times(planted(2, 14, 10, 5), "LINKEDIN")
    assert found.source == "PLATFORM_PRIOR"
    assert found.confidence == 0.0
    assert "Only 10 past posts" in found.explanation
    # LinkedIn's prior: a weekday morning or noon.
    assert all(s.weekday < 5 and 7 <= s.hour <= 13 for s in found.slots)


def test_priors_are_relative_weights_for_every_platform() -> None:
    for platform in ("X", "LINKEDIN", "FACEBOOK", "INSTAGRAM", "EMAIL", None, "UNKNOWN"):
        prior = platform_prior(platform)
        assert prior.shape == (HOURS,)
        assert prior.mean() == pytest.approx(1.0)
        assert (prior > 0).all()


def test_bad_cells_are_ignored() -> None:
    rows = [*planted(1, 9, 200, 6), (7, 3, 0.5), (1, 24, 0.5), (1, 2, float("nan"))]
    assert best_times(rows, "X").sample_size == 200
