"""Bluesky's XRPC pieces the publisher and the account connection share: sessions
(createSession with a handle and an app password), the XRPC error mapping, and rich-text
facets (links and hashtags as UTF-8 byte ranges, as app.bsky.richtext.facet defines them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from app.platforms.adapters.base import (
    Api,
    json_or_empty,
    retry_after_header,
    seconds_until_epoch,
)
from app.platforms.publishing import AuthError, PermanentError, PublishError, TokenSet
from app.settings import Settings

_LINK = re.compile(r"https?://[^\s<>\"]+")
# As Bluesky's clients find them: `#` after a space or at the start, up to the next space.
_TAG = re.compile(r"(?:^|(?<=\s))[#\uff03](\S+)")
_TRAILING = ".,;:!?)]}'\""


def retry_after(response: httpx.Response) -> float | None:
    return retry_after_header(response.headers) or seconds_until_epoch(
        response.headers.get("ratelimit-reset")
    )


def classify(response: httpx.Response, creates: bool, text: str) -> PublishError | None:
    error = json_or_empty(response)
    code = error.get("error") if isinstance(error, dict) else None
    if code in ("ExpiredToken", "InvalidToken", "AuthenticationRequired", "AccountTakedown"):
        return AuthError(
            f"Bluesky refused the session ({code}): {text}", status=response.status_code
        )
    return None


def facets(text: str) -> list[dict[str, Any]]:
    """Links and hashtags as rich-text facets: byte offsets into the UTF-8 text."""

    def span(start: int, end: int) -> dict[str, int]:
        return {
            "byteStart": len(text[:start].encode()),
            "byteEnd": len(text[:end].encode()),
        }

    found: list[dict[str, Any]] = []
    for match in _LINK.finditer(text):
        uri = match.group(0).rstrip(_TRAILING)
        end = match.start() + len(uri)
        found.append(
            {
                "index": span(match.start(), end),
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
            }
        )
    links = [(f["index"]["byteStart"], f["index"]["byteEnd"]) for f in found]
    for match in _TAG.finditer(text):
        tag = match.group(1).rstrip(_TRAILING)
        start, end = match.start(), match.start(1) + len(tag)
        index = span(start, end)
        inside_link = any(a <= index["byteStart"] < b for a, b in links)
        if tag and not tag.isdigit() and not inside_link and len(tag) <= 64:
            found.append(
                {"index": index, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]}
            )
    return sorted(found, key=lambda f: int(f["index"]["byteStart"]))


def expiry(token: str | None) -> float | None:
    if not token:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


@dataclass(frozen=True)
class Session:
    did: str
    handle: str
    access_jwt: str
    refresh_jwt: str
    pds_url: str

    @property
    def tokens(self) -> TokenSet:
        exp = expiry(self.access_jwt)
        return TokenSet(
            access_token=self.access_jwt,
            refresh_token=self.refresh_jwt,
            expires_at=datetime.fromtimestamp(exp, UTC) if exp else None,
        )


def session_from(body: Any, pds_url: str) -> Session:
    if not isinstance(body, dict) or not body.get("accessJwt") or not body.get("did"):
        raise PermanentError("Bluesky answered without a session")
    # The account's own PDS, from its DID document (the entryway may not host it).
    for service in (body.get("didDoc") or {}).get("service", []):
        if isinstance(service, dict) and service.get("id", "").endswith("#atproto_pds"):
            pds_url = str(service.get("serviceEndpoint") or pds_url).rstrip("/")
    return Session(
        did=str(body["did"]),
        handle=str(body.get("handle") or ""),
        access_jwt=str(body["accessJwt"]),
        refresh_jwt=str(body.get("refreshJwt") or ""),
        pds_url=pds_url,
    )


async def create_session(
    http: httpx.AsyncClient,
    settings: Settings,
    handle: str,
    app_password: str,
    *,
    pds_url: str | None = None,
) -> Session:
    """Sign in with a handle and an app password (connecting an account); `AuthError` when
    Bluesky refuses them."""
    base = (pds_url or settings.bluesky_pds_url).rstrip("/")
    api = Api(http, "Bluesky", retry_after=retry_after, classify=classify)
    body = await api.json(
        "POST",
        f"{base}/xrpc/com.atproto.server.createSession",
        creates=False,
        secrets=(app_password,),
        json={"identifier": handle, "password": app_password},
    )
    return session_from(body, base)
