"""Bluesky over XRPC (the AT protocol's HTTP API), through the caller's httpx client.

The `atproto` SDK builds its own HTTP client; speaking XRPC directly keeps every request
on the client the caller hands in (its outbound address policy and timeouts). Sessions:
com.atproto.server.createSession (handle + app password) and refreshSession. Posts:
com.atproto.repo.createRecord of an `app.bsky.feed.post` with `facets` (links and
hashtags, as UTF-8 byte ranges) and, for thread parts, `reply` refs to the root and the
parent. Text limits are grapheme clusters (app.platforms.rules).

Lookup: each record carries a `smartcontentKey` field (`<idempotency key>:<part>`; records
are open objects, so extra fields are allowed), and `find_existing` lists the author's
latest records for it: a lost answer is recognised instead of posted twice.

Credentials: `external_id` = DID, `access_token`/`refresh_token` = the session's JWTs,
`extra` = `handle`, `pds_url`, and optionally `app_password` (then an expired session is
replaced by a new one, without rotating the stored refresh token).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx

from app.models.vocabulary import Platform
from app.platforms.adapters.base import (
    Api,
    check_post,
    credential_problems,
    fetch_media,
    parts_newest_first,
    secrets_of,
)
from app.platforms.adapters.bluesky_xrpc import (
    classify,
    create_session,
    expiry,
    facets,
    retry_after,
    session_from,
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

POST = "app.bsky.feed.post"
MARKER = "smartcontentKey"
MAX_IMAGE_BYTES = 1_000_000  # the appview refuses larger image blobs
LOOKUP_LIMIT = 100


def _rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


class BlueskyPublisher:
    platform = Platform.BLUESKY
    supports_idempotency_key = False
    can_look_up = True
    supports_first_comment = True

    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings
        self.api = Api(http, "Bluesky", retry_after=retry_after, classify=classify)

    def _pds(self, credentials: Credentials) -> str:
        return (credentials.extra.get("pds_url") or self.settings.bluesky_pds_url).rstrip("/")

    def validate(self, post: Post, credentials: Credentials) -> list[str]:
        problems = check_post(self.platform, post, images_only=True)
        problems += credential_problems(
            credentials, token=not credentials.extra.get("app_password")
        )
        return problems

    async def _token(self, credentials: Credentials, *, fresh: bool = False) -> str:
        """A usable access JWT: the stored one while it lasts, else a new session from the
        app password (refreshSession would rotate the stored refresh token)."""
        exp = expiry(credentials.access_token)
        if credentials.access_token and not fresh and (exp is None or exp > time.time() + 30):
            return credentials.access_token
        password = credentials.extra.get("app_password")
        handle = credentials.extra.get("handle") or credentials.external_id
        if not password or not handle:
            raise AuthError("the Bluesky session expired; refresh or reconnect the account")
        session = await create_session(
            self.http, self.settings, handle, password, pds_url=self._pds(credentials)
        )
        return session.access_jwt

    async def _xrpc(
        self,
        method: str,
        nsid: str,
        credentials: Credentials,
        *,
        creates: bool,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> Any:
        token = await self._token(credentials)
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {token}"}
            if content_type:
                headers["Content-Type"] = content_type
            try:
                return await self.api.json(
                    method,
                    f"{self._pds(credentials)}/xrpc/{nsid}",
                    creates=creates,
                    secrets=(*secrets_of(credentials), token),
                    headers=headers,
                    **kwargs,
                )
            except AuthError:
                # Refused before anything was created: with an app password, sign in again.
                if attempt == 2 or not credentials.extra.get("app_password"):
                    raise
                token = await self._token(credentials, fresh=True)
        raise AssertionError("unreachable")

    async def _upload(self, item: MediaItem, credentials: Credentials) -> dict[str, Any]:
        data = await fetch_media(self.http, item, MAX_IMAGE_BYTES)
        body = await self._xrpc(
            "POST",
            "com.atproto.repo.uploadBlob",
            credentials,
            creates=False,  # a blob nothing references is garbage-collected
            content=data,
            content_type=item.mime_type,
        )
        blob = body.get("blob") if isinstance(body, dict) else None
        if not isinstance(blob, dict):
            raise PermanentError("Bluesky accepted the upload but returned no blob")
        return {"alt": item.alt_text or "", "image": blob}

    async def _create(self, credentials: Credentials, record: dict[str, Any]) -> dict[str, str]:
        body = await self._xrpc(
            "POST",
            "com.atproto.repo.createRecord",
            credentials,
            creates=True,
            json={"repo": credentials.external_id, "collection": POST, "record": record},
        )
        if not isinstance(body, dict) or not body.get("uri") or not body.get("cid"):
            raise PermanentError("Bluesky answered without the record's uri")
        return {"uri": str(body["uri"]), "cid": str(body["cid"])}

    async def _ref(self, uri: str, credentials: Credentials) -> dict[str, str]:
        body = await self._xrpc(
            "GET",
            "com.atproto.repo.getRecord",
            credentials,
            creates=False,
            params={"repo": credentials.external_id, "collection": POST, "rkey": _rkey(uri)},
        )
        return {"uri": str(body["uri"]), "cid": str(body["cid"])}

    def _record(
        self, text: str, marker: str | None, reply: dict[str, Any] | None
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        if found := facets(text):
            record["facets"] = found
        if reply:
            record["reply"] = reply
        if marker:
            record[MARKER] = marker
        return record

    def _url(self, uri: str, credentials: Credentials) -> str:
        who = credentials.extra.get("handle") or credentials.external_id
        return f"{self.settings.bluesky_web_url}/profile/{who}/post/{_rkey(uri)}"

    async def publish(self, post: Post, credentials: Credentials) -> Published:
        if not credentials.external_id:
            raise AuthError("the Bluesky account has no DID; reconnect it")
        parts = post.parts or (post.text,)
        done = list(post.published_parts)
        root = parent = None
        if done:
            root = await self._ref(done[0], credentials)
            parent = root if len(done) == 1 else await self._ref(done[-1], credentials)
        for index in range(len(done), len(parts)):
            marker = f"{post.idempotency_key}:{index}" if post.idempotency_key else None
            try:
                reply = {"root": root, "parent": parent} if root and parent else None
                record = self._record(parts[index], marker, reply)
                if index == 0 and post.media:
                    images = [await self._upload(m, credentials) for m in post.media]
                    record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
                ref = await self._create(credentials, record)
            except PublishError as exc:
                if done:
                    exc.partial = Published(done[0], self._url(done[0], credentials), tuple(done))
                raise
            root = root or ref
            parent = ref
            done.append(ref["uri"])
        return Published(done[0], self._url(done[0], credentials), tuple(done))

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        """The records an earlier attempt created, recognised by their marker among the
        author's latest posts. `part_ids` may be shorter than `post.parts` (a thread cut
        short): publish again with `published_parts=part_ids` to finish it."""
        if not post.idempotency_key or not credentials.external_id:
            return None
        body = await self._xrpc(
            "GET",
            "com.atproto.repo.listRecords",
            credentials,
            creates=False,
            params={"repo": credentials.external_id, "collection": POST, "limit": LOOKUP_LIMIT},
        )
        by_marker = {
            r["value"].get(MARKER): str(r["uri"])
            for r in body.get("records", [])
            if isinstance(r, dict) and isinstance(r.get("value"), dict)
        }
        parts: list[str] = []
        for index in range(len(post.parts or (post.text,))):
            uri = by_marker.get(f"{post.idempotency_key}:{index}")
            if uri is None:
                break
            parts.append(uri)
        if not parts:
            return None
        return Published(parts[0], self._url(parts[0], credentials), tuple(parts))

    async def comment(self, published: Published, text: str, credentials: Credentials) -> Published:
        ids = published.part_ids or (published.platform_post_id,)
        root = await self._ref(ids[0], credentials)
        parent = root if len(ids) == 1 else await self._ref(ids[-1], credentials)
        ref = await self._create(
            credentials, self._record(text, None, {"root": root, "parent": parent})
        )
        return Published(ref["uri"], self._url(ref["uri"], credentials), (ref["uri"],))

    async def delete(self, published: Published, credentials: Credentials) -> None:
        for uri in parts_newest_first(published):
            await self._xrpc(
                "POST",
                "com.atproto.repo.deleteRecord",
                credentials,
                creates=False,
                json={"repo": credentials.external_id, "collection": POST, "rkey": _rkey(uri)},
            )

    async def fetch_metrics(self, published: Published, credentials: Credentials) -> Metrics:
        body = await self._xrpc(
            "GET",
            "app.bsky.feed.getPosts",
            credentials,
            creates=False,
            params={"uris": published.platform_post_id},
        )
        posts = body.get("posts") or [{}]
        view = posts[0]
        counts = {k: view.get(k) for k in ("likeCount", "repostCount", "replyCount", "quoteCount")}
        shares = None
        if counts["repostCount"] is not None or counts["quoteCount"] is not None:
            shares = (counts["repostCount"] or 0) + (counts["quoteCount"] or 0)
        return Metrics(
            likes=counts["likeCount"], comments=counts["replyCount"], shares=shares, raw=counts
        )

    async def refresh_token(self, credentials: Credentials) -> TokenSet:
        """refreshSession with the stored refresh JWT; with an app password, a refused
        refresh falls back to a new session."""
        pds = self._pds(credentials)
        if credentials.refresh_token:
            try:
                body = await self.api.json(
                    "POST",
                    f"{pds}/xrpc/com.atproto.server.refreshSession",
                    creates=False,
                    secrets=secrets_of(credentials),
                    headers={"Authorization": f"Bearer {credentials.refresh_token}"},
                )
                return session_from(body, pds).tokens
            except AuthError:
                if not credentials.extra.get("app_password"):
                    raise
        password = credentials.extra.get("app_password")
        handle = credentials.extra.get("handle") or credentials.external_id
        if not password or not handle:
            raise AuthError("the Bluesky session cannot be renewed; reconnect the account")
        session = await create_session(self.http, self.settings, handle, password, pds_url=pds)
        return session.tokens
