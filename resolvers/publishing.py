"""Publishing: connected accounts, scheduling, the calendar, delivery status."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from app.models.vocabulary import Platform as PlatformValue
from app.services.publishing import (
    accounts,
    bluesky_account,
    calendar,
    connections,
    follow,
    resolution,
    scheduling,
    slots,
)
from resolvers.common import (
    After,
    First,
    WorkspaceId,
    attempt,
    principal_of,
    state_of,
    workspace_of,
    workspace_page,
)
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection
from schema.types.publishing.accounts import (
    AddToQueueInput,
    ConnectBlueskyAccountInput,
    ConnectEmailAccountInput,
    ConnectWebhookAccountInput,
    PostingSlot,
    PostingSlotsPayload,
    SetPostingSlotsInput,
    SocialAccount,
    SocialAccountPayload,
    StartAccountConnectionPayload,
)
from schema.types.publishing.posts import (
    CalendarDay,
    PostStatusChange,
    PostTargetPayload,
    ReschedulePostInput,
    ScheduledPost,
    ScheduledPostFilterInput,
    ScheduledPostPayload,
    SchedulePostInput,
)
from schema.types.vocabulary import Platform

PostId = Annotated[
    relay.GlobalID, strawberry.argument(description="Global ID of the scheduled post.")
]
TargetId = Annotated[
    relay.GlobalID, strawberry.argument(description="Global ID of the post target.")
]


@strawberry.type
class PublishingQuery:
    @strawberry.field(
        description="A workspace's connected accounts, newest first (disconnected ones only "
        "when asked). Readers of the workspace."
    )
    async def social_accounts(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 50,
        after: After = None,
        include_disconnected: Annotated[
            bool, strawberry.argument(description="Also list disconnected accounts.")
        ] = False,
    ) -> Connection[SocialAccount]:
        page = await workspace_page(
            info,
            accounts.list_accounts,
            workspace_id,
            first,
            after,
            include_disconnected=include_disconnected,
        )
        return Connection.of(page, SocialAccount.from_row)

    @strawberry.field(
        description="A workspace's scheduled posts, soonest first. Readers of the workspace."
    )
    async def scheduled_posts(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 50,
        after: After = None,
        filter: Annotated[
            ScheduledPostFilterInput | None, strawberry.argument(description="Narrow the list.")
        ] = None,
    ) -> Connection[ScheduledPost]:
        page = await workspace_page(
            info,
            calendar.list_posts,
            workspace_id,
            first,
            after,
            filters=(filter or ScheduledPostFilterInput()).to_filter(),
        )
        return Connection.of(page, ScheduledPost.from_row)

    @strawberry.field(
        description="Every local day from `from` to `to` in `timezone` (at most 93), each "
        "with its posts: a post is on the day its time falls on there, DST included. Times "
        "without an offset are read in `timezone`. Readers of the workspace."
    )
    async def calendar(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        from_: Annotated[
            datetime, strawberry.argument(name="from", description="Start (inclusive).")
        ],
        to: Annotated[datetime, strawberry.argument(description="End (exclusive).")],
        timezone: Annotated[
            str, strawberry.argument(description="IANA zone the days are counted in.")
        ] = "UTC",
    ) -> list[CalendarDay]:
        days = await calendar.calendar(
            state_of(info), principal_of(info), workspace_of(workspace_id), from_, to, timezone
        )
        return [CalendarDay.of(day) for day in days]


@strawberry.type
class PublishingMutation:
    @strawberry.mutation(
        description="Connect a webhook: each post is POSTed there as signed JSON. Requires "
        "admin role."
    )
    async def connect_webhook_account(
        self,
        info: Info,
        input: Annotated[ConnectWebhookAccountInput, strawberry.argument(description="Where.")],
    ) -> SocialAccountPayload:
        call = accounts.connect_webhook(
            state_of(info),
            principal_of(info),
            parse_id(input.workspace_id, "Workspace", "workspaceId"),
            name=input.name,
            url=input.url,
            secret=input.secret,
        )
        return SocialAccountPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Connect an email list: each post is mailed to the recipients. Requires "
        "admin role."
    )
    async def connect_email_account(
        self,
        info: Info,
        input: Annotated[ConnectEmailAccountInput, strawberry.argument(description="Where.")],
    ) -> SocialAccountPayload:
        call = accounts.connect_email(state_of(info), principal_of(info), input.to_request())
        return SocialAccountPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Begin connecting an OAuth platform (X, LinkedIn, Facebook Pages, "
        "Instagram, Threads; Mastodon with `instanceUrl`): returns the platform's authorize "
        "URL. The callback stores the account (Facebook: every Page you manage; Instagram: "
        "every linked business account). Requires admin role."
    )
    async def start_account_connection(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        platform: Annotated[Platform, strawberry.argument(description="Which platform.")],
        instance_url: Annotated[
            str | None,
            strawberry.argument(description="Mastodon only: the server, e.g. mastodon.social."),
        ] = None,
    ) -> StartAccountConnectionPayload:
        url, errors = await attempt(
            connections.start(
                state_of(info),
                principal_of(info),
                workspace_of(workspace_id),
                PlatformValue(platform.value),
                instance_url=instance_url,
            )
        )
        return StartAccountConnectionPayload(authorize_url=url, errors=errors)

    @strawberry.mutation(
        description="Connect a Bluesky account with a handle and an app password (checked "
        "by signing in). Requires admin role."
    )
    async def connect_bluesky_account(
        self,
        info: Info,
        input: Annotated[ConnectBlueskyAccountInput, strawberry.argument(description="Who.")],
    ) -> SocialAccountPayload:
        call = bluesky_account.connect_bluesky(
            state_of(info),
            principal_of(info),
            parse_id(input.workspace_id, "Workspace", "workspaceId"),
            handle=input.handle,
            app_password=input.app_password,
        )
        return SocialAccountPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Disconnect an account: its credentials are erased and its posts still "
        "waiting fail with the reason. Requires admin role."
    )
    async def disconnect_social_account(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="Account ID.")],
    ) -> SocialAccountPayload:
        call = accounts.disconnect(
            state_of(info), principal_of(info), parse_id(id, "SocialAccount")
        )
        return SocialAccountPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Schedule content (or one variation) to one or more accounts; the content "
        "becomes SCHEDULED. Refused with a user error for a time in the past, unapproved "
        "content in a workspace requiring approval, text or media that break a platform's "
        "rules, or an account that is not connected. Requires admin role."
    )
    async def schedule_post(
        self,
        info: Info,
        input: Annotated[SchedulePostInput, strawberry.argument(description="What and when.")],
    ) -> ScheduledPostPayload:
        call = scheduling.schedule_post(state_of(info), principal_of(info), input.to_request())
        return ScheduledPostPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Replace an account's weekly posting slots (local times in `timezone`, "
        "DST-correct). Requires admin role."
    )
    async def set_posting_slots(
        self,
        info: Info,
        input: Annotated[SetPostingSlotsInput, strawberry.argument(description="The slots.")],
    ) -> PostingSlotsPayload:
        rows, errors = await attempt(
            slots.set_slots(
                state_of(info),
                principal_of(info),
                parse_id(input.social_account_id, "SocialAccount", "socialAccountId"),
                [s.to_slot() for s in input.slots],
                input.timezone,
            )
        )
        return PostingSlotsPayload(
            slots=[PostingSlot.from_row(r) for r in rows] if rows is not None else None,
            errors=errors,
        )

    @strawberry.mutation(
        description="Schedule content at the account's next free posting slot (the same "
        "checks as schedulePost). Requires admin role."
    )
    async def add_to_queue(
        self,
        info: Info,
        input: Annotated[AddToQueueInput, strawberry.argument(description="What and where.")],
    ) -> ScheduledPostPayload:
        call = slots.add_to_queue(
            state_of(info),
            principal_of(info),
            parse_id(input.content_id, "Content", "contentId"),
            parse_id(input.social_account_id, "SocialAccount", "socialAccountId"),
        )
        return ScheduledPostPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Move a post's targets that have not gone out to a new time. Requires "
        "admin role."
    )
    async def reschedule_post(
        self,
        info: Info,
        input: Annotated[ReschedulePostInput, strawberry.argument(description="The new time.")],
    ) -> ScheduledPostPayload:
        call = scheduling.reschedule_post(
            state_of(info),
            principal_of(info),
            parse_id(input.post_id, "ScheduledPost", "postId"),
            input.scheduled_at,
            input.timezone,
            input.first_comment,
        )
        return ScheduledPostPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Cancel what of a post has not gone out (PENDING or UNKNOWN targets); the "
        "content goes back to APPROVED when nothing of it is left. With cancelSeries, a "
        "recurring post's whole series stops: no further post is made and every one not out "
        "yet is cancelled. Requires admin role."
    )
    async def cancel_scheduled_post(
        self,
        info: Info,
        id: PostId,
        cancel_series: Annotated[
            bool,
            strawberry.argument(
                description="Also stop the post's recurring series (an error if it has none)."
            ),
        ] = False,
    ) -> ScheduledPostPayload:
        call = scheduling.cancel_post(
            state_of(info),
            principal_of(info),
            parse_id(id, "ScheduledPost"),
            cancel_series=cancel_series,
        )
        return ScheduledPostPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Publish a scheduled post's waiting targets now. Requires admin role."
    )
    async def publish_now(self, info: Info, id: PostId) -> ScheduledPostPayload:
        call = scheduling.publish_now(
            state_of(info), principal_of(info), parse_id(id, "ScheduledPost")
        )
        return ScheduledPostPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Resolve an UNKNOWN target: you checked, and it did go out. Requires "
        "admin role."
    )
    async def confirm_post_published(
        self,
        info: Info,
        id: TargetId,
        platform_url: Annotated[
            str | None, strawberry.argument(description="Where it can be seen, if you know.")
        ] = None,
        platform_post_id: Annotated[
            str | None, strawberry.argument(description="The platform's id of it, if known.")
        ] = None,
    ) -> PostTargetPayload:
        call = resolution.confirm_published(
            state_of(info),
            principal_of(info),
            parse_id(id, "PostTarget"),
            platform_url=platform_url,
            platform_post_id=platform_post_id,
        )
        return PostTargetPayload.of(*await attempt(call))

    @strawberry.mutation(
        description="Send an UNKNOWN or FAILED target again now, with fresh attempts (for "
        "UNKNOWN: you checked, and it did not go out). Requires admin role."
    )
    async def retry_post(self, info: Info, id: TargetId) -> PostTargetPayload:
        call = resolution.retry_target(
            state_of(info), principal_of(info), parse_id(id, "PostTarget")
        )
        return PostTargetPayload.of(*await attempt(call))


@strawberry.type
class PublishingSubscription:
    @strawberry.subscription(
        description="Every change of a workspace's post deliveries (each target's status, as "
        "stored), as it happens; after missed events, the targets changed meanwhile "
        "(catchUp). Readers of the workspace."
    )
    async def post_status_changed(
        self, info: Info, workspace_id: WorkspaceId
    ) -> AsyncGenerator[PostStatusChange, None]:
        state = state_of(info)
        stream = follow.follow(
            state.session_factory, state.hub, principal_of(info), workspace_of(workspace_id)
        )
        async for change in stream:
            info.context.fresh_loaders()
            yield PostStatusChange.of(change)
