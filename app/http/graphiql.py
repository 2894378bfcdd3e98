"""GraphiQL for browsers: the page, and its pinned scripts and styles served by the API
itself (see static/graphiql/README.md), or from unpkg with integrity hashes."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import html
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

HERE = Path(__file__).resolve().parent
ASSET_DIR = HERE / "static" / "graphiql"
# Relative to the page's URL (`.../graphql`), so the API may sit under a path prefix.
ASSET_PATH = "graphql/assets/"
CDN = "https://unpkg.com/"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"


@dataclass(frozen=True)
class Asset:
    name: str  # file under static/graphiql, served at /graphql/assets/<name>
    package: str  # npm package@version it was taken from
    path: str  # its path inside that package
    content_type: str

    @property
    def cdn_url(self) -> str:
        return f"{CDN}{self.package}/{self.path}"


STYLESHEETS = (
    Asset("graphiql-3.8.3.min.css", "graphiql@3.8.3", "graphiql.min.css", CSS),
    Asset("plugin-explorer-1.0.2.css", "@graphiql/plugin-explorer@1.0.2", "dist/style.css", CSS),
)
# In load order: React first, GraphiQL needs it, the explorer plugin needs GraphiQL.
SCRIPTS = (
    Asset("react-18.2.0.production.min.js", "react@18.2.0", "umd/react.production.min.js", JS),
    Asset(
        "react-dom-18.2.0.production.min.js",
        "react-dom@18.2.0",
        "umd/react-dom.production.min.js",
        JS,
    ),
    Asset("graphiql-3.8.3.min.js", "graphiql@3.8.3", "graphiql.min.js", JS),
    Asset(
        "plugin-explorer-1.0.2.umd.js", "@graphiql/plugin-explorer@1.0.2", "dist/index.umd.js", JS
    ),
)
ASSETS = {asset.name: asset for asset in (*STYLESHEETS, *SCRIPTS)}


@cache
def integrity(name: str) -> str:
    """Subresource-integrity hash of our copy, which is byte for byte the CDN's file."""
    digest = hashlib.sha384((ASSET_DIR / name).read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode()


def _attributes(asset: Asset, source: str) -> str:
    url = html.escape(asset.cdn_url if source == "cdn" else ASSET_PATH + asset.name)
    if source != "cdn":
        return f'"{url}"'
    return f'"{url}" integrity="{integrity(asset.name)}" crossorigin="anonymous"'


def page(source: str) -> str:
    """The GraphiQL page, loading its assets from `source` ("local" or "cdn")."""
    template = Template((HERE / "graphiql.html").read_text(encoding="utf-8"))
    stylesheets = "\n    ".join(
        f'<link rel="stylesheet" href={_attributes(a, source)} />' for a in STYLESHEETS
    )
    scripts = "\n    ".join(f"<script src={_attributes(a, source)}></script>" for a in SCRIPTS)
    return template.substitute(stylesheets=stylesheets, scripts=scripts)


@dataclass(frozen=True)
class _Loaded:
    body: bytes
    gzipped: bytes
    etag: str


def _load(asset: Asset) -> _Loaded:
    body = (ASSET_DIR / asset.name).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return _Loaded(body, gzip.compress(body, compresslevel=6, mtime=0), etag)


def _accepts_gzip(accept_encoding: str) -> bool:
    for entry in accept_encoding.lower().split(","):
        coding, _, params = entry.partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.replace(" ", "").removeprefix("q=") or "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


class AssetFiles:
    """Serves the assets from memory: read and compressed once per process, in a worker
    thread (3.5 MB of GraphiQL would hold the event loop for a while)."""

    def __init__(self) -> None:
        self._loaded: dict[str, _Loaded] = {}
        self._lock = asyncio.Lock()

    async def _get(self, asset: Asset) -> _Loaded:
        loaded = self._loaded.get(asset.name)
        if loaded is None:
            async with self._lock:
                loaded = self._loaded.get(asset.name)
                if loaded is None:
                    loaded = await anyio.to_thread.run_sync(_load, asset)
                    self._loaded[asset.name] = loaded
        return loaded

    async def serve(self, request: Request) -> Response:
        asset = ASSETS.get(request.path_params["name"])
        if asset is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        loaded = await self._get(asset)
        headers = {
            # The names carry the versions: a new version is a new URL.
            "Cache-Control": "public, max-age=31536000, immutable",
            "ETag": loaded.etag,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == loaded.etag:
            return Response(status_code=304, headers=headers)
        body = loaded.body
        if _accepts_gzip(request.headers.get("accept-encoding", "")):
            body = loaded.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.content_type, headers=headers)
