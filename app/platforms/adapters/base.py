"""What every HTTP adapter shares: one request helper that turns transport failures and
error statuses into the publishing error kinds, retry-after parsing, safe messages, media
download and the cheap checks of `validate`.

The rule that keeps delivery exactly-once: a request that *creates* something on the
platform and then loses its answer (read timeout, connection dropped, gateway timeout) is
`OutcomeUnknown`, never retryable; the same failure on a read or on a step that creates
nothing visible (an upload, an unpublished container) is retryable.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from app.models.vocabulary import Platform
from app.platforms.publishing import (
    AuthError,
    Credentials,
    MediaItem,
    OutcomeUnknown,
    PermanentError,
    Post,
    Published,
    PublishError,
    RetryableError,
    TokenSet,
)
from app.platforms.rules import RULES, count_characters

MAX_MESSAGE = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

# Reads the platform's own error text (and optionally a better error) from a response.
ErrorReader = Callable[[httpx.Response], str]


def secrets_of(credentials: Credentials) -> tuple[str, ...]:
    """Every secret an error message must never contain."""
    values = [credentials.access_token, credentials.refresh_token]
    values += [v for k, v in credentials.extra.items() if "password" in k or "secret" in k]
    return tuple(v for v in values if v and len(v) >= 4)


def safe_message(text: str, secrets: Iterable[str] = ()) -> str:
    """One line, bounded, with any secret blanked out (platforms sometimes echo tokens)."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def json_or_empty(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def default_error_text(response: httpx.Response) -> str:
    body = json_or_empty(response)
    if isinstance(body, dict):
        for key in ("message", "detail", "error_description", "error", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return response.reason_phrase or f"HTTP {response.status_code}"


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as delta-seconds or an HTTP date, in seconds from now."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def seconds_until_epoch(value: str | None) -> float | None:
    """A reset time given as Unix seconds (X, Bluesky), in seconds from now."""
    if not value or not value.strip().isdigit():
        return None
    return max(0.0, int(value) - time.time())


def seconds_until_iso(value: str | None) -> float | None:
    """A reset time given as an ISO 8601 timestamp (Mastodon), in seconds from now."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_for_status(
    response: httpx.Response,
    *,
    name: str,
    creates: bool,
    text: str,
    retry_after: float | None = None,
) -> PublishError:
    """The publishing error for an HTTP error status (the common mapping)."""
    status = response.status_code
    if status == 429:
        return RetryableError(f"{name} rate limit: {text}", status=status, retry_after=retry_after)
    if status == 401:
        return AuthError(f"{name} refused the account's token: {text}", status=status)
    if status == 504 and creates:
        # A gateway gave up waiting; the platform behind it may still have created the post.
        return OutcomeUnknown(
            f"{name} timed out (504) after the request was sent; the post may exist",
            status=status,
        )
    if status >= 500 or status == 408:
        return RetryableError(
            f"{name} is unavailable ({status}): {text}", status=status, retry_after=retry_after
        )
    return PermanentError(f"{name} refused the request ({status}): {text}", status=status)


class Api:
    """One platform's HTTP conversation through the caller's client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        name: str,
        *,
        error_text: ErrorReader = default_error_text,
        retry_after: Callable[[httpx.Response], float | None] | None = None,
        classify: Callable[[httpx.Response, bool, str], PublishError | None] | None = None,
    ) -> None:
        self.http = http
        self.name = name
        self._error_text = error_text
        self._retry_after = retry_after or (lambda r: retry_after_header(r.headers))
        # Platform-specific mapping tried before the common one (e.g. Graph error codes).
        self._classify = classify

    async def send(
        self,
        method: str,
        url: str,
        *,
        creates: bool,
        secrets: Iterable[str] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """`creates`: the request makes something public (a post, a reply, a comment)."""
        secrets = tuple(secrets)
        try:
            response = await self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing was sent: safe to try again. `from None`: the URL and the request
            # (with its token) stay out of the chained traceback.
            raise RetryableError(f"{self.name}: could not connect ({type(exc).__name__})") from None
        except httpx.UnsupportedProtocol:
            raise PermanentError(f"{self.name}: the configured URL is not http(s)") from None
        except httpx.TransportError as exc:
            if creates:
                raise OutcomeUnknown(
                    f"{self.name}: no answer after the request was sent "
                    f"({type(exc).__name__}); the post may exist"
                ) from None
            raise RetryableError(f"{self.name}: connection failed ({type(exc).__name__})") from None
        if response.is_success:
            return response
        await response.aread()
        text = safe_message(self._error_text(response), secrets)
        error = self._classify(response, creates, text) if self._classify else None
        raise error or error_for_status(
            response,
            name=self.name,
            creates=creates,
            text=text,
            retry_after=self._retry_after(response),
        )

    async def json(
        self, method: str, url: str, *, creates: bool, secrets: Iterable[str] = (), **kwargs: Any
    ) -> Any:
        response = await self.send(method, url, creates=creates, secrets=secrets, **kwargs)
        return json_or_empty(response)


async def fetch_media(http: httpx.AsyncClient, item: MediaItem, max_bytes: int) -> bytes:
    """The media file's bytes (for platforms that take uploads, not URLs), size-capped."""
    try:
        async with http.stream("GET", item.url) as response:
            if response.status_code >= 500:
                raise RetryableError(f"media download failed ({response.status_code})")
            if not response.is_success:
                raise PermanentError(f"media could not be fetched ({response.status_code})")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise PermanentError(f"media is larger than {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TransportError as exc:
        # Signed media URLs carry their own token: never echo them.
        raise RetryableError(f"media download failed ({type(exc).__name__})") from None


def is_video(item: MediaItem) -> bool:
    return item.mime_type.startswith("video/")


def check_post(
    platform: Platform,
    post: Post,
    *,
    images_only: bool = False,
    max_parts: int | None = None,
) -> list[str]:
    """The platform rules for each part and the media, without network."""
    rule = RULES[platform]
    problems: list[str] = []
    parts = post.parts or (post.text,)
    if max_parts is not None and len(parts) > max_parts:
        problems.append(f"{platform.value} posts are one part; got {len(parts)}.")
    for i, part in enumerate(parts, 1):
        if not part.strip() and not (i == 1 and post.media):
            problems.append(f"Part {i} is empty.")
        if rule.max_chars is not None:
            size = count_characters(part, rule)
            if size > rule.max_chars:
                problems.append(f"Part {i} has {size} characters; the limit is {rule.max_chars}.")
    media = rule.media
    if media is not None:
        if media.requires_media and not post.media:
            problems.append(f"{platform.value} needs at least one image or video.")
        if len(post.media) > media.max_items:
            problems.append(f"At most {media.max_items} media items; got {len(post.media)}.")
        for item in post.media:
            allowed = media.image_types | (frozenset() if images_only else media.video_types)
            if item.mime_type not in allowed:
                problems.append(f"{item.mime_type} cannot be posted to {platform.value}.")
    return problems


def require(credentials: Credentials, *, token: bool = True, external_id: bool = True) -> None:
    """Credentials an adapter cannot act without (the account is not connected right)."""
    if token and not credentials.access_token:
        raise AuthError("the account has no access token; reconnect it")
    if external_id and not credentials.external_id:
        raise AuthError("the account has no platform id; reconnect it")


def credential_problems(
    credentials: Credentials, *, token: bool = True, external_id: bool = True
) -> list[str]:
    problems = []
    if token and not credentials.access_token:
        problems.append("The account has no access token; reconnect it.")
    if external_id and not credentials.external_id:
        problems.append("The account has no platform id; reconnect it.")
    return problems


def unchanged_tokens(credentials: Credentials) -> TokenSet:
    """For platforms whose tokens do not expire: refreshing returns what the account has."""
    return TokenSet(
        access_token=credentials.access_token or "",
        refresh_token=credentials.refresh_token,
        expires_at=credentials.expires_at,
    )


async def poll_until(
    check: Callable[[], Awaitable[bool]], *, interval: float, attempts: int, what: str
) -> None:
    """Ask `check` until it says ready; the platform is still processing after `attempts`
    tries is retryable (the processing continues on its side)."""
    for attempt in range(attempts):
        if await check():
            return
        if attempt + 1 < attempts:
            await asyncio.sleep(interval)
    raise RetryableError(f"{what} is still being processed by the platform")


def parts_newest_first(published: Published) -> tuple[str, ...]:
    """A post's platform ids, last part first (a thread is taken down from its end)."""
    return tuple(reversed(published.part_ids or (published.platform_post_id,)))


async def delete_each(ids: Iterable[str], delete_one: Callable[[str], Awaitable[object]]) -> None:
    """Delete each id in turn; one already gone (404) is what a delete wants."""
    for item in ids:
        try:
            await delete_one(item)
        except PermanentError as exc:
            if exc.status != 404:
                raise
