"""Local fakes of the OAuth providers' own endpoints, for connection tests end to end:
the authorize page (it "approves" at once and redirects back with a code, as the real page
does after the user clicks Allow), the token endpoint and the identity look-ups, each shaped
as the provider documents them:

- Meta (Facebook Login, Graph API): `GET /dialog/oauth`, `POST|GET /oauth/access_token`
  (code -> short-lived user token; `grant_type=fb_exchange_token` -> long-lived),
  `GET /me/accounts` (the Pages the user manages, each with its own Page token; with
  `instagram_business_account` when that field is asked for; cursor-paged by `after`).
- LinkedIn: `GET /oauth/v2/authorization`, `POST /oauth/v2/accessToken`,
  `GET /v2/userinfo` (OpenID Connect; `sub` is the member id of `urn:li:person:{sub}`).
- Threads: `GET /oauth/authorize`, `POST /oauth/access_token` (short-lived token and
  `user_id`), `GET /access_token?grant_type=th_exchange_token` (long-lived),
  `GET /v1.0/me`.

Each code works once, for the client and redirect URI it was issued to, and (Meta) only
with the PKCE verifier of its challenge; identity endpoints accept only the token kind the
provider would accept there (Meta's `/me/accounts` and Threads' `/me`: the long-lived
token, so a flow that forgot the exchange fails here as it would fail later in production).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENTS = {
    "facebook": ("fb-app", "fb-secret-value"),
    "linkedin": ("li-client", "li-secret-value"),
    "threads": ("th-app", "th-secret-value"),
}


@dataclass
class Page:
    id: str
    name: str
    instagram: dict[str, str] | None = None
    tasks: tuple[str, ...] = ("ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE")


@dataclass
class Grant:
    provider: str
    redirect_uri: str
    challenge: str | None


@dataclass
class Providers:
    port: int = 0
    pages: list[Page] = field(default_factory=list)
    codes: dict[str, Grant] = field(default_factory=dict)
    # access token -> what it is ("fb-user-short", "fb-user-long", "li", "th-short", ...)
    tokens: dict[str, str] = field(default_factory=dict)
    # Most Pages per /me/accounts answer, whatever `limit` asks (Graph's default is 25).
    page_size: int = 25
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, object]:
        """Settings that point the app at these fakes (client ids as registered here)."""
        return {
            "facebook_authorize_url": f"{self.url}/fb/v23.0/dialog/oauth",
            "meta_graph_base_url": f"{self.url}/graph",
            "meta_graph_version": "v23.0",
            "facebook_client_id": CLIENTS["facebook"][0],
            "facebook_client_secret": CLIENTS["facebook"][1],
            "linkedin_authorize_url": f"{self.url}/li/oauth/v2/authorization",
            "linkedin_token_url": f"{self.url}/li/oauth/v2/accessToken",
            "linkedin_api_base_url": f"{self.url}/li-api",
            "linkedin_client_id": CLIENTS["linkedin"][0],
            "linkedin_client_secret": CLIENTS["linkedin"][1],
            "threads_authorize_url": f"{self.url}/threads-web/oauth/authorize",
            "threads_api_base_url": f"{self.url}/threads",
            "threads_client_id": CLIENTS["threads"][0],
            "threads_client_secret": CLIENTS["threads"][1],
        }

    def issue(self, kind: str) -> str:
        token = f"{kind}-{next(self.ids)}"
        self.tokens[token] = kind
        return token

    def seen(self, path: str) -> list[dict[str, str]]:
        return [params for _, p, params in self.requests if p == path]

    # ---- The consent pages: approve at once, send the browser back ---------------------
    def authorize(self, provider: str) -> Any:
        async def page(request: Request) -> Response:
            q = dict(request.query_params)
            self.requests.append(("GET", request.url.path, q))
            if q.get("client_id") != CLIENTS[provider][0] or q.get("response_type") != "code":
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            if not q.get("redirect_uri") or not q.get("state") or not q.get("scope"):
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = f"{provider}-code-{next(self.ids)}"
            challenge = (
                q.get("code_challenge") if q.get("code_challenge_method") == "S256" else None
            )
            self.codes[code] = Grant(provider, q["redirect_uri"], challenge)
            back = {"code": code, "state": q["state"]}
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode(back)}", status_code=302)

        return page

    def _redeem(self, provider: str, params: dict[str, str], *, pkce: bool) -> str | None:
        """Why the code exchange is refused, or None."""
        client_id, secret = CLIENTS[provider]
        if params.get("client_id") != client_id or params.get("client_secret") != secret:
            return "bad client credentials"
        grant = self.codes.pop(params.get("code", ""), None)
        if grant is None or grant.provider != provider:
            return "unknown or used code"
        if params.get("redirect_uri") != grant.redirect_uri:
            return "redirect_uri differs from the authorize request's"
        if pkce and grant.challenge is not None:
            verifier = params.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
                return "code_verifier does not match"
        return None

    async def _params(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.form()).items()})
        self.requests.append((request.method, request.url.path, params))
        return params

    # ---- Meta ------------------------------------------------------------------------
    @staticmethod
    def _graph_error(message: str, code: int = 190, status: int = 400) -> Response:
        body = {"error": {"message": message, "type": "OAuthException", "code": code}}
        return JSONResponse(body, status_code=status)

    async def fb_token(self, request: Request) -> Response:
        params = await self._params(request)
        if params.get("grant_type") == "fb_exchange_token":
            client_id, secret = CLIENTS["facebook"]
            short = params.get("fb_exchange_token", "")
            if params.get("client_id") != client_id or params.get("client_secret") != secret:
                return self._graph_error("Error validating client secret.", code=1)
            if self.tokens.get(short) != "fb-user-short":
                return self._graph_error("Invalid OAuth access token.")
            long = self.issue("fb-user-long")
            return JSONResponse(
                {"access_token": long, "token_type": "bearer", "expires_in": 5_183_944}
            )
        if problem := self._redeem("facebook", params, pkce=True):
            return self._graph_error(f"Error validating verification code: {problem}", code=100)
        short = self.issue("fb-user-short")
        return JSONResponse({"access_token": short, "token_type": "bearer", "expires_in": 5400})

    async def fb_accounts(self, request: Request) -> Response:
        params = await self._params(request)
        user_token = params.get("access_token", "")
        if self.tokens.get(user_token) != "fb-user-long":
            return self._graph_error("Error validating access token: not a long-lived token.")
        fields = params.get("fields", "")
        # Graph may answer fewer than `limit` asks for: at most `page_size` here.
        limit = min(int(params.get("limit") or 25), self.page_size)
        start = int(params.get("after") or 0)
        data = []
        for page in self.pages[start : start + limit]:
            # With `fields`, Graph answers exactly the fields asked for.
            entry: dict[str, Any] = {"id": page.id, "name": page.name}
            if "tasks" in fields:
                entry["tasks"] = list(page.tasks)
            if "access_token" in fields:
                # A Page token made from a long-lived user token (it does not expire).
                entry["access_token"] = f"page-{page.id}-of-{user_token}"
                self.tokens[entry["access_token"]] = f"page:{page.id}"
            if "instagram_business_account" in fields and page.instagram:
                entry["instagram_business_account"] = dict(page.instagram)
            data.append(entry)
        end = start + len(data)
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(end)}}
        if end < len(self.pages):
            query = {**params, "after": str(end), "limit": str(limit)}
            paging["next"] = f"{self.url}{request.url.path}?{urlencode(query)}"
        return JSONResponse({"data": data, "paging": paging})

    # ---- LinkedIn --------------------------------------------------------------------
    async def li_token(self, request: Request) -> Response:
        params = await self._params(request)
        if params.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if problem := self._redeem("linkedin", params, pkce=False):
            body = {"error": "invalid_request", "error_description": problem}
            return JSONResponse(body, status_code=400)
        return JSONResponse(
            {
                "access_token": self.issue("li"),
                "expires_in": 5_184_000,
                "refresh_token": self.issue("li-refresh"),
                "refresh_token_expires_in": 31_536_000,
                "scope": "openid,profile,w_member_social",
                "token_type": "Bearer",
            }
        )

    async def li_userinfo(self, request: Request) -> Response:
        self.requests.append(("GET", request.url.path, {}))
        auth = request.headers.get("authorization", "")
        if self.tokens.get(auth.removeprefix("Bearer ")) != "li":
            body = {"serviceErrorCode": 65600, "message": "Invalid access token", "status": 401}
            return JSONResponse(body, status_code=401)
        return JSONResponse(
            {
                "sub": "782bbtaQ",
                "name": "Dana Dev",
                "given_name": "Dana",
                "family_name": "Dev",
                "locale": {"country": "US", "language": "en"},
                "email_verified": True,
            }
        )

    # ---- Threads ---------------------------------------------------------------------
    async def th_token(self, request: Request) -> Response:
        params = await self._params(request)
        if params.get("grant_type") != "authorization_code":
            return self._graph_error("Unsupported grant_type", code=100)
        if problem := self._redeem("threads", params, pkce=False):
            return self._graph_error(f"Error validating verification code: {problem}", 100)
        return JSONResponse({"access_token": self.issue("th-short"), "user_id": 17841401})

    async def th_exchange(self, request: Request) -> Response:
        params = await self._params(request)
        if (
            params.get("grant_type") != "th_exchange_token"
            or params.get("client_secret") != CLIENTS["threads"][1]
            or self.tokens.get(params.get("access_token", "")) != "th-short"
        ):
            return self._graph_error("Invalid OAuth access token.")
        long = self.issue("th-long")
        return JSONResponse({"access_token": long, "token_type": "bearer", "expires_in": 5_183_944})

    async def th_me(self, request: Request) -> Response:
        params = await self._params(request)
        if self.tokens.get(params.get("access_token", "")) != "th-long":
            return self._graph_error("Error validating access token.")
        return JSONResponse({"id": "17841401", "username": "dana.dev", "name": "Dana Dev"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/fb/v23.0/dialog/oauth", self.authorize("facebook")),
                Route("/graph/v23.0/oauth/access_token", self.fb_token, methods=["GET", "POST"]),
                Route("/graph/v23.0/me/accounts", self.fb_accounts),
                Route("/li/oauth/v2/authorization", self.authorize("linkedin")),
                Route("/li/oauth/v2/accessToken", self.li_token, methods=["POST"]),
                Route("/li-api/v2/userinfo", self.li_userinfo),
                Route("/threads-web/oauth/authorize", self.authorize("threads")),
                Route("/threads/oauth/access_token", self.th_token, methods=["POST"]),
                Route("/threads/access_token", self.th_exchange),
                Route("/threads/v1.0/me", self.th_me),
            ]
        )


@asynccontextmanager
async def serve_providers() -> AsyncIterator[Providers]:
    providers = Providers()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    providers.port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(providers.app(), lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield providers
    finally:
        server.should_exit = True
        await task
        sock.close()
