"""GraphiQL: served with its pinned assets from the API itself (works offline), the CDN as
an option, and headers (tokens) never persisted in the browser's localStorage."""

from __future__ import annotations

import gzip
import hashlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from app.http import graphiql
from tests.conftest import Servers, make_settings, running_app

# The unmodified npm files (see app/http/static/graphiql/README.md).
PINNED_SHA256 = {
    "react-18.2.0.production.min.js": (
        "4b4969fa4ef3594324da2c6d78ce8766fbbc2fd121fff395aedf997db0a99a06"
    ),
    "react-dom-18.2.0.production.min.js": (
        "21758ed084cd0e37e735722ee4f3957ea960628a29dfa6c3ce1a1d47a2d6e4f7"
    ),
    "graphiql-3.8.3.min.js": "22faab94067b695e5f7959619fbe686ebcc8955002a0c97d986bcbba4ad4bc2c",
    "graphiql-3.8.3.min.css": "b1868247f8e0502cd869e581f5f3cb55b334862e7f51b1d6cbace11059b9adc2",
    "plugin-explorer-1.0.2.umd.js": (
        "083e37e501d3e3920a60e627b82191af056009124dce82a332e8ac74db6ca38b"
    ),
    "plugin-explorer-1.0.2.css": "762850cb69873400d0ab1737c6158aee91f5c38195bc4a30ee02a3c5d5af4e01",
}
PAGE_URL = "http://testserver/graphql"


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.integrity: dict[str, str] = {}
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("src") or (values.get("href") if tag == "link" else None)
        if url:
            self.urls.append(url)
            if values.get("integrity"):
                self.integrity[url] = values["integrity"] or ""
        self._in_script = tag == "script" and not values.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_scripts.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


async def _page(client: httpx.AsyncClient) -> _Assets:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(response.text)
    return parser


async def test_the_page_loads_only_same_origin_assets_that_answer(
    client: httpx.AsyncClient,
) -> None:
    page = await _page(client)
    assert len(page.urls) == 6
    content_types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    for url in page.urls:
        absolute = urljoin(PAGE_URL, url)
        assert urlsplit(absolute).netloc == "testserver", f"{url} is not same-origin"
        response = await client.get(absolute)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == content_types[Path(url).suffix]
        assert response.headers["x-content-type-options"] == "nosniff"
        name = Path(urlsplit(absolute).path).name
        assert hashlib.sha256(response.content).hexdigest() == PINNED_SHA256[name]


async def test_assets_are_compressed_and_cacheable(client: httpx.AsyncClient) -> None:
    url = "/graphql/assets/graphiql-3.8.3.min.js"
    plain = await client.get(url, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    raw = await client.get(url, headers={"accept-encoding": "gzip, br"}, extensions={})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.content == plain.content  # httpx decoded it
    assert "immutable" in raw.headers["cache-control"]
    again = await client.get(url, headers={"if-none-match": raw.headers["etag"]})
    assert again.status_code == 304
    missing = await client.get("/graphql/assets/../../settings.py")
    assert missing.status_code == 404
    unknown = await client.get("/graphql/assets/evil.js")
    assert unknown.status_code == 404


def test_the_shipped_files_are_the_pinned_npm_files() -> None:
    for name, digest in PINNED_SHA256.items():
        assert hashlib.sha256((graphiql.ASSET_DIR / name).read_bytes()).hexdigest() == digest
    assert set(graphiql.ASSETS) == set(PINNED_SHA256)
    assert gzip.decompress(
        graphiql._load(graphiql.ASSETS["react-18.2.0.production.min.js"]).gzipped
    )


def test_the_assets_and_their_licences_are_package_data() -> None:
    # `pip install` copies only what pyproject.toml lists as package data.
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["app.http"]
    package_dir = root / "app" / "http"
    shipped = {p for pattern in patterns for p in package_dir.glob(pattern) if p.is_file()}
    wanted = {p for p in (package_dir / "static").rglob("*") if p.is_file()}
    wanted.add(package_dir / "graphiql.html")
    assert wanted <= shipped, sorted(str(p) for p in wanted - shipped)
    assert (package_dir / "static" / "graphiql" / "licenses" / "graphiql.LICENSE").is_file()


async def test_headers_are_not_persisted_in_local_storage(client: httpx.AsyncClient) -> None:
    page = await _page(client)
    script = "".join(page.inline_scripts)
    assert "shouldPersistHeaders: false" in script
    assert "shouldPersistHeaders: true" not in script
    # Nor do headers travel through the URL, where a shared link would leak them.
    assert '"headers"' not in script and 'params.get("headers")' not in script


async def test_cdn_is_an_option_with_integrity_hashes(servers: Servers) -> None:
    async with (
        running_app(make_settings(servers, graphiql_assets="cdn")) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        page = await _page(c)
        local = await c.get("/graphql/assets/graphiql-3.8.3.min.js")
    assert local.status_code == 404  # nothing served locally in CDN mode
    assert page.urls and all(u.startswith("https://unpkg.com/") for u in page.urls)
    # Strawberry's page pins the same files with these hashes: ours are byte-identical.
    assert page.integrity["https://unpkg.com/react@18.2.0/umd/react.production.min.js"] == (
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8"
    )
    assert set(page.integrity) == set(page.urls)


@pytest.mark.parametrize("value", ["local", "cdn"])
def test_the_setting_is_validated(value: str) -> None:
    from app.settings import Settings

    assert Settings(_env_file=None, graphiql_assets=value).graphiql_assets == value  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="graphiql_assets"):
        Settings(_env_file=None, graphiql_assets="elsewhere")  # type: ignore[call-arg]
