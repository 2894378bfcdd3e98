"""Recurring posts: the rule given when scheduling, and the series as a post shows it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.models import PostSeries
from app.services.publishing.recurrence_rules import Recurrence as Rule


@strawberry.input(
    description="Repeat the post every `everyDays` days at the same local time (DST-correct "
    "in the post's time zone), until a time or for a count of posts; at least one end. The "
    "next post is made when one is done; posts missed while publishing was down are skipped, "
    "never sent in a burst."
)
class RecurrenceInput:
    every_days: int = strawberry.field(description="Days between posts (1 to 366).")
    until: datetime | None = strawberry.field(
        default=None, description="No post after this time (at most two years on)."
    )
    count: int | None = strawberry.field(
        default=None, description="Posts in the series, the first included (1 to 1000)."
    )

    def to_rule(self) -> Rule:
        return Rule(every_days=self.every_days, until=self.until, count=self.count)


@strawberry.type(description="The rule of a recurring post's series, and where it stands.")
class Recurrence:
    every_days: int = strawberry.field(description="Days between posts.")
    until: datetime | None = strawberry.field(description="No post after this time.")
    count: int | None = strawberry.field(description="Posts in the series, the first included.")
    timezone: str = strawberry.field(description="IANA zone whose wall-clock time repeats.")
    cancelled_at: datetime | None = strawberry.field(
        description="When the series was cancelled (cancelScheduledPost with cancelSeries)."
    )
    ended_at: datetime | None = strawberry.field(
        description="When its last post was made (its end reached, or its content deleted)."
    )

    @classmethod
    def from_row(cls, row: PostSeries) -> Recurrence:
        return cls(
            every_days=row.every_days,
            until=row.until,
            count=row.count,
            timezone=row.timezone,
            cancelled_at=row.cancelled_at,
            ended_at=row.ended_at,
        )
