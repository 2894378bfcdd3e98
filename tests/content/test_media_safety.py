"""Media that could attack its viewers or the server: stored files served only as the type
sniffed at upload with nosniff and a sandbox CSP (no stored XSS on the API's origin), SVG
refused, videos parsed as containers, images too large refused from their header before
any decoding, decodes bounded and off the event loop; the API's own address in media URLs."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import threading
import uuid
from argparse import Namespace
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFile
from starlette.applications import Starlette

from app.infra.storage import LocalStorage, served_as, serving_headers
from app.services.content import media_files
from app.settings import Settings
from tests.conftest import Servers, make_settings, running_app
from tests.content.media_samples import box, mp4, png_header, webm
from tests.content.test_media import _owner, local_path, png, upload
from tests.helpers import gql

HTML = b"<html><body><script>alert(document.domain)</script></body></html>"


def _code(body: dict[str, Any]) -> str:
    errors = body["data"]["uploadMedia"]["errors"]
    assert body["data"]["uploadMedia"]["media"] is None and len(errors) == 1, body
    code: str = errors[0]["code"]
    return code


def _safe(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp
    assert "script-src" not in csp


async def test_a_png_with_html_appended_named_html_is_served_as_a_png(
    client: httpx.AsyncClient,
) -> None:
    owner, ws = await _owner(client)
    polyglot = png(40, 40) + HTML
    body = await upload(client, owner, ws, polyglot, filename="x.html")
    media = body["data"]["uploadMedia"]["media"]
    assert media["mimeType"] == "image/png" and media["filename"] == "x.html"
    # The blob is named after what it is, so nothing that guesses by name sees HTML.
    assert urlsplit_path(media["url"]).endswith("/x.png")
    assert urlsplit_path(media["thumbnailUrl"]).endswith("/x.thumbnail.webp")
    served = await client.get(local_path(media["url"]))
    assert served.status_code == 200 and served.content == polyglot
    assert served.headers["content-type"] == "image/png"  # was text/html: the script ran
    _safe(served)


def urlsplit_path(url: str) -> str:
    return local_path(url).split("?", 1)[0]


def _multi(kind: str) -> bytes:
    frames = [Image.new("RGB", (64, 48), color) for color in ((200, 0, 0), (0, 0, 200))]
    buffer = io.BytesIO()
    frames[0].save(buffer, kind, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


async def test_an_upload_named_like_its_thumbnail_keeps_both(client: httpx.AsyncClient) -> None:
    owner, ws = await _owner(client)
    data = png(400, 400)
    for name in ("thumbnail.webp", "x.thumbnail.webp", "x.thumbnail"):
        media = (await upload(client, owner, ws, data, filename=name))["data"]["uploadMedia"][
            "media"
        ]
        assert media["url"].split("?")[0] != media["thumbnailUrl"].split("?")[0]
        assert (await client.get(local_path(media["url"]))).content == data
        thumb = await client.get(local_path(media["thumbnailUrl"]))
        assert thumb.headers["content-type"] == "image/webp" and thumb.content != data


async def test_multi_picture_jpeg_and_animated_png_are_ordinary_images(
    client: httpx.AsyncClient,
) -> None:
    """MPO (phones' JPEG) and APNG pass the format check as JPEG and PNG."""
    owner, ws = await _owner(client)
    for kind, mime in [("MPO", "image/jpeg"), ("PNG", "image/png")]:
        media = (await upload(client, owner, ws, _multi(kind)))["data"]["uploadMedia"]["media"]
        assert media["mimeType"] == mime and (media["width"], media["height"]) == (64, 48)


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- logo -->\n<SVG onload="alert(1)"></SVG>',
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x"><svg/>',
    ],
)
async def test_svg_is_refused_with_a_reason(client: httpx.AsyncClient, data: bytes) -> None:
    owner, ws = await _owner(client)
    body = await upload(client, owner, ws, data, filename="logo.svg")
    assert _code(body) == "UNSUPPORTED_TYPE"
    assert "SVG" in body["data"]["uploadMedia"]["errors"][0]["message"]


async def test_text_named_js_or_html_is_refused(client: httpx.AsyncClient) -> None:
    owner, ws = await _owner(client)
    for name, data in [("app.js", b"alert(document.cookie);\n" * 20), ("x.html", HTML)]:
        assert _code(await upload(client, owner, ws, data, filename=name)) == "UNSUPPORTED_TYPE"


