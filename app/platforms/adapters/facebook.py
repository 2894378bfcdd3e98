"""Facebook Pages through the Graph API, with the Page's access token.

Text: POST /{page-id}/feed. One photo: POST /{page-id}/photos (url + caption). Several:
each uploaded unpublished (`published=false`, invisible), then one /feed post with
`attached_media`. A video: POST /{page-id}/videos (file_url + description). The account's
`external_id` is the Page id and its token the Page token (`oauth.identify` finds both).
No idempotency key and no lookup: `can_look_up` is False.
"""

from __future__ import annotations

import json

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
from app.platforms.adapters.meta import graph_api
from app.platforms.publishing import (
    Credentials,
    Metrics,
    PermanentError,
    Post,
    Published,
    TokenSet,
)
from app.settings import Settings


class FacebookPublisher:
    platform = Platform.FACEBOOK
    supports_idempotency_key = False
    can_look_up = False
    supports_first_comment = True

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.settings = settings
        self.graph = f"{settings.meta_graph_base_url}/{settings.meta_graph_version}"
        self.api = graph_api(http, "Facebook")

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        problems = check_post(self.platform, post, max_parts=1) + credential_problems(credentials)
        if any(is_video(m) for m in post.media) and len(post.media) > 1:
            problems.append("A Facebook post takes one video, or images, not both.")
        return problems

    async def _post(
        self, path: str, credentials: Credentials, *, creates: bool, **data: str
    ) -> dict[str, object]:
        body = await self.api.json(
            "POST",
            f"{self.graph}/{path}",
            creates=creates,
            secrets=secrets_of(credentials),
            data={**data, "access_token": credentials.access_token or ""},
        )
        return body if isinstance(body, dict) else {}

    def _url(self, post_id: str) -> str:
        return f"https://www.facebook.com/{post_id}"

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        require(credentials)
        page = credentials.external_id
        media = post.media
        if len(media) == 1 and is_video(media[0]):
            body = await self._post(
                f"{page}/videos",
                credentials,
                creates=True,
                file_url=media[0].url,
                description=post.text,
            )
            video_id = str(body.get("id") or "")
            if not video_id:
                raise PermanentError("Facebook answered without the video's id")
            return Published(video_id, f"https://www.facebook.com/{page}/videos/{video_id}")
        if len(media) == 1:
            body = await self._post(
                f"{page}/photos", credentials, creates=True, url=media[0].url, caption=post.text
            )
            post_id = str(body.get("post_id") or body.get("id") or "")
        else:
            fields = {"message": post.text}
            for i, item in enumerate(media):
                photo = await self._post(
                    f"{page}/photos", credentials, creates=False, url=item.url, published="false"
                )
                fields[f"attached_media[{i}]"] = json.dumps({"media_fbid": str(photo.get("id"))})
            body = await self._post(f"{page}/feed", credentials, creates=True, **fields)
            post_id = str(body.get("id") or "")
        if not post_id:
            raise PermanentError("Facebook answered without the post's id")
        return Published(post_id, self._url(post_id), (post_id,))

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        return None

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        require(credentials)
        body = await self._post(
            f"{published.platform_post_id}/comments", credentials, creates=True, message=text
        )
        comment_id = str(body.get("id") or "")
        return Published(comment_id, self._url(published.platform_post_id), (comment_id,))

    async def delete(self, published: Published, credentials: Credentials) -> None:
        require(credentials)
        await delete_each(
            (published.platform_post_id,),
            lambda post_id: self.api.send(
                "DELETE",
                f"{self.graph}/{post_id}",
                creates=False,
                secrets=secrets_of(credentials),
                params={"access_token": credentials.access_token or ""},
            ),
        )

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        require(credentials)
        fields = (
            "shares,reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0)"
        )
        body = await self.api.json(
            "GET",
            f"{self.graph}/{published.platform_post_id}",
            creates=False,
            secrets=secrets_of(credentials),
            params={"fields": fields, "access_token": credentials.access_token or ""},
        )
        impressions = reach = None
        try:
            insights = await self.api.json(
                "GET",
                f"{self.graph}/{published.platform_post_id}/insights",
                creates=False,
                secrets=secrets_of(credentials),
                params={
                    "metric": "post_impressions,post_impressions_unique",
                    "access_token": credentials.access_token or "",
                },
            )
            values = {
                m.get("name"): (m.get("values") or [{}])[0].get("value")
                for m in insights.get("data", [])
            }
            impressions, reach = (
                values.get("post_impressions"),
                values.get("post_impressions_unique"),
            )
        except PermanentError:
            pass  # insights need read_insights and are missing for some post types
        return Metrics(
            impressions=impressions,
            reach=reach,
            likes=body.get("reactions", {}).get("summary", {}).get("total_count"),
            comments=body.get("comments", {}).get("summary", {}).get("total_count"),
            shares=body.get("shares", {}).get("count"),
            raw=body,
        )

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        return await oauth.refresh(self.settings, self.platform, credentials)
