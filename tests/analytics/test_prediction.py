"""The engagement model learns a known signal and beats a constant baseline on held-out data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.services.analytics.prediction import (
    MIN_TRAINING,
    Post,
    predict,
    train,
)


def synthetic(n: int, seed: int) -> list[Post]:
    """Posts whose engagement depends on a call to action, the morning, media and length,
    plus noise; everything else is irrelevant."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    posts = []
    for i in range(n):
        at = start + timedelta(hours=rng.randrange(24 * 300))
        cta, media = rng.random() < 0.5, rng.random() < 0.4
        words = rng.randrange(5, 400)
        rate = 0.01 + 0.02 * cta + 0.015 * (8 <= at.hour <= 11) + 0.01 * media
        rate -= 0.00002 * words
        posts.append(
            Post(
                words=words,
                flesch_reading_ease=rng.uniform(20, 90),
                sentiment=rng.uniform(-1, 1),
                questions=rng.randrange(3),
                has_call_to_action=cta,
                hashtag_count=rng.randrange(6),
                has_media=media,
                platform=rng.choice(["X", "LINKEDIN"]),
                content_type="SOCIAL_POST",
                at=at,
                engagement_rate=max(0.0, rate + rng.gauss(0, 0.004)),
            )
        )
        del i
    return posts


def test_beats_the_constant_baseline_by_thirty_percent() -> None:
    trained = train(synthetic(1000, 1))
    ev = trained.evaluation
    print(f"held-out MAE: model {ev.mae:.5f}, constant baseline {ev.baseline_mae:.5f}")
    assert ev.n_test == 200
    assert ev.mae <= 0.7 * ev.baseline_mae
    assert ev.spearman is not None and ev.spearman > 0.7


def test_predictions_follow_the_signal_and_name_it() -> None:
    trained = train(synthetic(1000, 2))
    base = dict(
        words=80,
        flesch_reading_ease=60.0,
        sentiment=0.2,
        questions=0,
        hashtag_count=2,
        platform="X",
        content_type="SOCIAL_POST",
    )
    good = Post(
        **base, has_call_to_action=True, has_media=True, at=datetime(2026, 3, 4, 9, tzinfo=UTC)
    )  # type: ignore[arg-type]
    poor = Post(
        **base, has_call_to_action=False, has_media=False, at=datetime(2026, 3, 4, 22, tzinfo=UTC)
    )  # type: ignore[arg-type]
    high, low = predict(trained, good), predict(trained, poor)
    assert high.expected_engagement_rate > low.expected_engagement_rate + 0.03
    assert high.score > 75 > 35 > low.score
    assert 0 < high.confidence <= 1
    named = {f.name for f in high.factors[:3]}
    assert named == {"call to action", "posting time", "media"}, high.factors
    assert all(f.impact > 0 for f in high.factors[:3])
    assert all(f.impact < 0 for f in low.factors[:3])


def test_too_little_history_is_refused() -> None:
    with pytest.raises(ValueError, match=str(MIN_TRAINING)):
        train(synthetic(MIN_TRAINING - 1, 3))
