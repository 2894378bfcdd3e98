"""The generic webhook publisher: a signed JSON POST to the account's URL.

Request: `POST <url>` with `Content-Type: application/json` and
- `X-SmartContent-Timestamp`: Unix seconds when it was signed;
- `X-SmartContent-Signature`: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` keyed
  with the account's secret (receivers recompute it over the raw body and reject stale
  timestamps);
- `Idempotency-Key`: the target's key, the same on every retry (also in the body as
  `idempotency_key`): a receiver that has seen the key answers as it did the first time,
  so a retry after a lost answer cannot create a second post.

Answer: any 2xx is success; a JSON body `{"id": ..., "url": ...}` is recorded as the post's
platform id and URL. 429 and 5xx (and 408) are retried (429's Retry-After respected),
401/403 mean the receiver no longer accepts our signature (the account needs
reconnecting with a new secret), other 4xx are permanent with the receiver's message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from app.infra.outbound import OutboundBlocked
from app.models.vocabulary import Platform
from app.platforms.publishing import (
    AuthError,
    Credentials,
    Metrics,
    OutcomeUnknown,
    PermanentError,
    Post,
    Published,
    RetryableError,
    TokenSet,
)
from app.settings import Settings

# Credentials.extra keys of a webhook account.
URL_KEY = "url"
SECRET_KEY = "secret"  # noqa: S105 - the name of the key, not a secret
MAX_ERROR = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def body_of(post: Post) -> bytes:
    payload: dict[str, Any] = {
        "event": "post.publish",
        "idempotency_key": post.idempotency_key,
        "target_id": str(post.target_id),
        "content_id": str(post.content_id),
        "text": post.text,
        "parts": list(post.parts),
        "title": post.title,
        "subject": post.subject,
        "media_urls": [item.url for item in post.media],
        "media": [
            {"url": item.url, "mime_type": item.mime_type, "alt_text": item.alt_text}
            for item in post.media
        ],
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _said(response: httpx.Response, secret: str) -> str:
    """What the receiver said, short and without our secret should it echo it."""
    text = ""
    try:
        data = response.json()
        if isinstance(data, dict):
            found = data.get("error") or data.get("message") or ""
            text = found if isinstance(found, str) else json.dumps(found)
    except ValueError:
        text = response.text
    text = " ".join(text.split())[:MAX_ERROR]
    if secret:
        text = text.replace(secret, "***")
    reason = f"HTTP {response.status_code}"
    return f"{reason}: {text}" if text else reason


class WebhookPublisher:
    platform = Platform.WEBHOOK
    supports_idempotency_key = True
    can_look_up = False
    supports_first_comment = False

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._settings = settings

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        problems = []
        if not credentials.extra.get(URL_KEY):
            problems.append("The webhook account has no URL.")
        if not credentials.extra.get(SECRET_KEY):
            problems.append("The webhook account has no signing secret.")
        if not post.text.strip():
            problems.append("The post is empty.")
        return problems

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        url = credentials.extra.get(URL_KEY, "")
        secret = credentials.extra.get(SECRET_KEY, "")
        if not url or not secret:
            raise PermanentError("The webhook account has no URL or secret; reconnect it.")
        body = body_of(post)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-SmartContent-Timestamp": timestamp,
            "X-SmartContent-Signature": sign(secret, timestamp, body),
            "Idempotency-Key": post.idempotency_key,
        }
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except OutboundBlocked as exc:
            raise PermanentError(exc.message) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing was sent: safe to try again.
            raise RetryableError(f"Cannot reach the webhook: {type(exc).__name__}.") from None
        except httpx.TooManyRedirects:
            raise PermanentError("The webhook redirects too often.") from None
        except httpx.TransportError as exc:
            # Sent (at least partly) and no answer: the receiver may have acted on it.
            raise OutcomeUnknown(
                f"The webhook did not answer ({type(exc).__name__}); it may have received the post."
            ) from None
        return self._outcome(response, secret)

    def _outcome(self, response: httpx.Response, secret: str) -> Published:
        status = response.status_code
        if 200 <= status < 300:
            post_id, url = "", None
            try:
                data = response.json()
            except ValueError:
                data = None
            if isinstance(data, dict):
                if isinstance(data.get("id"), str | int):
                    post_id = str(data["id"])[:255]
                if isinstance(data.get("url"), str):
                    url = data["url"][:2000]
            return Published(platform_post_id=post_id, url=url, part_ids=(post_id,))
        said = _said(response, secret)
        if status == 429:
            raise RetryableError(
                f"The webhook is rate limiting: {said}",
                status=status,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 500 or status == 408:
            raise RetryableError(
                f"The webhook failed: {said}",
                status=status,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status in (401, 403):
            raise AuthError(f"The webhook refused our signature: {said}", status=status)
        if 300 <= status < 400:
            raise PermanentError(f"The webhook answered with a redirect: {said}", status=status)
        raise PermanentError(f"The webhook refused the post: {said}", status=status)

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        return None  # a webhook cannot be asked; the idempotency key covers retries

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        raise PermanentError("A webhook takes no comments.")

    async def delete(self, published: Published, credentials: Credentials) -> None:
        raise PermanentError("A webhook cannot take back what it delivered.")

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        return Metrics()

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        raise PermanentError("A webhook account has no token to refresh.")


def factory(http: httpx.AsyncClient, settings: Settings) -> WebhookPublisher:
    return WebhookPublisher(http, settings)
