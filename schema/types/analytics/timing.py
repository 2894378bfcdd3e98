"""optimalPostingTimes (the best local hours of the week to post, and why) and insights."""

from __future__ import annotations

import strawberry

from app.services.analytics import insights, posting_times
from schema.types.vocabulary import Platform, TimingSource

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


@strawberry.type(description="One hour of the week to post in, in the requested time zone.")
class PostingTime:
    weekday: int = strawberry.field(description="0 = Monday ... 6 = Sunday.")
    weekday_name: str = strawberry.field(description="MONDAY ... SUNDAY.")
    hour: int = strawberry.field(description="Local hour, 0-23 (the slot is hour:00-hour:59).")
    local_time: str = strawberry.field(description="The hour as HH:00.")
    expected_engagement_rate: float = strawberry.field(
        description="Expected (likes + comments + shares) / impressions of a post then."
    )
    lift: float = strawberry.field(
        description="Against the average hour of the week (1.0 = average, 1.3 = 30% better)."
    )
    support: float = strawberry.field(
        description="Past posts at or near this hour behind the estimate (weighted by "
        "distance; 0 when the answer is the platform prior)."
    )


@strawberry.type(description="The best hours of the week to post, with how sure that is.")
class OptimalPostingTimes:
    slots: list[PostingTime] = strawberry.field(description="Best first.")
    source: TimingSource = strawberry.field(description="Your history or the platform prior.")
    sample_size: int = strawberry.field(description="Published posts with impressions used.")
    confidence: float = strawberry.field(
        description="0-1: how much of the best slots' estimate comes from your own posts."
    )
    explanation: str = strawberry.field(description="How the answer was reached, in words.")

    @classmethod
    def of(cls, value: posting_times.PostingTimes) -> OptimalPostingTimes:
        return cls(
            slots=[
                PostingTime(
                    weekday=s.weekday,
                    weekday_name=WEEKDAYS[s.weekday],
                    hour=s.hour,
                    local_time=f"{s.hour:02d}:00",
                    expected_engagement_rate=s.expected_rate,
                    lift=s.lift,
                    support=s.support,
                )
                for s in value.slots
            ],
            source=value.source,
            sample_size=value.sample_size,
            confidence=value.confidence,
            explanation=value.explanation,
        )


@strawberry.type(description="A statement computed from your posts, with the numbers behind it.")
class Insight:
    statement: str = strawberry.field(description="The finding, in one sentence with its numbers.")
    kind: str = strawberry.field(
        description="What was compared: tag, content_type, media, cta, questions, length, "
        "weekend, daypart or platform."
    )
    platform: Platform | None = strawberry.field(
        description="The platform it holds on; null: across platforms."
    )
    ratio: float = strawberry.field(
        description="Mean engagement rate of the better group over the other's (above 1)."
    )
    better_rate: float = strawberry.field(description="The better group's mean engagement rate.")
    other_rate: float = strawberry.field(description="The other group's mean engagement rate.")
    better_count: int = strawberry.field(description="Posts in the better group.")
    other_count: int = strawberry.field(description="Posts in the other group.")
    p_value: float = strawberry.field(
        description="Mann-Whitney U two-sided p-value of the difference (it survived the "
        "Benjamini-Hochberg correction over all comparisons at a 5% false-discovery rate)."
    )

    @classmethod
    def of(cls, value: insights.Insight) -> Insight:
        return cls(
            statement=value.statement,
            kind=value.kind,
            platform=Platform(value.platform) if value.platform else None,
            ratio=value.ratio,
            better_rate=value.better_rate,
            other_rate=value.other_rate,
            better_count=value.better_n,
            other_count=value.other_n,
            p_value=value.p_value,
        )