async def test_only_blobs_of_an_asset_are_served_and_only_as_their_row_says(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """A file in MEDIA_DIR that no row describes is not served, even with a valid signature
    (the old route served any file, typed from its name)."""
    storage = app.state.smartcontent.storage
    assert isinstance(storage, LocalStorage)
    key = f"{uuid.uuid4()}/{uuid.uuid4()}/evil.html"
    target = storage.path_of(key)
    target.parent.mkdir(parents=True)
    target.write_bytes(HTML)
    try:
        assert (await client.get(local_path(storage.url(key)))).status_code == 404
    finally:
        target.unlink()


@pytest.mark.no_db
def test_serving_policy_is_inline_only_for_raster_images_and_videos() -> None:
    for inline in ("image/png", "image/jpeg", "image/gif", "image/webp", "video/mp4"):
        assert served_as(inline) == (inline, "inline")
    for active in ("text/html", "image/svg+xml", "application/javascript", "text/xml", "x/y"):
        assert served_as(active) == ("application/octet-stream", "attachment")
    headers = serving_headers("text/html")
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["X-Content-Type-Options"] == "nosniff"


def _truncated_mdat() -> bytes:
    good = mp4()
    return good[:-12] + (1000).to_bytes(4, "big") + b"mdat" + b"\0" * 10


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bare ftyp box", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64),
        ("ftyp with brands only", box(b"ftyp", b"mp42\0\0\0\0mp42isom")),
        ("no media data", mp4()[:-12]),
        ("mdat running past the end", _truncated_mdat()),
        ("HTML after the boxes", mp4() + HTML),
        ("audio track only", mp4(handler=b"soun")),
        ("lone EBML header", webm()[:40]),
        ("WebM audio only", webm(track_type=2)),
        ("WebM without clusters", webm(clusters=0)),
    ],
)
async def test_a_file_that_only_starts_like_a_video_is_refused(
    client: httpx.AsyncClient, name: str, data: bytes
) -> None:
    owner, ws = await _owner(client)
    assert _code(await upload(client, owner, ws, data, filename="clip.mp4")) == "INVALID_VIDEO", (
        name
    )


@pytest.mark.parametrize(("data", "mime"), [(mp4(), "video/mp4"), (webm(), "video/webm")])
async def test_a_real_video_is_accepted_and_served_inline(
    client: httpx.AsyncClient, data: bytes, mime: str
) -> None:
    owner, ws = await _owner(client)
    media = (await upload(client, owner, ws, data, filename="clip.html"))["data"]["uploadMedia"][
        "media"
    ]
    assert media["kind"] == "VIDEO" and media["mimeType"] == mime
    assert media["thumbnailUrl"] is None
    served = await client.get(local_path(media["url"]))
    assert served.content == data and served.headers["content-type"] == mime
    assert served.headers["content-disposition"] == "inline"
    _safe(served)


class DecodeSpy:
    """Records thumbnail making and pixel decoding (ImageFile.load), calling through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.thumbnails = 0
        self.loads = 0
        make, load = media_files.make_thumbnail, ImageFile.ImageFile.load

        def thumbnail(path: Path, thumb_path: Path) -> None:
            self.thumbnails += 1
            make(path, thumb_path)

        def counted_load(image: ImageFile.ImageFile) -> Any:
            self.loads += 1
            return load(image)

        monkeypatch.setattr(media_files, "make_thumbnail", thumbnail)
        monkeypatch.setattr(ImageFile.ImageFile, "load", counted_load)


@pytest.mark.parametrize(
    "size",
    [
        (12_000, 10_000),  # 120 MP: between Pillow's warning and its error, decoded before
        (20_000, 20_000),  # 400 MP: beyond Pillow's own guard
        (30_000, 100),  # a strip: few pixels, but a side over MAX_IMAGE_SIDE
    ],
)
async def test_an_image_too_large_is_refused_from_its_header_before_any_decoding(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    owner, ws = await _owner(client)
    spy = DecodeSpy(monkeypatch)
    data = png_header(*size)
    assert len(data) < 100  # nothing but a header: only decoding would make it large
    body = await upload(client, owner, ws, data, filename="huge.png")
    assert _code(body) == "IMAGE_TOO_LARGE"
    assert "megapixels" in body["data"]["uploadMedia"]["errors"][0]["message"]
    assert (spy.thumbnails, spy.loads) == (0, 0), "refused before anything was decoded"
    # The spy does see a decode when there is one.
    assert (await upload(client, owner, ws, png(50, 50)))["data"]["uploadMedia"]["errors"] == []
    assert spy.thumbnails == 1 and spy.loads >= 1


async def test_image_limits_follow_settings_and_decodes_are_bounded(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MAX_IMAGE_PIXELS / MAX_IMAGE_SIDE are the settings' own; with
    MEDIA_DECODE_CONCURRENCY=1, three uploads at once decode one at a time, in a thread of
    the decode pool (not the event loop's)."""
    settings = make_settings(
        servers,
        media_dir=tmp_path / "media",
        max_image_pixels=30_000,
        max_image_side=250,
        media_decode_concurrency=1,
    )
    release = threading.Event()
    lock = threading.Lock()
    active = peak = entered = 0
    threads: set[str] = set()
    make = media_files.make_thumbnail

    def blocking_thumbnail(path: Path, thumb_path: Path) -> None:
        nonlocal active, peak, entered
        with lock:
            active += 1
            entered += 1
            peak = max(peak, active)
            threads.add(threading.current_thread().name)
        try:
            assert release.wait(30), "the test never released the decode"
            make(path, thumb_path)
        finally:
            with lock:
                active -= 1

    submitted = 0
    real_pool = media_files._pool

    def counting_pool(s: Settings) -> Any:
        nonlocal submitted
        submitted += 1
        return real_pool(s)

    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        owner, ws = await _owner(client)
        assert _code(await upload(client, owner, ws, png(200, 200))) == "IMAGE_TOO_LARGE"
        assert _code(await upload(client, owner, ws, png(260, 10))) == "IMAGE_TOO_LARGE"
        monkeypatch.setattr(media_files, "make_thumbnail", blocking_thumbnail)
        monkeypatch.setattr(media_files, "_pool", counting_pool)
        uploads = [
            asyncio.create_task(upload(client, owner, ws, png(100 + n, 100))) for n in range(3)
        ]
        async with asyncio.timeout(30):
            while not (submitted == 3 and entered == 1):
                await asyncio.sleep(0.01)
        # All three are queued in the pool; its one thread holds the first.
        assert (entered, active) == (1, 1)
        release.set()
        results = await asyncio.gather(*uploads)
    assert all(r["data"]["uploadMedia"]["errors"] == [] for r in results)
    assert (entered, peak) == (3, 1)
    assert threads and all(name.startswith("media-decode") for name in threads)


