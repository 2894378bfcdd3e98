"""When to post: engagement by weekday and hour, smoothed, with platform priors.

The week is 168 hours in a circle (Sunday 23:00 is next to Monday 00:00). Each past post
adds its engagement rate to the hour of the week it went out in (local time of the
requested zone). Sums and counts are smoothed with the same circular Gaussian kernel, so a
slot borrows strength from its neighbouring hours and days are not cut at midnight, then
each slot is shrunk toward the platform prior scaled to the workspace's own mean: a slot
with few posts says little on its own. With too little history the answer is the prior
alone, and says so.

Pure computation on at most 168-cell arrays: cheap enough for the event loop whatever the
history size (the history itself is aggregated in SQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.models.vocabulary import TimingSource as Source

HOURS = 168

# Rough shapes from public industry studies of when posts get engagement (weekday weight,
# peak local hours): only a starting point, replaced by the workspace's own data as soon
# as it has enough posts.
_PRIORS: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {
    "X": ((1.0, 1.1, 1.1, 1.05, 1.0, 0.7, 0.65), (9, 12, 17)),
    "LINKEDIN": ((0.95, 1.15, 1.2, 1.1, 0.9, 0.45, 0.4), (8, 10, 12)),
    "FACEBOOK": ((1.0, 1.05, 1.05, 1.05, 1.0, 0.8, 0.75), (9, 13, 19)),
    "INSTAGRAM": ((1.0, 1.05, 1.1, 1.05, 1.0, 0.85, 0.8), (11, 13, 19)),
    "THREADS": ((1.0, 1.05, 1.1, 1.05, 1.0, 0.85, 0.8), (9, 12, 19)),
    "MASTODON": ((1.0, 1.05, 1.05, 1.05, 1.0, 0.85, 0.85), (9, 13, 18)),
    "BLUESKY": ((1.0, 1.05, 1.05, 1.05, 1.0, 0.85, 0.85), (9, 13, 18)),
    "EMAIL": ((0.95, 1.15, 1.05, 1.15, 0.9, 0.5, 0.5), (6, 10, 14)),
}
_GENERIC = ((1.0, 1.05, 1.05, 1.05, 1.0, 0.8, 0.75), (9, 12, 18))


def platform_prior(platform: str | None) -> npt.NDArray[np.float64]:
    """168 relative weights (mean 1) for a platform; a generic shape when unknown."""
    days, peaks = _PRIORS.get(platform or "", _GENERIC)
    hours = np.arange(24)
    # Overnight is quiet everywhere; each peak hour is a bump of about two hours.
    curve = 0.25 + sum(np.exp(-0.5 * ((hours - p) / 1.5) ** 2) for p in peaks)
    grid = np.outer(np.asarray(days), curve).reshape(HOURS)
    return np.asarray(grid / grid.mean(), dtype=np.float64)


def _smooth(values: npt.NDArray[np.float64], sigma: float) -> npt.NDArray[np.float64]:
    """Circular Gaussian smoothing over the week (FFT convolution of 168 cells)."""
    offsets = np.minimum(np.arange(HOURS), HOURS - np.arange(HOURS))
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    smoothed = np.fft.irfft(np.fft.rfft(values) * np.fft.rfft(kernel), n=HOURS)
    return np.asarray(smoothed, dtype=np.float64)


@dataclass(frozen=True)
class Slot:
    weekday: int  # 0 = Monday, in the requested time zone
    hour: int
    # Expected engagement rate of a post in this hour, and how it compares to the average
    # hour (1.0 = average).
    expected_rate: float
    lift: float
    # Posts near this hour (kernel-weighted) behind the estimate.
    support: float


@dataclass(frozen=True)
class PostingTimes:
    slots: list[Slot]
    source: Source
    sample_size: int
    # 0-1: how much of the best slots' estimate comes from the workspace's own posts.
    confidence: float
    explanation: str


def best_times(
    samples: Iterable[tuple[int, int, float]], platform: str | None, **options: Any
) -> PostingTimes:
    """`samples`: (weekday 0-6, hour 0-23, engagement rate) of past posts, local time."""
    sums = np.zeros(HOURS)
    counts = np.zeros(HOURS)
    for weekday, hour, rate in samples:
        if 0 <= weekday < 7 and 0 <= hour < 24 and np.isfinite(rate):
            sums[weekday * 24 + hour] += rate
            counts[weekday * 24 + hour] += 1
    return from_cells(sums, counts, platform, **options)


def from_cells(
    sums: npt.NDArray[np.float64],
    counts: npt.NDArray[np.float64],
    platform: str | None,
    *,
    top: int = 5,
    min_samples: int = 30,
    sigma_hours: float = 1.5,
    prior_strength: float = 4.0,
    default_rate: float = 0.02,
) -> PostingTimes:
    """The same from per-hour-of-week sums of engagement rates and post counts (168 cells,
    Monday 00:00 first), as SQL aggregates them."""
    n = int(counts.sum())
    prior = platform_prior(platform)
    mean = float(sums.sum() / n) if n else default_rate
    if n < min_samples:
        expected = prior * mean
        support = np.zeros(HOURS)
        source = Source.PLATFORM_PRIOR
        explanation = (
            f"Only {n} past posts here (fewer than {min_samples}): these are typical "
            f"good times for {platform or 'social'} posts, not yet your own."
        )
    else:
        smooth_sums, support = _smooth(sums, sigma_hours), _smooth(counts, sigma_hours)
        # Shrink each hour toward the prior: `prior_strength` imaginary posts at the prior.
        expected = (smooth_sums + prior_strength * prior * mean) / (support + prior_strength)
        source = Source.HISTORY
        explanation = (
            f"From {n} of your past posts: engagement rate by weekday and hour, smoothed "
            "over neighbouring hours and shrunk toward the platform's typical pattern "
            "where you have few posts."
        )
    best = np.argsort(-expected, kind="stable")[:top]
    average = float(expected.mean()) or 1.0
    slots = [
        Slot(
            weekday=int(i) // 24,
            hour=int(i) % 24,
            expected_rate=float(expected[i]),
            lift=float(expected[i]) / average,
            support=float(support[i]),
        )
        for i in best
    ]
    own = support[best] / (support[best] + prior_strength) if source is Source.HISTORY else [0.0]
    return PostingTimes(
        slots=slots,
        source=source,
        sample_size=n,
        confidence=round(float(np.mean(own)), 3),
        explanation=explanation,
    )
