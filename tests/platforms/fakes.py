"""Longer than 400 lines because it is one fake per platform API, served together by one
local HTTP server (uvicorn), each small and shaped as the platform documents it.

Local fakes of the platforms' HTTP APIs, on one real uvicorn server: X API v2, LinkedIn
REST (Posts, Images, socialActions), Meta's Graph API (Facebook Pages and Instagram),
Threads, Mastodon, Bluesky XRPC, each platform's OAuth token endpoint, and a media host.

Every request is recorded (`Seen`: method, path, query, headers, raw body) before it is
answered. Faults are scripted per route (`fail(method, path_regex, Fault(...))`): an
error status with the platform's own error body and headers, a dropped connection after
the request was read (the client sees the response cut off: the request may have been
accepted), or a hang (the client's read timeout).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TOKEN = "tok-live-123456"  # every platform's valid access token in the fakes
JWT_SECRET = "fake-pds-secret-at-least-32-bytes!!"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class Fault:
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # handle the request (it takes effect), then cut the answer off
    hang: bool = False  # read the request, never answer


Handler = Callable[[Request], Awaitable[Response]]


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


class FakePlatforms:
    def __init__(self) -> None:
        self.port = 0
        self.seen: list[Seen] = []
        # (method, path, fault, [matching requests to let through first, times to fail])
        self.faults: list[tuple[str, re.Pattern[str], Fault, list[int]]] = []
        self.released = asyncio.Event()
        self.ids = itertools.count(1000)
        self.reset()
        routes = [
            Route("/media/{name}", self.media, methods=["GET"]),
            # X
            Route("/2/tweets", self.x_create, methods=["POST"]),
            Route("/2/tweets/{id}", self.x_tweet, methods=["GET", "DELETE"]),
            Route("/2/media/upload", self.x_upload, methods=["POST"]),
            Route("/2/media/upload", self.x_status, methods=["GET"]),
            Route("/2/media/upload/initialize", self.x_init, methods=["POST"]),
            Route("/2/media/upload/{id}/append", self.x_append, methods=["POST"]),
            Route("/2/media/upload/{id}/finalize", self.x_finalize, methods=["POST"]),
            Route("/2/media/metadata", self.x_metadata, methods=["POST"]),
            Route("/2/users/me", self.x_me, methods=["GET"]),
            Route("/2/oauth2/token", self.oauth_token("x"), methods=["POST"]),
            # LinkedIn
            Route("/rest/posts", self.li_create, methods=["POST"]),
            Route("/rest/posts/{urn}", self.li_delete, methods=["DELETE"]),
            Route("/rest/images", self.li_images, methods=["POST"]),
            Route("/li-upload/{n}", self.li_upload, methods=["PUT"]),
            Route("/rest/socialActions/{urn}", self.li_social, methods=["GET"]),
            Route("/rest/socialActions/{urn}/comments", self.li_comment, methods=["POST"]),
            Route("/v2/userinfo", self.li_userinfo, methods=["GET"]),
            Route("/oauth/v2/accessToken", self.oauth_token("linkedin"), methods=["POST"]),
            # Meta Graph (Facebook, Instagram)
            Route("/v23.0/oauth/access_token", self.oauth_token("facebook"), methods=["POST"]),
            Route("/v23.0/oauth/access_token", self.fb_exchange, methods=["GET"]),
            Route("/v23.0/me/accounts", self.fb_accounts, methods=["GET"]),
            Route("/v23.0/{id}/{edge}", self.graph_edge, methods=["GET", "POST"]),
            Route("/v23.0/{id}", self.graph_node, methods=["GET", "DELETE"]),
            # Threads
            Route("/oauth/access_token", self.oauth_token("threads"), methods=["POST"]),
            Route("/access_token", self.th_exchange, methods=["GET"]),
            Route("/refresh_access_token", self.th_refresh, methods=["GET"]),
            Route("/v1.0/me", self.th_me, methods=["GET"]),
            Route("/v1.0/{id}/{edge}", self.threads_edge, methods=["GET", "POST"]),
            Route("/v1.0/{id}", self.threads_node, methods=["GET", "DELETE"]),
            # Mastodon
            Route("/api/v1/statuses", self.md_create, methods=["POST"]),
            Route("/api/v1/statuses/{id}", self.md_status, methods=["GET", "DELETE"]),
            Route("/api/v2/media", self.md_upload, methods=["POST"]),
            Route("/api/v1/media/{id}", self.md_media, methods=["GET"]),
            Route("/api/v1/apps", self.md_apps, methods=["POST"]),
            Route("/api/v1/accounts/verify_credentials", self.md_me, methods=["GET"]),
            Route("/oauth/token", self.oauth_token("mastodon"), methods=["POST"]),
            # Bluesky
            Route("/xrpc/{nsid}", self.xrpc, methods=["GET", "POST"]),
        ]
        self.app = Starlette(routes=routes)

    def reset(self) -> None:
        self.seen = []
        self.faults = []
        self.tweets: dict[str, dict[str, Any]] = {}
        # A tweet's public_metrics, when a test sets them (else the fixed ones below).
        self.x_metrics: dict[str, dict[str, int]] = {}
        self.x_media: dict[str, dict[str, Any]] = {}
        self.li_posts: dict[str, dict[str, Any]] = {}
        self.li_images_up: dict[str, bytes] = {}
        self.graph: dict[str, dict[str, Any]] = {}  # every Graph/Threads object by id
        self.statuses: dict[str, dict[str, Any]] = {}
        self.md_keys: dict[str, str] = {}
        self.md_media_polls: dict[str, int] = {}
        self.records: dict[str, dict[str, Any]] = {}  # Bluesky at-uri -> {cid, value}
        self.blobs: dict[str, bytes] = {}
        self.codes: dict[str, dict[str, str]] = {}  # OAuth code -> challenge, redirect
        self.refresh_tokens: set[str] = {"refresh-1"}
        # Access tokens the OAuth token endpoints issued (valid like TOKEN for X and Mastodon).
        self.issued: set[str] = set()
        self.poll_pending = 0  # container / media status polls that answer "in progress"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, method: str, path: str, fault: Fault, times: int = 1, after: int = 0) -> None:
        """The next `times` requests matching `method` and `path` (a regex), after letting
        `after` of them through, meet `fault`."""
        self.faults.append((method, re.compile(path), fault, [after, times]))

    def requests(self, method: str, path: str) -> list[Seen]:
        pattern = re.compile(path)
        return [s for s in self.seen if s.method == method and pattern.fullmatch(s.path)]

    def approve(self, challenge: str, redirect_uri: str) -> str:
        """The user approved on the platform's consent page: a code for this challenge."""
        code = f"code-{next(self.ids)}"
        self.codes[code] = {"challenge": challenge, "redirect_uri": redirect_uri}
        return code

    # The ASGI entry: record, then a scripted fault or the platform's answer.
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        seen = Seen(
            scope["method"],
            scope["path"],
            dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True)),
            headers,
            body,
        )
        self.seen.append(seen)
        scope.setdefault("state", {})["seen"] = seen
        fault = None
        for method, pattern, candidate, left in self.faults:
            if left[1] > 0 and method == scope["method"] and pattern.fullmatch(scope["path"]):
                if left[0] > 0:
                    left[0] -= 1
                    break
                left[1] -= 1
                fault = candidate
                break
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        if fault is None:
            await self.app(scope, replay, send)
            return
        if fault.drop:
            # The platform handles the request (the post exists), then the answer is lost.
            async def swallow(message: dict[str, Any]) -> None:
                return None

            await self.app(scope, replay, swallow)
        await self._fault(fault, send)

    async def _fault(self, fault: Fault, send: Send) -> None:
        if fault.hang:
            await self.released.wait()
            return
        if fault.drop:
            # Headers promise 64 bytes, 2 arrive, then the connection closes.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"', "more_body": True})
            raise ConnectionAbortedError("fake platform dropped the connection")
        payload = json.dumps(fault.body if fault.body is not None else {}).encode()
        headers = [(b"content-type", b"application/json")]
        headers += [(k.encode(), v.encode()) for k, v in fault.headers.items()]
        await send({"type": "http.response.start", "status": fault.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _new_id(self) -> str:
        return str(next(self.ids))

    async def media(self, request: Request) -> Response:
        return Response(PNG, media_type="image/png")

    # ---- X API v2 ------------------------------------------------------------------
    def _x_auth(self, request: Request) -> Response | None:
        if _bearer(request) != TOKEN and _bearer(request) not in self.issued:
            body = {"title": "Unauthorized", "type": "about:blank", "status": 401}
            return JSONResponse({**body, "detail": "Unauthorized"}, status_code=401)
        return None

    async def x_create(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        body = await request.json()
        text = body.get("text")
        reply = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        problems = []
        if not isinstance(text, str) or not text:
            problems.append("text is required")
        if reply is not None and reply not in self.tweets:
            problems.append("in_reply_to_tweet_id does not exist")
        for media_id in (body.get("media") or {}).get("media_ids", []):
            if media_id not in self.x_media:
                problems.append(f"media {media_id} not found")
        if problems:
            error = {"title": "Invalid Request", "detail": "; ".join(problems), "status": 400}
            return JSONResponse({**error, "type": "about:blank"}, status_code=400)
        tweet_id = self._new_id()
        self.tweets[tweet_id] = body
        data = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        return JSONResponse({"data": data}, status_code=201)

    async def x_tweet(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        tweet_id = request.path_params["id"]
        if tweet_id not in self.tweets:
            return JSONResponse({"title": "Not Found Error", "status": 404}, status_code=404)
        if request.method == "DELETE":
            del self.tweets[tweet_id]
            return JSONResponse({"data": {"deleted": True}})
        data: dict[str, Any] = {"id": tweet_id, "text": self.tweets[tweet_id]["text"]}
        if "public_metrics" in request.query_params.get("tweet.fields", ""):
            data["public_metrics"] = self.x_metrics.get(tweet_id) or {
                "retweet_count": 3,
                "reply_count": 2,
                "like_count": 10,
                "quote_count": 1,
                "bookmark_count": 0,
                "impression_count": 250,
            }
        return JSONResponse({"data": data})

    async def x_upload(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        form = await request.form()
        media = form.get("media")
        category = form.get("media_category")
        if not isinstance(media, UploadFile) or category not in ("tweet_image", "tweet_gif"):
            return JSONResponse({"title": "Invalid Request", "status": 400}, status_code=400)
        data = await media.read()
        request.state.seen.files["media"] = (media.filename or "", media.content_type or "", data)
        media_id = self._new_id()
        self.x_media[media_id] = {"size": len(data), "category": category}
        body = {"id": media_id, "media_key": f"3_{media_id}", "size": len(data)}
        return JSONResponse({"data": {**body, "expires_after_secs": 86400}})

    async def x_init(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        body = await request.json()
        if body.get("media_category") != "tweet_video" or not body.get("total_bytes"):
            return JSONResponse({"title": "Invalid Request", "status": 400}, status_code=400)
        media_id = self._new_id()
        self.x_media[media_id] = {**body, "chunks": {}, "polls": self.poll_pending}
        return JSONResponse(
            {"data": {"id": media_id, "media_key": f"7_{media_id}", "expires_after_secs": 86399}}
        )

    async def x_append(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        media = self.x_media.get(request.path_params["id"])
        form = await request.form()
        chunk = form.get("media")
        if media is None or not isinstance(chunk, UploadFile):
            return JSONResponse({"title": "Invalid Request", "status": 400}, status_code=400)
        media["chunks"][int(str(form.get("segment_index")))] = await chunk.read()
        return JSONResponse({"data": {"expires_at": int(time.time()) + 86400}})

    async def x_finalize(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        media_id = request.path_params["id"]
        media = self.x_media[media_id]
        data = b"".join(media["chunks"][i] for i in sorted(media["chunks"]))
        if len(data) != media["total_bytes"]:
            return JSONResponse(
                {"title": "Invalid Request", "detail": "size mismatch", "status": 400},
                status_code=400,
            )
        media["data"] = data
        body: dict[str, Any] = {"id": media_id, "size": len(data), "expires_after_secs": 86400}
        if media["polls"]:
            body["processing_info"] = {"state": "pending", "check_after_secs": 1}
        return JSONResponse({"data": body})

    async def x_status(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        media = self.x_media[request.query_params["media_id"]]
        media["polls"] -= 1
        state = "in_progress" if media["polls"] > 0 else "succeeded"
        return JSONResponse(
            {
                "data": {
                    "id": request.query_params["media_id"],
                    "processing_info": {"state": state, "progress_percent": 50},
                }
            }
        )

    async def x_metadata(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        body = await request.json()
        self.x_media[body["id"]]["alt_text"] = body["metadata"]["alt_text"]["text"]
        return JSONResponse({"data": {"id": body["id"], "associated_metadata": True}})

    async def x_me(self, request: Request) -> Response:
        if denied := self._x_auth(request):
            return denied
        return JSONResponse({"data": {"id": "2244994945", "name": "Dev", "username": "dev"}})

    # ---- LinkedIn --------------------------------------------------------------------
    def _li_check(self, request: Request) -> Response | None:
        if _bearer(request) != TOKEN:
            return JSONResponse(
                {
                    "status": 401,
                    "serviceErrorCode": 65600,
                    "code": "INVALID_ACCESS_TOKEN",
                    "message": "Invalid access token",
                },
                status_code=401,
            )
        if not re.fullmatch(r"\d{6}", request.headers.get("linkedin-version", "")):
            return JSONResponse(
                {
                    "status": 426,
                    "code": "NONEXISTENT_VERSION",
                    "message": "Requested version  is not active",
                },
                status_code=426,
            )
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return JSONResponse({"status": 400, "message": "Rest.li 2.0.0 required"}, 400)
        return None

    async def li_create(self, request: Request) -> Response:
        if denied := self._li_check(request):
            return denied
        body = await request.json()
        missing = [
            f"ERROR :: /{name} :: field is required but not found and has no default value"
            for name in ("author", "commentary", "visibility", "distribution", "lifecycleState")
            if name not in body
        ]
        if missing:
            return JSONResponse({"message": "\n".join(missing), "status": 422}, status_code=422)
        urn = f"urn:li:share:{self._new_id()}"
        self.li_posts[urn] = body
        return Response(status_code=201, headers={"x-restli-id": urn})

    async def li_delete(self, request: Request) -> Response:
        if denied := self._li_check(request):
            return denied
        self.li_posts.pop(request.path_params["urn"], None)
        return Response(status_code=204)

    async def li_images(self, request: Request) -> Response:
        if denied := self._li_check(request):
            return denied
        if request.query_params.get("action") != "initializeUpload":
            return JSONResponse({"status": 400, "message": "unknown action"}, 400)
        body = await request.json()
        if not body.get("initializeUploadRequest", {}).get("owner"):
            return JSONResponse({"status": 422, "message": "owner is required"}, 422)
        n = self._new_id()
        value = {
            "uploadUrlExpiresAt": int(time.time() * 1000) + 3_600_000,
            "uploadUrl": f"{self.url}/li-upload/{n}",
            "image": f"urn:li:image:{n}",
        }
        return JSONResponse({"value": value})

    async def li_upload(self, request: Request) -> Response:
        self.li_images_up[request.path_params["n"]] = await request.body()
        return Response(status_code=201)

    async def li_social(self, request: Request) -> Response:
        if denied := self._li_check(request):
            return denied
        return JSONResponse(
            {
                "likesSummary": {"totalLikes": 7, "likedByCurrentUser": False},
                "commentsSummary": {"aggregatedTotalComments": 4, "totalFirstLevelComments": 3},
                "target": request.path_params["urn"],
            }
        )

    async def li_comment(self, request: Request) -> Response:
        if denied := self._li_check(request):
            return denied
        body = await request.json()
        comment = f"urn:li:comment:({body['object']},{self._new_id()})"
        return JSONResponse({"$URN": comment}, status_code=201, headers={"x-restli-id": comment})

    async def li_userinfo(self, request: Request) -> Response:
        if _bearer(request) != TOKEN:
            return JSONResponse({"message": "Invalid access token", "status": 401}, 401)
        return JSONResponse({"sub": "782bbtaQ", "name": "Dev Person", "email_verified": True})

    # ---- OAuth token endpoints ----------------------------------------------------------
    def oauth_token(self, platform: str) -> Handler:
        async def token(request: Request) -> Response:
            form = dict(await request.form())
            grant = form.get("grant_type")
            error = {"error": "invalid_grant", "error_description": "Invalid grant"}
            if grant == "authorization_code":
                code = self.codes.pop(str(form.get("code")), None)
                verifier = str(form.get("code_verifier", ""))
                challenge = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                    .rstrip(b"=")
                    .decode()
                )
                if (
                    code is None
                    or code["challenge"] != challenge
                    or code["redirect_uri"] != form.get("redirect_uri")
                ):
                    return JSONResponse(error, status_code=400)
            elif grant == "refresh_token":
                if form.get("refresh_token") not in self.refresh_tokens:
                    return JSONResponse(error, status_code=400)
                self.refresh_tokens.discard(str(form["refresh_token"]))
            else:
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            fresh = f"refresh-{next(self.ids)}"
            self.refresh_tokens.add(fresh)
            body: dict[str, Any] = {
                "token_type": "bearer",
                "access_token": (access := f"{platform}-access-{next(self.ids)}"),
                "expires_in": 7200,
                "scope": "tweet.read tweet.write users.read offline.access",
            }
            self.issued.add(access)
            if platform in ("x", "linkedin"):
                body["refresh_token"] = fresh
            if platform == "threads":
                body = {"access_token": "threads-short", "user_id": 1234}
            if platform == "facebook":
                body = {"access_token": "fb-short", "token_type": "bearer", "expires_in": 3600}
            return JSONResponse(body)

        return token

    async def fb_exchange(self, request: Request) -> Response:
        q = request.query_params
        if q.get("grant_type") != "fb_exchange_token" or not q.get("fb_exchange_token"):
            return JSONResponse(
                {
                    "error": {
                        "message": "Invalid OAuth access token",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
                status_code=400,
            )
        return JSONResponse(
            {"access_token": "fb-long", "token_type": "bearer", "expires_in": 5_184_000}
        )

    async def th_exchange(self, request: Request) -> Response:
        q = request.query_params
        if q.get("grant_type") != "th_exchange_token" or q.get("access_token") != "threads-short":
            return JSONResponse({"error": {"message": "Invalid", "code": 190}}, 400)
        return JSONResponse(
            {"access_token": "threads-long", "token_type": "bearer", "expires_in": 5_183_944}
        )

    async def th_refresh(self, request: Request) -> Response:
        q = request.query_params
        if q.get("grant_type") != "th_refresh_token" or q.get("access_token") != TOKEN:
            return JSONResponse(
                {
                    "error": {
                        "message": "Session has expired",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
                status_code=400,
            )
        return JSONResponse(
            {"access_token": "threads-long-2", "token_type": "bearer", "expires_in": 5_183_944}
        )

    # ---- Meta Graph: Facebook Pages and Instagram ------------------------------------
    def _graph_auth(self, request: Request, fields: dict[str, str]) -> Response | None:
        if fields.get("access_token") != TOKEN:
            return JSONResponse(
                {
                    "error": {
                        "message": "Error validating access token: Session has expired",
                        "type": "OAuthException",
                        "code": 190,
                        "error_subcode": 463,
                        "fbtrace_id": "AbC",
                    }
                },
                status_code=400,
            )
        return None

    async def _fields(self, request: Request) -> dict[str, str]:
        fields = dict(request.query_params)
        if request.method == "POST":
            fields.update({k: str(v) for k, v in (await request.form()).items()})
        return fields

    async def fb_accounts(self, request: Request) -> Response:
        fields = await self._fields(request)
        if denied := self._graph_auth(request, fields):
            return denied
        page = {"id": "111", "name": "Dev Page", "access_token": "page-token"}
        if "instagram_business_account" in fields.get("fields", ""):
            page["instagram_business_account"] = {"id": "17841400001", "username": "devshop"}
        return JSONResponse({"data": [page], "paging": {}})

    def _graph_error(self, message: str, code: int = 100) -> Response:
        return JSONResponse(
            {"error": {"message": message, "type": "OAuthException", "code": code}},
            status_code=400,
        )

    async def graph_edge(self, request: Request) -> Response:
        fields = await self._fields(request)
        if denied := self._graph_auth(request, fields):
            return denied
        owner, edge = request.path_params["id"], request.path_params["edge"]
        new = self._new_id()
        if request.method == "GET" and edge == "insights":
            names = fields.get("metric", "").split(",")
            return JSONResponse(
                {
                    "data": [
                        {"name": n, "period": "lifetime", "values": [{"value": 5 + i}]}
                        for i, n in enumerate(names)
                    ]
                }
            )
        if edge == "feed":
            if not fields.get("message") and not any(
                k.startswith("attached_media") for k in fields
            ):
                return self._graph_error("(#100) Missing message or attachment")
            post_id = f"{owner}_{new}"
            self.graph[post_id] = {"kind": "post", **fields}
            return JSONResponse({"id": post_id})
        if edge == "photos":
            if not fields.get("url"):
                return self._graph_error("(#324) Requires upload file")
            self.graph[new] = {"kind": "photo", **fields}
            if fields.get("published") == "false":
                return JSONResponse({"id": new})
            post_id = f"{owner}_{self._new_id()}"
            self.graph[post_id] = {"kind": "post", "photo": new, **fields}
            return JSONResponse({"id": new, "post_id": post_id})
        if edge == "videos":
            self.graph[new] = {"kind": "video", **fields}
            return JSONResponse({"id": new})
        if edge == "comments":
            # POST /{object-id}/comments with `message` (Pages and Instagram media alike).
            if self.graph.get(owner, {}).get("kind") not in ("post", "photo", "ig_media"):
                return self._graph_error("(#100) Object does not exist or cannot be commented")
            if not fields.get("message"):
                return self._graph_error("(#100) The parameter message is required")
            self.graph[new] = {"kind": "comment", "parent": owner, **fields}
            return JSONResponse({"id": new})
        if edge == "media":
            if fields.get("media_type") == "CAROUSEL":
                children = fields.get("children", "").split(",")
                if not all(
                    self.graph.get(c, {}).get("is_carousel_item") == "true" for c in children
                ):
                    return self._graph_error("(#100) The children must be carousel items")
            elif not fields.get("image_url") and not fields.get("video_url"):
                return self._graph_error(
                    "(#100) Only photo or video can be accepted as media type."
                )
            self.graph[new] = {"kind": "container", "polls": self.poll_pending, **fields}
            return JSONResponse({"id": new})
        if edge == "media_publish":
            container = self.graph.get(fields.get("creation_id", ""))
            if not container or container["kind"] != "container":
                return self._graph_error("(#100) Media ID is not available", code=9007)
            if container.get("published"):
                return self._graph_error("(#100) Media ID is not available", code=9007)
            container["published"] = True
            self.graph[new] = {"kind": "ig_media", "container": fields["creation_id"]}
            return JSONResponse({"id": new})
        return self._graph_error(f"Unknown edge {edge}")

    async def graph_node(self, request: Request) -> Response:
        fields = await self._fields(request)
        if denied := self._graph_auth(request, fields):
            return denied
        node_id = request.path_params["id"]
        node = self.graph.get(node_id)
        if node is None:
            return self._graph_error("Unsupported get request. Object does not exist", code=100)
        if request.method == "DELETE":
            del self.graph[node_id]
            return JSONResponse({"success": True})
        if node["kind"] == "container":
            status = "IN_PROGRESS" if node["polls"] > 0 else "FINISHED"
            node["polls"] -= 1
            return JSONResponse({"id": node_id, "status_code": status})
        if node["kind"] == "ig_media":
            return JSONResponse(
                {"id": node_id, "permalink": f"https://www.instagram.com/p/X{node_id}/"}
            )
        return JSONResponse(
            {
                "id": node_id,
                "shares": {"count": 2},
                "reactions": {"data": [], "summary": {"total_count": 9}},
                "comments": {"data": [], "summary": {"total_count": 3}},
            }
        )

    # ---- Threads ---------------------------------------------------------------------
    async def th_me(self, request: Request) -> Response:
        fields = await self._fields(request)
        if denied := self._graph_auth(request, fields):
            return denied
        return JSONResponse({"id": "1234", "username": "dev.threads", "name": "Dev"})

    async def threads_edge(self, request: Request) -> Response:
        fields = await self._fields(request)
        if denied := self._graph_auth(request, fields):
            return denied
        owner, edge = request.path_params["id"], request.path_params["edge"]
        new = self._new_id()
        if request.method == "GET" and edge == "insights":
            names = fields.get("metric", "").split(",")
            return JSONResponse(
                {
                    "data": [
                        {"name": n, "period": "lifetime", "values": [{"value": 1 + i}]}
                        for i, n in enumerate(names)
                    ]
                }
            )
        if edge == "threads":
            kind = fields.get("media_type")
            if kind not in ("TEXT", "IMAGE", "VIDEO", "CAROUSEL"):
                return self._graph_error("(#100) media_type is required")
            if kind == "TEXT" and not fields.get("text"):
                return self._graph_error("(#100) text is required for TEXT posts")
            reply = fields.get("reply_to_id")
            if reply and self.graph.get(reply, {}).get("kind") != "thread":
                return self._graph_error("(#100) reply_to_id does not exist")
            self.graph[new] = {
                "kind": "th_container",
                "owner": owner,
                "polls": self.poll_pending,
                **fields,
            }
            return JSONResponse({"id": new})
        if edge == "threads_publish":
            container = self.graph.get(fields.get("creation_id", ""))
            if not container or container["kind"] != "th_container" or container.get("done"):
                return self._graph_error(
                    "(#100) The media is not ready or already published", code=24
                )
            container["done"] = True
            self.graph[new] = {
                "kind": "thread",
                "container": fields["creation_id"],
                "reply_to_id": container.get("reply_to_id"),
                "text": container.get("text"),
            }
            return JSONResponse({"id": new})
        return self._graph_error(f"Unknown edge {edge}")

    async def threads_node(self, request: Request) -> Response:
        fields = await self._fields(request)
        if denied := self._graph_auth(request, fields):
            return denied
        node_id = request.path_params["id"]
        node = self.graph.get(node_id)
        if node is None:
            return self._graph_error("Object does not exist")
        if request.method == "DELETE":
            del self.graph[node_id]
            return JSONResponse({"success": True, "deleted_id": node_id})
        if node["kind"] == "th_container":
            status = "IN_PROGRESS" if node["polls"] > 0 else "FINISHED"
            node["polls"] -= 1
            return JSONResponse({"id": node_id, "status": status})
        return JSONResponse(
            {"id": node_id, "permalink": f"https://www.threads.net/@dev/post/T{node_id}"}
        )

    # ---- Mastodon --------------------------------------------------------------------
    def _md_auth(self, request: Request) -> Response | None:
        if _bearer(request) != TOKEN and _bearer(request) not in self.issued:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        return None

    async def md_create(self, request: Request) -> Response:
        if denied := self._md_auth(request):
            return denied
        key = request.headers.get("idempotency-key")
        if key and key in self.md_keys:  # Mastodon answers a repeat with the same status
            return JSONResponse(self.statuses[self.md_keys[key]])
        body = await request.json()
        if not body.get("status") and not body.get("media_ids"):
            return JSONResponse({"error": "Validation failed: Text can't be blank"}, 422)
        reply = body.get("in_reply_to_id")
        if reply and reply not in self.statuses:
            return JSONResponse({"error": "Record not found"}, status_code=404)
        status_id = self._new_id()
        status = {
            "id": status_id,
            "uri": f"{self.url}/users/dev/statuses/{status_id}",
            "url": f"{self.url}/@dev/{status_id}",
            "content": f"<p>{body.get('status')}</p>",
            "in_reply_to_id": reply,
            "visibility": body.get("visibility", "public"),
            "media_attachments": [{"id": m} for m in body.get("media_ids", [])],
            "favourites_count": 0,
            "reblogs_count": 0,
            "replies_count": 0,
        }
        self.statuses[status_id] = status
        if key:
            self.md_keys[key] = status_id
        return JSONResponse(status)

    async def md_status(self, request: Request) -> Response:
        if denied := self._md_auth(request):
            return denied
        status = self.statuses.get(request.path_params["id"])
        if status is None:
            return JSONResponse({"error": "Record not found"}, status_code=404)
        if request.method == "DELETE":
            del self.statuses[status["id"]]
            return JSONResponse({**status, "text": "deleted"})
        return JSONResponse(
            {**status, "favourites_count": 6, "reblogs_count": 2, "replies_count": 1}
        )

    async def md_upload(self, request: Request) -> Response:
        if denied := self._md_auth(request):
            return denied
        form = await request.form()
        file = form.get("file")
        if not isinstance(file, UploadFile):
            return JSONResponse({"error": "Validation failed: File can't be blank"}, 422)
        request.state.seen.files["file"] = (
            file.filename or "",
            file.content_type or "",
            await file.read(),
        )
        media_id = self._new_id()
        self.md_media_polls[media_id] = self.poll_pending
        body = {"id": media_id, "type": "image", "description": form.get("description")}
        if self.poll_pending:
            return JSONResponse({**body, "url": None}, status_code=202)
        return JSONResponse({**body, "url": f"{self.url}/media/{media_id}.png"})

    async def md_media(self, request: Request) -> Response:
        media_id = request.path_params["id"]
        left = self.md_media_polls.get(media_id, 0)
        self.md_media_polls[media_id] = left - 1
        if left > 0:
            return JSONResponse({"id": media_id, "url": None}, status_code=206)
        return JSONResponse({"id": media_id, "url": f"{self.url}/media/{media_id}.png"})

    async def md_me(self, request: Request) -> Response:
        if denied := self._md_auth(request):
            return denied
        return JSONResponse({"id": "109", "username": "dev", "acct": "dev", "display_name": "Dev"})

    async def md_apps(self, request: Request) -> Response:
        form = dict(await request.form())
        if not form.get("client_name") or not form.get("redirect_uris"):
            return JSONResponse({"error": "Validation failed"}, status_code=422)
        return JSONResponse(
            {
                "id": "563419",
                "name": form["client_name"],
                "client_id": "md-client",
                "client_secret": "md-secret",
                "redirect_uri": form["redirect_uris"],
            }
        )

    # ---- Bluesky XRPC ----------------------------------------------------------------
    DID = "did:plc:fake1234"

    def session_jwts(self, lifetime: int = 7200) -> dict[str, str]:
        now = int(time.time())
        access = jwt.encode(
            {"scope": "com.atproto.access", "sub": self.DID, "iat": now, "exp": now + lifetime},
            JWT_SECRET,
            algorithm="HS256",
        )
        refresh = jwt.encode(
            {
                "scope": "com.atproto.refresh",
                "sub": self.DID,
                "iat": now,
                "exp": now + 90 * 86400,
                "jti": self._new_id(),
            },
            JWT_SECRET,
            algorithm="HS256",
        )
        return {"accessJwt": access, "refreshJwt": refresh}

    def _xrpc_error(self, status: int, error: str, message: str) -> Response:
        return JSONResponse({"error": error, "message": message}, status_code=status)

    def _xrpc_auth(self, request: Request, scope: str = "com.atproto.access") -> Response | None:
        token = _bearer(request)
        if token is None:
            return self._xrpc_error(401, "AuthenticationRequired", "Authentication Required")
        try:
            claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            return self._xrpc_error(400, "ExpiredToken", "Token has expired")
        except jwt.PyJWTError:
            return self._xrpc_error(400, "InvalidToken", "Token could not be verified")
        if claims.get("scope") != scope:
            return self._xrpc_error(400, "InvalidToken", "Bad token scope")
        return None

    async def xrpc(self, request: Request) -> Response:
        nsid = request.path_params["nsid"]
        if nsid == "com.atproto.server.createSession":
            body = await request.json()
            if (
                body.get("identifier") not in ("dev.bsky.social", self.DID)
                or body.get("password") != "app-pass-word"
            ):
                return self._xrpc_error(
                    401, "AuthenticationRequired", "Invalid identifier or password"
                )
            return JSONResponse(
                {
                    "did": self.DID,
                    "handle": "dev.bsky.social",
                    "active": True,
                    **self.session_jwts(),
                }
            )
        if nsid == "com.atproto.server.refreshSession":
            if denied := self._xrpc_auth(request, "com.atproto.refresh"):
                return denied
            return JSONResponse(
                {"did": self.DID, "handle": "dev.bsky.social", **self.session_jwts()}
            )
        if denied := self._xrpc_auth(request):
            return denied
        if nsid == "com.atproto.repo.uploadBlob":
            data = await request.body()
            link = "bafkrei" + hashlib.sha256(data).hexdigest()[:40]
            self.blobs[link] = data
            return JSONResponse(
                {
                    "blob": {
                        "$type": "blob",
                        "ref": {"$link": link},
                        "mimeType": request.headers.get("content-type"),
                        "size": len(data),
                    }
                }
            )
        if nsid == "com.atproto.repo.createRecord":
            body = await request.json()
            record = body.get("record", {})
            if body.get("repo") != self.DID or body.get("collection") != "app.bsky.feed.post":
                return self._xrpc_error(400, "InvalidRequest", "Invalid repo or collection")
            if record.get("$type") != "app.bsky.feed.post" or "createdAt" not in record:
                return self._xrpc_error(400, "InvalidRequest", "Invalid app.bsky.feed.post record")
            for ref in (record.get("reply") or {}).values():
                stored = self.records.get(ref.get("uri"))
                if stored is None or stored["cid"] != ref.get("cid"):
                    return self._xrpc_error(400, "InvalidRequest", "reply ref does not resolve")
            rkey = "3l" + self._new_id() + "abc"
            uri = f"at://{self.DID}/app.bsky.feed.post/{rkey}"
            cid = "bafyrei" + hashlib.sha256(json.dumps(record).encode()).hexdigest()[:40]
            self.records[uri] = {"cid": cid, "value": record, "order": len(self.records)}
            return JSONResponse(
                {
                    "uri": uri,
                    "cid": cid,
                    "validationStatus": "valid",
                    "commit": {"cid": "bafycommit", "rev": "3l" + rkey},
                }
            )
        if nsid == "com.atproto.repo.getRecord":
            q = request.query_params
            uri = f"at://{q.get('repo')}/{q.get('collection')}/{q.get('rkey')}"
            stored = self.records.get(uri)
            if stored is None:
                return self._xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
            return JSONResponse({"uri": uri, "cid": stored["cid"], "value": stored["value"]})
        if nsid == "com.atproto.repo.listRecords":
            limit = int(request.query_params.get("limit", "50"))
            newest = sorted(self.records.items(), key=lambda kv: -kv[1]["order"])[:limit]
            return JSONResponse(
                {"records": [{"uri": u, "cid": r["cid"], "value": r["value"]} for u, r in newest]}
            )
        if nsid == "com.atproto.repo.deleteRecord":
            body = await request.json()
            self.records.pop(f"at://{body['repo']}/{body['collection']}/{body['rkey']}", None)
            return JSONResponse({"commit": {"cid": "bafycommit", "rev": "3lx"}})
        if nsid == "app.bsky.feed.getPosts":
            uri = request.query_params.get("uris", "")
            stored = self.records.get(uri)
            posts = (
                []
                if stored is None
                else [
                    {
                        "uri": uri,
                        "cid": stored["cid"],
                        "record": stored["value"],
                        "likeCount": 8,
                        "repostCount": 2,
                        "replyCount": 1,
                        "quoteCount": 1,
                    }
                ]
            )
            return JSONResponse({"posts": posts})
        return self._xrpc_error(501, "MethodNotImplemented", f"Method Not Implemented: {nsid}")


@asynccontextmanager
async def serve_fake_platforms() -> AsyncIterator[FakePlatforms]:
    """Run the fakes on a free loopback port in this event loop."""
    fake = FakePlatforms()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.port = sock.getsockname()[1]
    # No log_config, log_level or access_log: each makes uvicorn reconfigure the process's
    # loggers for every later test.
    server = uvicorn.Server(uvicorn.Config(fake, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield fake
    finally:
        fake.released.set()
        server.should_exit = True
        await task
        sock.close()
