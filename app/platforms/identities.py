"""Who a set of OAuth tokens publishes as: the account(s) to store after a connection.

X: the user (GET /2/users/me). LinkedIn: the member (OpenID userinfo; author URN
`urn:li:person:{sub}`). Threads: the user (GET /me). Facebook: each Page the user manages
and may create content on (its `tasks`), with the Page's own token (GET /me/accounts, every
answer of its cursor paging). Instagram: each business account linked to those Pages, with
its Page's token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.models.vocabulary import Platform
from app.platforms.adapters.base import Api
from app.platforms.oauth import NotConfigured
from app.platforms.publishing import TokenSet
from app.settings import Settings

# /me/accounts answers 25 Pages at a time (Graph API cursor paging); at most this many
# answers are read (2,500 Pages).
PAGE_LIMIT = 100
MAX_PAGE_REQUESTS = 25


@dataclass(frozen=True)
class Identity:
    """An account the tokens can publish as."""

    external_id: str
    name: str
    username: str | None = None
    # The token to store for this account when it is not the user's (a Page's token).
    access_token: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


async def identify(
    http: httpx.AsyncClient, settings: Settings, platform: Platform, tokens: TokenSet
) -> list[Identity]:
    """Who the tokens publish as. Facebook: each Page the user manages (with the Page's
    token); Instagram: each business account linked to those Pages (with its Page's token)."""
    token = tokens.access_token
    api = Api(http, platform.value)
    bearer = {"Authorization": f"Bearer {token}"}
    graph = f"{settings.meta_graph_base_url}/{settings.meta_graph_version}"
    if platform is Platform.X:
        body = await api.json(
            "GET", f"{settings.x_api_base_url}/2/users/me", creates=False, headers=bearer
        )
        user = body.get("data", {})
        return [Identity(str(user["id"]), user.get("name", ""), user.get("username"))]
    if platform is Platform.LINKEDIN:
        body = await api.json(
            "GET", f"{settings.linkedin_api_base_url}/v2/userinfo", creates=False, headers=bearer
        )
        return [Identity(f"urn:li:person:{body['sub']}", body.get("name", ""))]
    if platform is Platform.THREADS:
        body = await api.json(
            "GET",
            f"{settings.threads_api_base_url}/{settings.threads_api_version}/me",
            creates=False,
            params={"fields": "id,username,name", "access_token": token},
            secrets=(token,),
        )
        return [Identity(str(body["id"]), body.get("name") or "", body.get("username"))]
    if platform in (Platform.FACEBOOK, Platform.INSTAGRAM):
        fields = "id,name,access_token,tasks"
        if platform is Platform.INSTAGRAM:
            fields += ",instagram_business_account{id,username,name}"
        found: list[Identity] = []
        for page in await _managed_pages(api, graph, fields, token):
            if platform is Platform.FACEBOOK:
                tasks = page.get("tasks")
                if isinstance(tasks, list) and "CREATE_CONTENT" not in tasks:
                    continue  # a role that cannot post (e.g. analyst): nothing to publish as
                found.append(
                    Identity(str(page["id"]), page.get("name", ""), None, page.get("access_token"))
                )
            elif ig := page.get("instagram_business_account"):
                found.append(
                    Identity(
                        str(ig["id"]),
                        ig.get("name") or ig.get("username", ""),
                        ig.get("username"),
                        page.get("access_token"),
                        {"page_id": str(page["id"])},
                    )
                )
        return found
    raise NotConfigured(f"{platform.value} does not connect through OAuth")


async def _managed_pages(api: Api, graph: str, fields: str, token: str) -> list[dict[str, Any]]:
    """Every Page the user manages, following the Graph API's `after` cursors (never the
    answer's `next` URL itself: the token is only sent to the configured Graph host)."""
    params = {"fields": fields, "access_token": token, "limit": str(PAGE_LIMIT)}
    pages: list[dict[str, Any]] = []
    for _ in range(MAX_PAGE_REQUESTS):
        body = await api.json(
            "GET", f"{graph}/me/accounts", creates=False, params=params, secrets=(token,)
        )
        pages += [p for p in body.get("data", []) if isinstance(p, dict)]
        paging = body.get("paging") or {}
        after = (paging.get("cursors") or {}).get("after")
        if not paging.get("next") or not after:
            break
        params = {**params, "after": str(after)}
    return pages
