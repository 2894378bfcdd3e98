"""Scheduled posts, their per-account targets, the calendar and status changes."""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Iterable
from datetime import UTC, date, datetime

import strawberry
from strawberry import relay

from app.models import PostTarget as TargetRow
from app.models import ScheduledPost as PostRow
from app.services.publishing.calendar import CalendarDay as CalendarDayValue
from app.services.publishing.calendar import PostFilter, post_status
from app.services.publishing.follow import TargetChange
from app.services.publishing.recurrence_rules import upcoming
from app.services.publishing.scheduling import ScheduleRequest
from schema.context import Info, visible_rows
from schema.ids import optional_id, parse_id
from schema.types.content.items import Content
from schema.types.errors import UserError
from schema.types.publishing.accounts import SocialAccount
from schema.types.publishing.series import Recurrence, RecurrenceInput
from schema.types.vocabulary import CommentStatus, Platform, TargetStatus


@strawberry.type(description="A scheduled post's delivery to one account.")
class PostTarget(relay.Node):
    id: relay.NodeID[str]
    status: TargetStatus = strawberry.field(description="Where its delivery stands.")
    platform: Platform = strawberry.field(description="The account's platform.")
    scheduled_at: datetime = strawberry.field(description="When it is due (UTC).")
    timezone: str = strawberry.field(description="IANA zone the time was chosen in.")
    attempts: int = strawberry.field(description="Attempts made so far.")
    next_attempt_at: datetime | None = strawberry.field(
        description="PENDING: when the next attempt starts (the due time, or a retry's)."
    )
    platform_post_id: str | None = strawberry.field(description="The platform's id of the post.")
    platform_url: str | None = strawberry.field(description="Where the post can be seen.")
    error: str | None = strawberry.field(
        description="Why the last attempt did not publish (the platform's message), or why the "
        "outcome is UNKNOWN."
    )
    published_at: datetime | None = strawberry.field(description="When it went out.")
    updated_at: datetime = strawberry.field(description="Last change.")
    first_comment: str | None = strawberry.field(
        description="The comment posted under the post once it is out (null: none)."
    )
    comment_status: CommentStatus = strawberry.field(
        description="Where the first comment stands (its own step, after the post)."
    )
    comment_attempts: int = strawberry.field(description="Attempts at the first comment so far.")
    comment_platform_id: str | None = strawberry.field(
        description="The platform's id of the first comment, once posted."
    )
    comment_error: str | None = strawberry.field(
        description="Why the first comment did not post (or why its outcome is UNKNOWN)."
    )
    account_id: strawberry.Private[uuid.UUID]
    post_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The account it goes to (null if it was deleted).")
    async def account(self, info: Info) -> SocialAccount | None:
        row = await info.context.loaders.publishing.accounts.load(self.account_id)
        return SocialAccount.from_row(row) if row is not None else None

    @classmethod
    def from_row(cls, row: TargetRow) -> PostTarget:
        return cls(
            id=str(row.id),
            status=TargetStatus(row.status),
            platform=Platform(row.platform),
            scheduled_at=row.scheduled_at,
            timezone=row.timezone,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at if row.status == TargetStatus.PENDING else None,
            platform_post_id=row.platform_post_id,
            platform_url=row.platform_url,
            error=row.error,
            published_at=row.published_at,
            updated_at=row.updated_at,
            first_comment=row.first_comment,
            comment_status=CommentStatus(row.comment_status),
            comment_attempts=row.comment_attempts,
            comment_platform_id=row.comment_platform_id,
            comment_error=row.comment_error,
            account_id=row.social_account_id,
            post_id=row.post_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PostTarget | None]:
        rows = await visible_rows(info.context, info.context.loaders.publishing.targets, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


async def _targets(info: Info, post_id: uuid.UUID) -> list[TargetRow]:
    return await info.context.loaders.publishing.targets_by_post.load(post_id)


def _first(rows: list[TargetRow], attribute: str) -> object:
    for row in rows:
        value = getattr(row, attribute)
        if value is not None:
            return value
    return None


@strawberry.type(
    description="A content item (or one variation) scheduled to one or more accounts. Its "
    "status and platform fields sum up its targets; each target has its own."
)
class ScheduledPost(relay.Node):
    id: relay.NodeID[str]
    scheduled_at: datetime = strawberry.field(description="When it is due (UTC).")
    timezone: str = strawberry.field(description="IANA zone the time was chosen in.")
    created_at: datetime = strawberry.field(description="When it was scheduled.")
    occurrence_index: int | None = strawberry.field(
        description="A recurring post's place in its series: 0 for the first (null: not recurring)."
    )
    content_id: strawberry.Private[uuid.UUID]
    variation_id: strawberry.Private[uuid.UUID | None]
    series_id: strawberry.Private[uuid.UUID | None]
    row: strawberry.Private[PostRow]

    @strawberry.field(description="The series' rule, for a recurring post (null otherwise).")
    async def recurrence(self, info: Info) -> Recurrence | None:
        if self.series_id is None:
            return None
        row = await info.context.loaders.publishing.series.load(self.series_id)
        return Recurrence.from_row(row) if row is not None else None

    @strawberry.field(
        description="When the series' next post after this one is due: the one made already, "
        "else the next future slot (null: not recurring, or the series stops before it)."
    )
    async def next_occurrence_at(self, info: Info) -> datetime | None:
        if self.series_id is None:
            return None
        loaders = info.context.loaders.publishing
        made = await loaders.next_occurrence.load(uuid.UUID(self.id))
        if made is not None:
            return made
        series = await loaders.series.load(self.series_id)
        return upcoming(series, self.row, datetime.now(UTC)) if series is not None else None

    @strawberry.field(
        description="PUBLISHING while any target is sent, then PENDING while any waits, "
        "UNKNOWN or FAILED if any ended so, PUBLISHED when every target not cancelled went "
        "out, CANCELLED when all were cancelled."
    )
    async def status(self, info: Info) -> TargetStatus:
        return post_status([t.status for t in await _targets(info, uuid.UUID(self.id))])

    @strawberry.field(description="When the first target went out.")
    async def published_at(self, info: Info) -> datetime | None:
        times = [t.published_at for t in await _targets(info, uuid.UUID(self.id))]
        return min((t for t in times if t is not None), default=None)

    @strawberry.field(description="The first published target's platform post id.")
    async def platform_post_id(self, info: Info) -> str | None:
        value = _first(await _targets(info, uuid.UUID(self.id)), "platform_post_id")
        return str(value) if value is not None else None

    @strawberry.field(description="The first published target's URL.")
    async def platform_url(self, info: Info) -> str | None:
        value = _first(await _targets(info, uuid.UUID(self.id)), "platform_url")
        return str(value) if value is not None else None

    @strawberry.field(description="The first target's error, if any target has one.")
    async def error(self, info: Info) -> str | None:
        rows = await _targets(info, uuid.UUID(self.id))
        value = _first([r for r in rows if r.status != TargetStatus.PUBLISHED], "error")
        return str(value) if value is not None else None

    @strawberry.field(description="One delivery per account, each with its own status.")
    async def targets(self, info: Info) -> list[PostTarget]:
        return [PostTarget.from_row(r) for r in await _targets(info, uuid.UUID(self.id))]

    @strawberry.field(description="The content it publishes (null if no longer visible).")
    async def content(self, info: Info) -> Content | None:
        [node] = await Content.resolve_nodes(info=info, node_ids=[str(self.content_id)])
        return node

    @classmethod
    def from_row(cls, row: PostRow) -> ScheduledPost:
        return cls(
            id=str(row.id),
            scheduled_at=row.scheduled_at,
            timezone=row.timezone,
            created_at=row.created_at,
            occurrence_index=row.occurrence_index,
            content_id=row.content_id,
            variation_id=row.variation_id,
            series_id=row.series_id,
            row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ScheduledPost | None]:
        rows = await visible_rows(info.context, info.context.loaders.publishing.posts, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


@strawberry.input(
    description="What to schedule, where and when. Give contentId or variationId. With "
    "contentId each account gets the content's variation for its platform when there is "
    "one, else the content's own text."
)
class SchedulePostInput:
    content_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The content item."
    )
    variation_id: relay.GlobalID | None = strawberry.field(
        default=None, description="One platform variation (its accounts must be that platform)."
    )
    social_account_ids: list[relay.GlobalID] | None = strawberry.field(
        default=None, description="Accounts to publish to (1 to 20)."
    )
    social_account_id: relay.GlobalID | None = strawberry.field(
        default=None, description="One account (same as a one-element socialAccountIds)."
    )
    scheduled_at: datetime = strawberry.field(
        description="When to publish. Without an offset it is a wall-clock time in `timezone` "
        "(09:00 stays 09:00 local across DST changes)."
    )
    timezone: str = strawberry.field(
        default="UTC", description="IANA zone, e.g. Europe/Berlin (the calendar shows it there)."
    )
    first_comment: str | None = strawberry.field(
        default=None,
        description="A comment posted under each target's post once it is out, as its own step "
        "with its own retries (not for webhook or email accounts; within the platform's text "
        "rules).",
    )
    recurrence: RecurrenceInput | None = strawberry.field(
        default=None, description="Repeat the post every N days (null: once)."
    )

    def to_request(self) -> ScheduleRequest:
        many = self.social_account_ids or []
        ids = [parse_id(i, "SocialAccount", "socialAccountIds") for i in many]
        if self.social_account_id is not None:
            ids.append(parse_id(self.social_account_id, "SocialAccount", "socialAccountId"))
        return ScheduleRequest(
            content_id=optional_id(self.content_id, "Content", "contentId"),
            variation_id=optional_id(self.variation_id, "ContentVariation", "variationId"),
            account_ids=ids,
            scheduled_at=self.scheduled_at,
            timezone=self.timezone,
            first_comment=self.first_comment,
            recurrence=self.recurrence.to_rule() if self.recurrence is not None else None,
        )


@strawberry.input(description="A new time for a post's targets that have not gone out.")
class ReschedulePostInput:
    post_id: relay.GlobalID = strawberry.field(description="The scheduled post.")
    scheduled_at: datetime = strawberry.field(
        description="The new time; without an offset, a wall-clock time in `timezone`."
    )
    timezone: str | None = strawberry.field(
        default=None, description="IANA zone; null keeps the post's."
    )
    first_comment: str | None = strawberry.field(
        default=None,
        description="A new first comment for the targets not out yet (null keeps theirs; an "
        "empty string removes it).",
    )


@strawberry.input(description="Narrow a list of scheduled posts.")
class ScheduledPostFilterInput:
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="Due at or after this time."
    )
    to: datetime | None = strawberry.field(default=None, description="Due before this time.")
    status: TargetStatus | None = strawberry.field(
        default=None, description="Only posts with a target in this status."
    )
    platform: Platform | None = strawberry.field(
        default=None, description="Only posts with a target on this platform."
    )
    account_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Only posts with a target on this account."
    )

    def to_filter(self) -> PostFilter:
        return PostFilter(
            starts=self.from_,
            ends=self.to,
            status=self.status,
            platform=self.platform,
            account_id=optional_id(self.account_id, "SocialAccount", "filter.accountId"),
        )


