"""Connected social accounts as admins see them: never a secret, a token or a password."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, time

import strawberry
from strawberry import relay

from app.errors import BadUserInput
from app.models import PostingSlot as SlotRow
from app.models import SocialAccount as AccountRow
from app.services.publishing.accounts import EmailAccountRequest, SmtpSettings
from app.services.publishing.slots import Slot
from schema.context import Info, visible_rows
from schema.ids import parse_id
from schema.types.errors import UserError
from schema.types.vocabulary import AccountStatus, Platform


@strawberry.type(description="A weekly local time an account posts at (its posting queue).")
class PostingSlot:
    weekday: int = strawberry.field(description="0 Monday to 6 Sunday.")
    time: str = strawberry.field(description="Local time, HH:MM.")
    timezone: str = strawberry.field(description="IANA zone the time is in.")

    @classmethod
    def from_row(cls, row: SlotRow) -> PostingSlot:
        at = row.local_time.strftime("%H:%M")
        return cls(weekday=row.weekday, time=at, timezone=row.timezone)


@strawberry.type(description="An account a workspace publishes to (a page, a profile, a webhook).")
class SocialAccount(relay.Node):
    id: relay.NodeID[str]
    platform: Platform = strawberry.field(description="Where it publishes.")
    name: str = strawberry.field(description="What the workspace calls it.")
    status: AccountStatus = strawberry.field(description="Whether it can publish.")
    status_reason: str | None = strawberry.field(
        description="Why it needs reconnecting (the platform's words), if it does."
    )
    external_id: str | None = strawberry.field(
        description="The platform's id of the account (user, page, DID), where it has one."
    )
    token_expires_at: datetime | None = strawberry.field(
        description="When its access token expires, for platforms with expiring tokens."
    )
    created_at: datetime = strawberry.field(description="When it was connected first.")
    updated_at: datetime = strawberry.field(description="Last change.")

    @strawberry.field(description="Its weekly posting slots (addToQueue fills them).")
    async def posting_slots(self, info: Info) -> list[PostingSlot]:
        rows = await info.context.loaders.publishing.slots_by_account.load(uuid.UUID(self.id))
        return [PostingSlot.from_row(r) for r in rows]

    @classmethod
    def from_row(cls, row: AccountRow) -> SocialAccount:
        return cls(
            id=str(row.id),
            platform=Platform(row.platform),
            name=row.name,
            status=AccountStatus(row.status),
            status_reason=row.status_reason,
            external_id=row.external_id,
            token_expires_at=row.token_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[SocialAccount | None]:
        rows = await visible_rows(info.context, info.context.loaders.publishing.accounts, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


@strawberry.type(
    description="Result of connectWebhookAccount, connectEmailAccount, connectBlueskyAccount, "
    "disconnectSocialAccount."
)
class SocialAccountPayload:
    account: SocialAccount | None = strawberry.field(description="The account. Null on errors.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")

    @classmethod
    def of(cls, row: AccountRow | None, errors: list[UserError]) -> SocialAccountPayload:
        return cls(account=SocialAccount.from_row(row) if row else None, errors=errors)


@strawberry.input(description="A webhook to publish to: posts arrive as signed JSON POSTs.")
class ConnectWebhookAccountInput:
    workspace_id: relay.GlobalID = strawberry.field(description="Workspace it belongs to.")
    name: str = strawberry.field(description="What to call it (1 to 200 characters).")
    url: str = strawberry.field(
        description="Where posts are POSTed (http or https; public addresses only)."
    )
    secret: str = strawberry.field(
        description="Signs each request: X-SmartContent-Signature is sha256=<hex HMAC-SHA256 "
        'of "<X-SmartContent-Timestamp>.<body>">. 16 to 500 characters; never shown again.'
    )


@strawberry.input(description="An SMTP server to send through (instead of the instance's).")
class SmtpSettingsInput:
    host: str = strawberry.field(description="Server name (public addresses only).")
    port: int = strawberry.field(default=587, description="Port (587 submission, 465 TLS).")
    username: str | None = strawberry.field(default=None, description="Login, if it needs one.")
    password: str | None = strawberry.field(
        default=None, description="Password; stored encrypted, never shown again."
    )
    security: str = strawberry.field(
        default="starttls", description="starttls, tls (implicit, port 465) or none."
    )


@strawberry.input(description="An email list to publish to.")
class ConnectEmailAccountInput:
    workspace_id: relay.GlobalID = strawberry.field(description="Workspace it belongs to.")
    name: str = strawberry.field(description="What to call it (1 to 200 characters).")
    from_address: str = strawberry.field(description="Sender address.")
    recipients: list[str] = strawberry.field(description="Who receives each post (1 to 100).")
    smtp: SmtpSettingsInput | None = strawberry.field(
        default=None, description="Send through this server; null: the instance's SMTP."
    )

    def to_request(self) -> EmailAccountRequest:
        smtp = self.smtp
        return EmailAccountRequest(
            workspace_id=parse_id(self.workspace_id, "Workspace", "workspaceId"),
            name=self.name,
            from_address=self.from_address,
            recipients=list(self.recipients),
            smtp=SmtpSettings(
                host=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password,
                security=smtp.security,
            )
            if smtp is not None
            else None,
        )


@strawberry.input(description="One weekly slot.")
class PostingSlotInput:
    weekday: int = strawberry.field(description="0 Monday to 6 Sunday.")
    time: str = strawberry.field(description="Local time, HH:MM (24 hours).")

    def to_slot(self) -> Slot:
        try:
            at = time.fromisoformat(self.time)
        except ValueError:
            raise BadUserInput(
                f"`time` must look like 09:30; got {self.time[:20]!r}.", extra={"field": "slots"}
            ) from None
        return Slot(weekday=self.weekday, at=at.replace(second=0, microsecond=0, tzinfo=None))


@strawberry.input(description="An account's weekly posting slots, replacing the ones it had.")
class SetPostingSlotsInput:
    social_account_id: relay.GlobalID = strawberry.field(description="The account.")
    timezone: str = strawberry.field(description="IANA zone the times are in.")
    slots: list[PostingSlotInput] = strawberry.field(
        description="At most 50; an empty list clears the queue's slots."
    )


@strawberry.type(description="Result of setPostingSlots.")
class PostingSlotsPayload:
    slots: list[PostingSlot] | None = strawberry.field(
        description="The account's slots now, by weekday and time. Null on errors."
    )
    errors: list[UserError] = strawberry.field(description="Why they were refused, if so.")


@strawberry.input(description="Queue content on an account's next free posting slot.")
class AddToQueueInput:
    content_id: relay.GlobalID = strawberry.field(description="The content item.")
    social_account_id: relay.GlobalID = strawberry.field(description="The account.")


@strawberry.type(description="Result of startAccountConnection.")
class StartAccountConnectionPayload:
    authorize_url: str | None = strawberry.field(
        description="Send the browser here to approve on the platform; it comes back to "
        "/oauth/{platform}/callback, then to the web app with `oauth=connected` or "
        "`oauth=error&reason=...`. Valid once, for OAUTH_STATE_TTL_SECONDS. Null on errors."
    )
    errors: list[UserError] = strawberry.field(description="Why it cannot start, if so.")


@strawberry.input(description="A Bluesky account, signed in with one of its app passwords.")
class ConnectBlueskyAccountInput:
    workspace_id: relay.GlobalID = strawberry.field(description="Workspace it belongs to.")
    handle: str = strawberry.field(description="The account's handle, e.g. alice.bsky.social.")
    app_password: str = strawberry.field(
        description="An app password (Bluesky: Settings -> App passwords), never the account "
        "password; stored encrypted, never shown again."
    )