async def test_media_urls_name_the_api_address_review_and_invitation_links_the_web_app(
    servers: Servers, tmp_path: Path
) -> None:
    """PORT=8231 and no API_PUBLIC_URL: media URLs point at :8231 (they pointed at
    PUBLIC_URL, :8000). Links opened in the web app keep PUBLIC_URL."""
    settings = make_settings(
        servers, port=8231, media_dir=tmp_path / "media", public_url="https://app.example.com/"
    )
    assert settings.api_public_url is None
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        owner, ws = await _owner(client)
        media = (await upload(client, owner, ws, png(20, 20)))["data"]["uploadMedia"]["media"]
        assert media["url"].startswith("http://127.0.0.1:8231/media/")
        assert media["thumbnailUrl"].startswith("http://127.0.0.1:8231/media/")
        made = await gql(
            client,
            'mutation($ws: ID!) { createContent(input: {workspaceId: $ws, title: "T", body: "B"}) { content { id } } }',
            {"ws": ws},
            headers=owner.headers,
        )
        link = await gql(
            client,
            "mutation($c: ID!) { createReviewLink(contentId: $c) { url errors { code } } }",
            {"c": made["data"]["createContent"]["content"]["id"]},
            headers=owner.headers,
        )
        assert link["data"]["createReviewLink"]["url"].startswith("https://app.example.com/review/")
        await gql(
            client,
            'mutation($ws: ID!) { inviteMember(workspaceId: $ws, email: "new@example.com", role: MEMBER) { errors { code } } }',
            {"ws": ws},
            headers=owner.headers,
        )
        mail = app.state.smartcontent.mailer.outbox[-1]
        assert "https://app.example.com/invitations/accept?token=" in mail.body


@pytest.mark.no_db
def test_api_url_defaults_to_the_serving_address() -> None:
    def url(**values: Any) -> str:
        return Settings(_env_file=None, **values).api_url  # type: ignore[call-arg]

    assert url() == "http://127.0.0.1:8000"
    assert url(port=8231) == "http://127.0.0.1:8231"
    assert url(host="0.0.0.0", port=9000) == "http://localhost:9000"
    assert url(host="::1") == "http://[::1]:8000"
    assert url(api_public_url="https://api.example.com/", port=1) == "https://api.example.com"
    with pytest.raises(ValueError, match="must look like"):
        url(api_public_url="api.example.com")


@pytest.mark.no_db
def test_serve_flags_reach_the_app_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    """`smartcontent serve --port 8231`: the app (built by uvicorn's factory from the
    environment) sees that port, so its media URLs do too."""
    import uvicorn

    from app import cli
    from app import logging as app_logging

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setattr(app_logging, "configure_logging", lambda *a: None)  # keep the test's
    for name in ("HOST", "PORT"):  # `_serve` sets both: have them restored afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        args = Namespace(host=None, port=8231, workers=1)
        cli._serve(Settings(_env_file=None, log_json=False), args)  # type: ignore[call-arg]
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert calls[0]["port"] == 8231
    assert Settings(_env_file=None).api_url == "http://127.0.0.1:8231"  # type: ignore[call-arg]
    monkeypatch.undo()
    assert "PORT" not in os.environ
