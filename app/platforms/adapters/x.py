"""X (API v2): POST /2/tweets, threads as reply chains, media through /2/media/upload
(one request for images; a video goes up in chunks: initialize, append, finalize, then
STATUS until X has processed it).

A thread is one tweet per part, each replying to the one before it
(`reply.in_reply_to_tweet_id`). X offers no idempotency key and no documented lookup of a
post by something we sent, so `can_look_up` is False: a lost answer parks the target as
UNKNOWN. Rate limits: `x-rate-limit-reset` (Unix seconds) per endpoint, and the 24-hour
posting cap in `x-user-limit-24hour-reset`.
"""

from __future__ import annotations

import httpx

from app.models.vocabulary import Platform
from app.platforms import oauth
from app.platforms.adapters.base import (
    Api,
    check_post,
    credential_problems,
    delete_each,
    fetch_media,
    is_video,
    parts_newest_first,
    poll_until,
    require,
    retry_after_header,
    seconds_until_epoch,
    secrets_of,
)
from app.platforms.publishing import (
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

VIDEO_CHUNK_BYTES = 4 * 1024 * 1024


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("title")
        errors = body.get("errors")
        if not detail and isinstance(errors, list) and errors and isinstance(errors[0], dict):
            detail = errors[0].get("message") or errors[0].get("detail")
        if isinstance(detail, str):
            return detail
    return response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    headers = response.headers
    if headers.get("x-user-limit-24hour-remaining") == "0":
        return seconds_until_epoch(headers.get("x-user-limit-24hour-reset"))
    return retry_after_header(headers) or seconds_until_epoch(headers.get("x-rate-limit-reset"))


class XPublisher:
    platform = Platform.X
    supports_idempotency_key = False
    can_look_up = False
    supports_first_comment = True

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings
        self.base = settings.x_api_base_url
        self.api = Api(http, "X", error_text=_error_text, retry_after=_retry_after)

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        problems = check_post(self.platform, post) + credential_problems(
            credentials, external_id=False
        )
        videos = [m for m in post.media if is_video(m)]
        if videos and len(post.media) > 1:
            problems.append("X takes up to 4 images or 1 video per post, not both.")
        return problems

    def _headers(self, credentials: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {credentials.access_token}"}

    async def _upload(self, item: MediaItem, credentials: Credentials) -> str:
        data = await fetch_media(self.http, item, self.settings.platform_media_max_bytes)
        if is_video(item):
            return await self._upload_video(item, data, credentials)
        category = "tweet_gif" if item.mime_type == "image/gif" else "tweet_image"
        body = await self.api.json(
            "POST",
            f"{self.base}/2/media/upload",
            creates=False,  # an unattached upload is invisible and expires
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
            data={"media_category": category},
            files={"media": ("media", data, item.mime_type)},
        )
        media_id = str(body.get("data", {}).get("id") or "")
        if not media_id:
            raise PermanentError("X accepted the upload but returned no media id")
        if item.alt_text:
            await self.api.send(
                "POST",
                f"{self.base}/2/media/metadata",
                creates=False,
                secrets=secrets_of(credentials),
                headers=self._headers(credentials),
                json={"id": media_id, "metadata": {"alt_text": {"text": item.alt_text[:1000]}}},
            )
        return media_id

    async def _upload_video(self, item: MediaItem, data: bytes, credentials: Credentials) -> str:
        """Chunked upload (all steps invisible until a tweet attaches the media)."""
        secrets = secrets_of(credentials)
        headers = self._headers(credentials)
        body = await self.api.json(
            "POST",
            f"{self.base}/2/media/upload/initialize",
            creates=False,
            secrets=secrets,
            headers=headers,
            json={
                "media_type": item.mime_type,
                "total_bytes": len(data),
                "media_category": "tweet_video",
            },
        )
        media_id = str(body.get("data", {}).get("id") or "")
        if not media_id:
            raise PermanentError("X did not start the video upload")
        for index, start in enumerate(range(0, len(data), VIDEO_CHUNK_BYTES)):
            await self.api.send(
                "POST",
                f"{self.base}/2/media/upload/{media_id}/append",
                creates=False,
                secrets=secrets,
                headers=headers,
                data={"segment_index": str(index)},
                files={"media": ("chunk", data[start : start + VIDEO_CHUNK_BYTES], "video/mp4")},
            )
        body = await self.api.json(
            "POST",
            f"{self.base}/2/media/upload/{media_id}/finalize",
            creates=False,
            secrets=secrets,
            headers=headers,
        )
        if body.get("data", {}).get("processing_info"):

            async def processed() -> bool:
                status = await self.api.json(
                    "GET",
                    f"{self.base}/2/media/upload",
                    creates=False,
                    secrets=secrets,
                    headers=headers,
                    params={"command": "STATUS", "media_id": media_id},
                )
                info = status.get("data", {}).get("processing_info", {})
                if info.get("state") == "failed":
                    reason = str((info.get("error") or {}).get("message", ""))[:200]
                    raise PermanentError(f"X could not process the video: {reason}")
                return info.get("state") in (None, "succeeded")

            await poll_until(
                processed,
                interval=self.settings.platform_media_poll_seconds,
                attempts=self.settings.platform_media_poll_attempts,
                what="X video",
            )
        return media_id

    async def _tweet(
        self,
        text: str,
        credentials: Credentials,
        *,
        reply_to: str | None = None,
        media_ids: list[str] | None = None,
    ) -> str:
        payload: dict[str, object] = {"text": text}
        if reply_to:
            payload["reply"] = {"in_reply_to_tweet_id": reply_to}
        if media_ids:
            payload["media"] = {"media_ids": media_ids}
        body = await self.api.json(
            "POST",
            f"{self.base}/2/tweets",
            creates=True,
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
            json=payload,
        )
        tweet_id = str(body.get("data", {}).get("id") or "")
        if not tweet_id:
            raise PermanentError("X answered without the post's id")
        return tweet_id

    def _url(self, tweet_id: str, credentials: Credentials) -> str:
        username = credentials.extra.get("username")
        if username:
            return f"https://x.com/{username}/status/{tweet_id}"
        return f"https://x.com/i/web/status/{tweet_id}"

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        require(credentials, external_id=False)
        parts = post.parts or (post.text,)
        done = list(post.published_parts)
        # Media go on the first tweet only; uploads are skipped when it already exists.
        media_ids = []
        if not done:
            media_ids = [await self._upload(m, credentials) for m in post.media]
        for index in range(len(done), len(parts)):
            try:
                tweet_id = await self._tweet(
                    parts[index],
                    credentials,
                    reply_to=done[-1] if done else None,
                    media_ids=media_ids if index == 0 else None,
                )
            except PublishError as exc:
                if done:
                    exc.partial = Published(done[0], self._url(done[0], credentials), tuple(done))
                raise
            done.append(tweet_id)
        return Published(done[0], self._url(done[0], credentials), tuple(done))

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        return None

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        require(credentials, external_id=False)
        # The first comment replies to the thread's last part, so it reads after the thread.
        parent = (published.part_ids or (published.platform_post_id,))[-1]
        tweet_id = await self._tweet(text, credentials, reply_to=parent)
        return Published(tweet_id, self._url(tweet_id, credentials), (tweet_id,))

    async def delete(self, published: Published, credentials: Credentials) -> None:
        require(credentials, external_id=False)
        await delete_each(
            parts_newest_first(published),
            lambda tweet_id: self.api.send(
                "DELETE",
                f"{self.base}/2/tweets/{tweet_id}",
                creates=False,
                secrets=secrets_of(credentials),
                headers=self._headers(credentials),
            ),
        )

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        require(credentials, external_id=False)
        body = await self.api.json(
            "GET",
            f"{self.base}/2/tweets/{published.platform_post_id}",
            creates=False,
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
            params={"tweet.fields": "public_metrics"},
        )
        counts = body.get("data", {}).get("public_metrics", {})
        shares = None
        if "retweet_count" in counts or "quote_count" in counts:
            shares = int(counts.get("retweet_count", 0)) + int(counts.get("quote_count", 0))
        return Metrics(
            impressions=counts.get("impression_count"),
            likes=counts.get("like_count"),
            comments=counts.get("reply_count"),
            shares=shares,
            raw=counts,
        )

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        return await oauth.refresh(self.settings, self.platform, credentials)
