"""LinkedIn: the versioned Posts API (POST /rest/posts), images through the Images API.

Every call carries `LinkedIn-Version: YYYYMM` and `X-Restli-Protocol-Version: 2.0.0`. The
author is the account's URN (`urn:li:person:...` or `urn:li:organization:...`, stored as
`Credentials.external_id`). The created post's URN comes back in the `x-restli-id` header.

Commentary is in LinkedIn's "little" text format, where `\\ | { } @ [ ] ( ) < > # * _ ~`
are markup: unescaped, LinkedIn silently cuts the post at the first one. They are escaped,
except inside links (so they stay links) and the `#` of hashtags (so they stay hashtags).
No idempotency key and no lookup by something we sent: `can_look_up` is False.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx

from app.models.vocabulary import Platform
from app.platforms import oauth
from app.platforms.adapters.base import (
    Api,
    check_post,
    credential_problems,
    delete_each,
    fetch_media,
    require,
    secrets_of,
)
from app.platforms.publishing import (
    Credentials,
    MediaItem,
    Metrics,
    PermanentError,
    Post,
    Published,
    TokenSet,
)
from app.settings import Settings

_RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")
# Links and hashtags are kept as they are; everything between them is escaped.
_KEEP = re.compile(r"https?://\S+|(?<![\w#])#(?=\w)")


def little_text(text: str) -> str:
    """Plain text as LinkedIn's little format: markup characters escaped."""
    out: list[str] = []
    last = 0
    for match in _KEEP.finditer(text):
        out.append(_RESERVED.sub(r"\\\1", text[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_RESERVED.sub(r"\\\1", text[last:]))
    return "".join(out)


class LinkedInPublisher:
    platform = Platform.LINKEDIN
    supports_idempotency_key = False
    can_look_up = False
    supports_first_comment = True

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings
        self.base = f"{settings.linkedin_api_base_url}/rest"
        self.api = Api(http, "LinkedIn")

    def _headers(self, credentials: Credentials) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {credentials.access_token}",
            "LinkedIn-Version": self.settings.linkedin_api_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        problems = check_post(self.platform, post, images_only=True, max_parts=1)
        problems += credential_problems(credentials)
        if credentials.external_id and not credentials.external_id.startswith("urn:li:"):
            problems.append("The LinkedIn account's author must be a urn:li: URN.")
        return problems

    async def _upload(self, item: MediaItem, credentials: Credentials) -> str:
        body = await self.api.json(
            "POST",
            f"{self.base}/images",
            creates=False,
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
            params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": credentials.external_id}},
        )
        value = body.get("value", {}) if isinstance(body, dict) else {}
        upload_url, image = value.get("uploadUrl"), value.get("image")
        if not upload_url or not image:
            raise PermanentError("LinkedIn did not offer an image upload")
        data = await fetch_media(self.http, item, self.settings.platform_media_max_bytes)
        await self.api.send(
            "PUT",
            upload_url,
            creates=False,
            secrets=secrets_of(credentials),
            headers={"Authorization": f"Bearer {credentials.access_token}"},
            content=data,
        )
        return str(image)

    def _url(self, urn: str) -> str:
        return f"https://www.linkedin.com/feed/update/{urn}/"

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        require(credentials)
        payload: dict[str, object] = {
            "author": credentials.external_id,
            "commentary": little_text(post.text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        images = [(await self._upload(m, credentials), m.alt_text) for m in post.media]
        if len(images) == 1:
            media: dict[str, str] = {"id": images[0][0]}
            if images[0][1]:
                media["altText"] = images[0][1]
            payload["content"] = {"media": media}
        elif images:
            payload["content"] = {
                "multiImage": {
                    "images": [
                        {"id": urn, **({"altText": alt} if alt else {})} for urn, alt in images
                    ]
                }
            }
        response = await self.api.send(
            "POST",
            f"{self.base}/posts",
            creates=True,
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
            json=payload,
        )
        urn = response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id")
        if not urn:
            raise PermanentError("LinkedIn answered without the post's URN")
        return Published(urn, self._url(urn), (urn,))

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        return None

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        require(credentials)
        urn = published.platform_post_id
        response = await self.api.send(
            "POST",
            f"{self.base}/socialActions/{quote(urn, safe='')}/comments",
            creates=True,
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
            json={"actor": credentials.external_id, "object": urn, "message": {"text": text}},
        )
        comment_id = response.headers.get("x-restli-id") or ""
        if not comment_id:
            try:
                body = response.json()
            except ValueError:
                body = {}
            comment_id = str(body.get("$URN") or body.get("id") or "") if body else ""
        return Published(comment_id or urn, self._url(urn), (comment_id or urn,))

    async def delete(self, published: Published, credentials: Credentials) -> None:
        require(credentials)
        await delete_each(
            (published.platform_post_id,),
            lambda urn: self.api.send(
                "DELETE",
                f"{self.base}/posts/{quote(urn, safe='')}",
                creates=False,
                secrets=secrets_of(credentials),
                headers=self._headers(credentials),
            ),
        )

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        require(credentials)
        body = await self.api.json(
            "GET",
            f"{self.base}/socialActions/{quote(published.platform_post_id, safe='')}",
            creates=False,
            secrets=secrets_of(credentials),
            headers=self._headers(credentials),
        )
        likes = body.get("likesSummary", {})
        comments = body.get("commentsSummary", {})
        return Metrics(
            likes=likes.get("totalLikes"),
            comments=comments.get(
                "aggregatedTotalComments", comments.get("totalFirstLevelComments")
            ),
            raw=body,
        )

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        return await oauth.refresh(self.settings, self.platform, credentials)
