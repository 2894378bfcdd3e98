"""optimalPostingTimes: the best local hours of the week to post, and why."""

from __future__ import annotations

import strawberry

from app.services.analytics import posting_times
from schema.types.vocabulary import TimingSource

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
