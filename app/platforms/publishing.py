"""The one interface every platform adapter implements, and the shapes it speaks in.

Delivery (app/services/publishing) owns state, retries and exactly-once; an adapter only
talks to its platform and says what happened, in these terms:
- success: a `Published` with the platform's post id and URL;
- `RetryableError`: rate limit (with the platform's retry-after), 5xx, network trouble
  before the request could have been accepted;
- `PermanentError`: the platform refused the post (invalid content, media rejected);
  `AuthError` (a `PermanentError`): the token is revoked or expired beyond refresh, so the
  account needs reconnecting;
- `OutcomeUnknown`: the request may have reached the platform and no answer came back;
  delivery then asks `find_existing` (when `can_look_up`) before any retry, or parks the
  target as UNKNOWN for a person to confirm.

Adapters receive an `httpx.AsyncClient` (outbound address policy and timeouts are the
caller's) and the account's decrypted `Credentials`; they never touch the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from app.models.vocabulary import Platform


@dataclass(frozen=True)
class Credentials:
    """What an account needs to act, decrypted for the duration of one call."""

    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: datetime | None = None
    # The platform's id of the account (user, page, Instagram business account, DID...).
    external_id: str | None = None
    # Platform-specific settings: instance URL (Mastodon), handle and PDS (Bluesky),
    # page id (Facebook), webhook URL and secret, SMTP settings and recipients (email).
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaItem:
    url: str  # fetchable by the platform (a signed media URL)
    mime_type: str
    alt_text: str | None = None


@dataclass(frozen=True)
class Post:
    """One target's text, ready for its platform (already within the platform's rules)."""

    target_id: uuid.UUID
    content_id: uuid.UUID
    text: str
    # Thread parts in order (X, Threads, Bluesky, Mastodon reply chains); `(text,)` else.
    parts: tuple[str, ...]
    media: tuple[MediaItem, ...] = ()
    subject: str | None = None  # email
    preheader: str | None = None  # email
    title: str | None = None
    # Stable per target across retries: sent where the platform accepts one, and used to
    # recognise a post created by an attempt whose answer was lost.
    idempotency_key: str = ""
    # Ids of the thread parts an earlier attempt already created (from the error's
    # `partial`), first first: publishing continues the chain after the last of them.
    published_parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Published:
    platform_post_id: str
    url: str | None = None
    # Ids of every part of a thread, first first (the first is `platform_post_id`).
    part_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Metrics:
    """Counters as the platform reports them; None where it reports nothing."""

    impressions: int | None = None
    reach: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    clicks: int | None = None
    raw: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    scope: str | None = None


class PublishError(Exception):
    """Base of what an adapter raises; `message` is safe to show (no secrets).

    `partial`: the thread parts this attempt created before it failed (a thread is
    several requests); a retry passes their ids as `Post.published_parts` so the parts
    already out are not posted again.
    """

    retryable = False

    def __init__(
        self, message: str, *, status: int | None = None, partial: Published | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.partial = partial


class RetryableError(PublishError):
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        partial: Published | None = None,
    ) -> None:
        super().__init__(message, status=status, partial=partial)
        self.retry_after = retry_after


class PermanentError(PublishError):
    pass


class AuthError(PermanentError):
    """Token revoked or refresh refused: the account must be reconnected."""


class OutcomeUnknown(PublishError):
    """The request may have been accepted; do not retry blindly."""


class Publisher(Protocol):
    platform: Platform
    # The platform de-duplicates by a key we send (so a retry cannot double-post).
    supports_idempotency_key: bool
    # `find_existing` can recognise a post created by an earlier attempt.
    can_look_up: bool
    supports_first_comment: bool

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        """Problems that would make the platform refuse the post (cheap, no network)."""
        ...

    async def publish(self, post: Post, credentials: Credentials) -> Published: ...

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        """The post an earlier attempt created, if the platform can tell; else None."""
        ...

    async def comment(
        self, published: Published, text: str, credentials: Credentials
    ) -> Published: ...

    async def delete(self, published: Published, credentials: Credentials) -> None: ...

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics: ...

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        """New tokens; `AuthError` when the platform refuses (account needs reconnect)."""
        ...