@strawberry.type(
    description="Result of schedulePost, reschedulePost, cancelScheduledPost and publishNow."
)
class ScheduledPostPayload:
    post: ScheduledPost | None = strawberry.field(description="The post. Null on errors.")
    errors: list[UserError] = strawberry.field(description="Why it was refused, if it was.")

    @classmethod
    def of(cls, row: PostRow | None, errors: list[UserError]) -> ScheduledPostPayload:
        return cls(post=ScheduledPost.from_row(row) if row else None, errors=errors)


@strawberry.type(description="Result of confirmPostPublished and retryPost.")
class PostTargetPayload:
    target: PostTarget | None = strawberry.field(description="The target. Null on errors.")
    errors: list[UserError] = strawberry.field(description="Why it was refused, if it was.")

    @classmethod
    def of(cls, row: TargetRow | None, errors: list[UserError]) -> PostTargetPayload:
        return cls(target=PostTarget.from_row(row) if row else None, errors=errors)


@strawberry.type(description="One local day of the calendar.")
class CalendarDay:
    date: date = strawberry.field(description="The day, in the calendar's time zone.")
    posts: list[ScheduledPost] = strawberry.field(description="Its posts, in time order.")

    @classmethod
    def of(cls, value: CalendarDayValue) -> CalendarDay:
        return cls(date=value.day, posts=[ScheduledPost.from_row(p) for p in value.posts])


@strawberry.type(description="A target's delivery changed (read from the stored row).")
class PostStatusChange:
    target: PostTarget = strawberry.field(description="The target, as stored now.")
    status: TargetStatus = strawberry.field(description="Its status now.")
    sequence: int = strawberry.field(
        description="The target's change counter: higher is later (per target)."
    )
    catch_up: bool = strawberry.field(
        description="True when delivered while catching up after missed events."
    )

    @strawberry.field(description="The post the target belongs to.")
    async def post(self, info: Info) -> ScheduledPost | None:
        [node] = await ScheduledPost.resolve_nodes(info=info, node_ids=[str(self.target.post_id)])
        return node

    def shared_key(self) -> Hashable:
        # Results shared by every subscriber of the workspace (schema.shared_events, whose
        # AUDITED covers the fields below); equality of the whole event is checked on a hit.
        return (self.target.id, self.sequence, self.catch_up)

    @classmethod
    def of(cls, change: TargetChange) -> PostStatusChange:
        row = change.target
        return cls(
            target=PostTarget.from_row(row),
            status=TargetStatus(row.status),
            sequence=row.event_seq,
            catch_up=change.catch_up,
        )
