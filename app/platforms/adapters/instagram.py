"""Instagram (Graph API with Facebook Login): create a media container, wait until it is
processed, then publish it.

POST /{ig-user-id}/media makes a container (`image_url`, or `media_type=REELS` with
`video_url`; a carousel is up to 10 child containers with `is_carousel_item=true`, then a
`media_type=CAROUSEL` container naming them in `children`); GET /{container}?fields=
status_code until FINISHED; POST /{ig-user-id}/media_publish with `creation_id`.
Containers are invisible until published, so only the publish step can leave the outcome
unknown. The URL is the media's `permalink` (asked once, best effort).
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
    require,
    secrets_of,
)
from app.platforms.adapters.meta import Containers, graph_api
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


class InstagramPublisher:
    platform = Platform.INSTAGRAM
    supports_idempotency_key = False
    can_look_up = False
    supports_first_comment = True

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.settings = settings
        self.graph = f"{settings.meta_graph_base_url}/{settings.meta_graph_version}"
        self.api = graph_api(http, "Instagram")
        self.containers = Containers(
            self._call,
            "Instagram",
            create_edge="media",
            publish_edge="media_publish",
            status_fields="status_code,status",
            status_key="status_code",
            error_key="status",
            poll_seconds=settings.platform_media_poll_seconds,
            poll_attempts=settings.platform_media_poll_attempts,
        )

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        return check_post(self.platform, post, max_parts=1) + credential_problems(credentials)

    async def _call(
        self, method: str, path: str, credentials: Credentials, *, creates: bool, **fields: str
    ) -> dict[str, object]:
        token = {"access_token": credentials.access_token or ""}
        where = "data" if method == "POST" else "params"
        body = await self.api.json(
            method,
            f"{self.graph}/{path}",
            creates=creates,
            secrets=secrets_of(credentials),
            **{where: {**fields, **token}},
        )
        return body if isinstance(body, dict) else {}

    def _media_fields(self, item: MediaItem) -> dict[str, str]:
        if is_video(item):
            return {"media_type": "REELS", "video_url": item.url}
        fields = {"image_url": item.url}
        if item.alt_text:
            fields["alt_text"] = item.alt_text
        return fields

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        require(credentials)
        if not post.media:
            raise PermanentError("Instagram needs at least one image or video")
        containers = self.containers
        if len(post.media) == 1:
            fields = self._media_fields(post.media[0])
            container = await containers.create(credentials, caption=post.text, **fields)
        else:
            children = []
            for item in post.media:
                fields = self._media_fields(item)
                if is_video(item):
                    fields["media_type"] = "VIDEO"  # carousel items are VIDEO, not REELS
                children.append(
                    await containers.create(credentials, is_carousel_item="true", **fields)
                )
            container = await containers.create(
                credentials, media_type="CAROUSEL", children=",".join(children), caption=post.text
            )
        media_id = await containers.publish(container, credentials)
        return Published(media_id, await self._permalink(media_id, credentials), (media_id,))

    async def _permalink(self, media_id: str, credentials: Credentials) -> str | None:
        # The post exists now: a failure here must not fail the publish.
        try:
            body = await self._call("GET", media_id, credentials, creates=False, fields="permalink")
        except PublishError:
            return None
        link = body.get("permalink")
        return link if isinstance(link, str) else None

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        return None

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        require(credentials)
        body = await self._call(
            "POST",
            f"{published.platform_post_id}/comments",
            credentials,
            creates=True,
            message=text,
        )
        comment_id = str(body.get("id") or "")
        return Published(comment_id, published.url, (comment_id,))

    async def delete(self, published: Published, credentials: Credentials) -> None:
        require(credentials)
        await delete_each(
            (published.platform_post_id,),
            lambda media_id: self._call("DELETE", media_id, credentials, creates=False),
        )

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        require(credentials)
        body = await self._call(
            "GET",
            f"{published.platform_post_id}/insights",
            credentials,
            creates=False,
            metric="reach,likes,comments,shares,saved,views",
        )
        values = insight_values(body)
        return Metrics(
            impressions=values.get("views"),
            reach=values.get("reach"),
            likes=values.get("likes"),
            comments=values.get("comments"),
            shares=values.get("shares"),
            raw=values,
        )

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        return await oauth.refresh(self.settings, self.platform, credentials)


def insight_values(body: dict[str, object]) -> dict[str, int]:
    """`{"data": [{"name", "values": [{"value"}]} | {"name", "total_value": {"value"}}]}`."""
    values: dict[str, int] = {}
    data = body.get("data")
    for metric in data if isinstance(data, list) else []:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            continue
        value = (metric.get("total_value") or {}).get("value")
        if value is None and metric.get("values"):
            value = metric["values"][0].get("value")
        if isinstance(value, int):
            values[metric["name"]] = value
    return values
