"""Threads (graph.threads.net): a container per post, then threads_publish; a thread is
a reply chain (`reply_to_id` on each part's container).

POST /{threads-user-id}/threads (`media_type` TEXT | IMAGE | VIDEO | CAROUSEL, `text`,
`reply_to_id`), GET /{container}?fields=status until FINISHED (Meta asks clients to wait
for processing before publishing), POST /{threads-user-id}/threads_publish with
`creation_id`. Only the publish step makes anything visible, so only it can leave the
outcome unknown. Tokens are long-lived (60 days) and refreshed with `th_refresh_token`.
"""

from __future__ import annotations

import httpx

from app.models.vocabulary import Platform
from app.platforms import oauth
from app.platforms.adapters.base import (
    check_post,
    credential_problems,
    delete_each,
    is_video,
    parts_newest_first,
    require,
    secrets_of,
)
from app.platforms.adapters.instagram import insight_values
from app.platforms.adapters.meta import Containers, graph_api
from app.platforms.publishing import (
    Credentials,
    MediaItem,
    Metrics,
    Post,
    Published,
    PublishError,
    TokenSet,
)
from app.settings import Settings


class ThreadsPublisher:
    platform = Platform.THREADS
    supports_idempotency_key = False
    can_look_up = False
    supports_first_comment = True

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.settings = settings
        self.base = f"{settings.threads_api_base_url}/{settings.threads_api_version}"
        self.api = graph_api(http, "Threads")
        self.containers = Containers(
            self._call,
            "Threads",
            create_edge="threads",
            publish_edge="threads_publish",
            status_fields="status,error_message",
            status_key="status",
            error_key="error_message",
            poll_seconds=settings.platform_media_poll_seconds,
            poll_attempts=settings.platform_media_poll_attempts,
        )

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        return check_post(self.platform, post) + credential_problems(credentials)

    async def _call(
        self, method: str, path: str, credentials: Credentials, *, creates: bool, **fields: str
    ) -> dict[str, object]:
        where = "data" if method == "POST" else "params"
        body = await self.api.json(
            method,
            f"{self.base}/{path}",
            creates=creates,
            secrets=secrets_of(credentials),
            **{where: {**fields, "access_token": credentials.access_token or ""}},
        )
        return body if isinstance(body, dict) else {}

    def _media_fields(self, item: MediaItem) -> dict[str, str]:
        if is_video(item):
            return {"media_type": "VIDEO", "video_url": item.url}
        fields = {"media_type": "IMAGE", "image_url": item.url}
        if item.alt_text:
            fields["alt_text"] = item.alt_text
        return fields

    async def _first_container(self, post: Post, text: str, credentials: Credentials) -> str:
        if not post.media:
            return await self.containers.create(credentials, media_type="TEXT", text=text)
        if len(post.media) == 1:
            return await self.containers.create(
                credentials, text=text, **self._media_fields(post.media[0])
            )
        children = [
            await self.containers.create(
                credentials, is_carousel_item="true", **self._media_fields(m)
            )
            for m in post.media
        ]
        return await self.containers.create(
            credentials, media_type="CAROUSEL", children=",".join(children), text=text
        )

    async def _reply(self, text: str, to: str, credentials: Credentials) -> str:
        container = await self.containers.create(
            credentials, media_type="TEXT", text=text, reply_to_id=to
        )
        return await self.containers.publish(container, credentials)

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        require(credentials)
        parts = post.parts or (post.text,)
        done = list(post.published_parts)
        for index in range(len(done), len(parts)):
            try:
                if index == 0:
                    container = await self._first_container(post, parts[0], credentials)
                    done.append(await self.containers.publish(container, credentials))
                else:
                    done.append(await self._reply(parts[index], done[-1], credentials))
            except PublishError as exc:
                if done:
                    exc.partial = Published(done[0], None, tuple(done))
                raise
        return Published(done[0], await self._permalink(done[0], credentials), tuple(done))

    async def _permalink(self, media_id: str, credentials: Credentials) -> str | None:
        try:
            body = await self._call("GET", media_id, credentials, creates=False, fields="permalink")
        except PublishError:
            return None  # the post exists; a missing link must not fail it
        link = body.get("permalink")
        return link if isinstance(link, str) else None

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        return None

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        require(credentials)
        parent = (published.part_ids or (published.platform_post_id,))[-1]
        reply = await self._reply(text, parent, credentials)
        return Published(reply, None, (reply,))

    async def delete(self, published: Published, credentials: Credentials) -> None:
        require(credentials)
        await delete_each(
            parts_newest_first(published),
            lambda media_id: self._call("DELETE", media_id, credentials, creates=False),
        )

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        require(credentials)
        body = await self._call(
            "GET",
            f"{published.platform_post_id}/insights",
            credentials,
            creates=False,
            metric="views,likes,replies,reposts,quotes,shares",
        )
        values = insight_values(body)
        shares = None
        if {"reposts", "quotes", "shares"} & values.keys():
            shares = sum(values.get(k, 0) for k in ("reposts", "quotes", "shares"))
        return Metrics(
            impressions=values.get("views"),
            likes=values.get("likes"),
            comments=values.get("replies"),
            shares=shares,
            raw=values,
        )

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        return await oauth.refresh(self.settings, self.platform, credentials)
