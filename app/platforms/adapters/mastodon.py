"""Mastodon: POST {instance}/api/v1/statuses with an `Idempotency-Key`.

Mastodon remembers an Idempotency-Key for an hour and answers a repeat with the status it
already created, so a retry after a lost answer is safe (`supports_idempotency_key`); each
thread part has its own key (`<key>:<n>`), so resuming a thread re-finds the parts already
out instead of posting them twice. Threads are reply chains (`in_reply_to_id`). Media go
through POST /api/v2/media (202 while processing: GET /api/v1/media/{id} until 200).
The instance URL is `Credentials.extra["instance_url"]`; tokens do not expire.
"""

from __future__ import annotations

import httpx

from app.models.vocabulary import Platform
from app.platforms.adapters.base import (
    Api,
    check_post,
    credential_problems,
    delete_each,
    fetch_media,
    parts_newest_first,
    poll_until,
    require,
    retry_after_header,
    seconds_until_iso,
    secrets_of,
    unchanged_tokens,
)
from app.platforms.publishing import (
    AuthError,
    Credentials,
    MediaItem,
    Metrics,
    PermanentError,
    Post,
    Published,
    PublishError,
    TokenSet,
)
from app.settings import Settings


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after_header(response.headers) or seconds_until_iso(
        response.headers.get("x-ratelimit-reset")
    )


def part_key(post: Post, index: int) -> str:
    return post.idempotency_key if index == 0 else f"{post.idempotency_key}:{index}"


class MastodonPublisher:
    platform = Platform.MASTODON
    supports_idempotency_key = True
    can_look_up = False
    supports_first_comment = True

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings
        self.api = Api(http, "Mastodon", retry_after=_retry_after)

    def _base(self, credentials: Credentials) -> str:
        url = credentials.extra.get("instance_url", "").rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise AuthError("the Mastodon account has no instance URL; reconnect it")
        return url

    def _headers(self, credentials: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {credentials.access_token}"}

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        problems = check_post(self.platform, post) + credential_problems(
            credentials, external_id=False
        )
        if not credentials.extra.get("instance_url"):
            problems.append("The Mastodon account has no instance URL; reconnect it.")
        return problems

    async def _upload(self, item: MediaItem, credentials: Credentials) -> str:
        base = self._base(credentials)
        data = await fetch_media(self.http, item, self.settings.platform_media_max_bytes)
        response = await self.api.send(
            "POST",
            f"{base}/api/v2/media",
            creates=False,  # unattached media are invisible and cleaned up by the server
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
            data={"description": item.alt_text} if item.alt_text else {},
            files={"file": ("media", data, item.mime_type)},
        )
        media_id = str(response.json().get("id") or "")
        if not media_id:
            raise PermanentError("Mastodon accepted the upload but returned no media id")
        if response.status_code == 202:  # still processing: it cannot be attached yet

            async def processed() -> bool:
                check = await self.api.send(
                    "GET",
                    f"{base}/api/v1/media/{media_id}",
                    creates=False,
                    secrets=secrets_of(credentials),
                    headers=self._headers(credentials),
                )
                return check.status_code == 200

            await poll_until(
                processed,
                interval=self.settings.platform_media_poll_seconds,
                attempts=self.settings.platform_media_poll_attempts,
                what="Mastodon media",
            )
        return media_id

    async def _status(
        self,
        text: str,
        credentials: Credentials,
        *,
        key: str,
        reply_to: str | None = None,
        media_ids: list[str] | None = None,
    ) -> tuple[str, str | None]:
        payload: dict[str, object] = {"status": text, "visibility": "public"}
        if reply_to:
            payload["in_reply_to_id"] = reply_to
        if media_ids:
            payload["media_ids"] = media_ids
        headers = self._headers(credentials)
        if key:
            headers["Idempotency-Key"] = key
        body = await self.api.json(
            "POST",
            f"{self._base(credentials)}/api/v1/statuses",
            # With a key a repeat returns the same status, so a lost answer is retryable.
            creates=not key,
            secrets=secrets_of(credentials),
            headers=headers,
            json=payload,
        )
        status_id = str(body.get("id") or "")
        if not status_id:
            raise PermanentError("Mastodon answered without the status id")
        return status_id, body.get("url") or body.get("uri")

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        require(credentials, external_id=False)
        parts = post.parts or (post.text,)
        done = list(post.published_parts)
        url: str | None = None
        media_ids = [] if done else [await self._upload(m, credentials) for m in post.media]
        for index in range(len(done), len(parts)):
            try:
                status_id, link = await self._status(
                    parts[index],
                    credentials,
                    key=part_key(post, index),
                    reply_to=done[-1] if done else None,
                    media_ids=media_ids if index == 0 else None,
                )
            except PublishError as exc:
                if done:
                    exc.partial = Published(done[0], url, tuple(done))
                raise
            done.append(status_id)
            url = url or (link if index == 0 else None)
        return Published(done[0], url or self._status_url(done[0], credentials), tuple(done))

    def _status_url(self, status_id: str, credentials: Credentials) -> str | None:
        username = credentials.extra.get("username")
        if not username:
            return None
        return f"{self._base(credentials)}/@{username}/{status_id}"

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        # The Idempotency-Key makes a retry itself the lookup; nothing to find here.
        return None

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        require(credentials, external_id=False)
        parent = (published.part_ids or (published.platform_post_id,))[-1]
        status_id, link = await self._status(
            text, credentials, key=f"comment:{published.platform_post_id}", reply_to=parent
        )
        return Published(status_id, link, (status_id,))

    async def delete(self, published: Published, credentials: Credentials) -> None:
        require(credentials, external_id=False)
        await delete_each(
            parts_newest_first(published),
            lambda status_id: self.api.send(
                "DELETE",
                f"{self._base(credentials)}/api/v1/statuses/{status_id}",
                creates=False,
                secrets=secrets_of(credentials),
                headers=self._headers(credentials),
            ),
        )

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        require(credentials, external_id=False)
        body = await self.api.json(
            "GET",
            f"{self._base(credentials)}/api/v1/statuses/{published.platform_post_id}",
            creates=False,
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
        )
        return Metrics(
            likes=body.get("favourites_count"),
            comments=body.get("replies_count"),
            shares=body.get("reblogs_count"),
            raw={k: body.get(k) for k in ("favourites_count", "replies_count", "reblogs_count")},
        )

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        # Mastodon access tokens do not expire (revocation shows up as 401 on use).
        return unchanged_tokens(credentials)
