"""Media library: multipart uploads checked by content sniffing and size, images measured
and thumbnailed, signed download URLs, attachment to content and variations, S3 storage."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.embedded import free_port
from app.infra.storage import S3Storage
from app.models import MediaAsset
from app.settings import Settings
from tests.conftest import Servers, make_settings, running_app
from tests.content.media_samples import mp4
from tests.helpers import Account, create_workspace, gql, register

UPLOAD = """
mutation($ws: ID!, $file: Upload!, $alt: String!) {
  uploadMedia(workspaceId: $ws, file: $file, altText: $alt) {
    media { id kind mimeType filename sizeBytes width height altText sha256 url thumbnailUrl }
    errors { field code message }
  }
}
"""


def png(width: int = 640, height: int = 480, noise: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (30, 120, 200))
    if noise:
        rng = random.Random(7)
        image.putdata(
            [
                (rng.randrange(256), rng.randrange(256), rng.randrange(256))
                for _ in range(width * height)
            ]
        )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def upload(
    client: httpx.AsyncClient,
    account: Account,
    ws: str,
    data: bytes,
    filename: str = "photo.png",
    alt: str = "A photo",
) -> dict[str, Any]:
    """A GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec)."""
    operations = {"query": UPLOAD, "variables": {"ws": ws, "file": None, "alt": alt}}
    response = await client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, data, "application/octet-stream")},
        # Multipart is a CORS simple request: the API wants a header that needs a preflight.
        headers={**account.headers, "Apollo-Require-Preflight": "true"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def local_path(url: str) -> str:
    """A media URL's path and query, to fetch it through the in-process client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _owner(client: httpx.AsyncClient) -> tuple[Account, str]:
    owner = await register(client)
    return owner, await create_workspace(client, owner)


async def test_image_upload_is_measured_thumbnailed_and_downloadable(
    client: httpx.AsyncClient,
) -> None:
    owner, ws = await _owner(client)
    data = png(640, 480)
    body = await upload(client, owner, ws, data, filename="../../etc/My Photo!.png")
    media = body["data"]["uploadMedia"]["media"]
    assert media["kind"] == "IMAGE" and media["mimeType"] == "image/png"
    assert (media["width"], media["height"]) == (640, 480)
    assert media["sizeBytes"] == len(data) and media["filename"] == "My-Photo-.png"
    path = local_path(media["url"])
    download = await client.get(path)
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in download.headers["content-security-policy"]
    assert download.headers["content-disposition"] == "inline"
    thumb = await client.get(local_path(media["thumbnailUrl"]))
    # Served as what it is (was application/octet-stream), with the same safe headers.
    assert thumb.headers["content-type"] == "image/webp"
    assert thumb.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in thumb.headers["content-security-policy"]
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.format == "WEBP" and image.size == (320, 240)
    tampered = await client.get(path.replace("signature=", "signature=0"))
    assert tampered.status_code == 403


async def test_type_is_sniffed_not_trusted(client: httpx.AsyncClient) -> None:
    owner, ws = await _owner(client)
    fake = await upload(client, owner, ws, b"#!/bin/sh\necho pwned\n" * 10, filename="innocent.png")
    assert fake["data"]["uploadMedia"]["errors"][0]["code"] == "UNSUPPORTED_TYPE"
    broken = await upload(client, owner, ws, png()[:200], filename="broken.png")
    assert broken["data"]["uploadMedia"]["errors"][0]["code"] == "INVALID_IMAGE"
    video = await upload(client, owner, ws, mp4(), filename="clip.bin")
    assert video["data"]["uploadMedia"]["media"]["kind"] == "VIDEO"
    assert video["data"]["uploadMedia"]["media"]["mimeType"] == "video/mp4"


async def test_size_limit_leaves_nothing_behind(servers: Servers, tmp_path: Path) -> None:
    settings = make_settings(servers, max_image_bytes=50_000, media_dir=tmp_path / "media")
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        owner, ws = await _owner(client)
        big = await upload(client, owner, ws, png(600, 600, noise=True))
        assert big["data"]["uploadMedia"]["errors"][0]["code"] == "TOO_LARGE"
        async with app.state.smartcontent.session_factory() as session:
            assert await session.scalar(select(func.count()).select_from(MediaAsset)) == 0
        assert not any(p.is_file() for p in (tmp_path / "media").rglob("*")), "no blob left"
        small = await upload(client, owner, ws, png(50, 50))
        assert small["data"]["uploadMedia"]["errors"] == []


async def test_roles_alt_text_delete(app: Starlette, client: httpx.AsyncClient) -> None:
    owner, ws = await _owner(client)
    stranger = await register(client)
    denied = await upload(client, stranger, ws, png())
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    media = (await upload(client, owner, ws, png()))["data"]["uploadMedia"]["media"]
    changed = await gql(
        client,
        'mutation($id: ID!) { updateMedia(id: $id, altText: "Blue square") { media { altText } } }',
        {"id": media["id"]},
        headers=owner.headers,
    )
    assert changed["data"]["updateMedia"]["media"]["altText"] == "Blue square"
    listed = await gql(
        client,
        "query($ws: ID!) { mediaAssets(workspaceId: $ws) { edges { node { id } } } }",
        {"ws": ws},
        headers=owner.headers,
    )
    assert [e["node"]["id"] for e in listed["data"]["mediaAssets"]["edges"]] == [media["id"]]
    async with app.state.smartcontent.session_factory() as session:
        key = await session.scalar(select(MediaAsset.storage_key))
    stored = app.state.smartcontent.storage.path_of(key)
    assert stored.is_file()
    deleted = await gql(
        client,
        "mutation($id: ID!) { deleteMedia(id: $id) { success } }",
        {"id": media["id"]},
        headers=owner.headers,
    )
    assert deleted["data"]["deleteMedia"]["success"] is True
    assert not stored.exists()


async def test_media_on_content_and_platform_media_rules(client: httpx.AsyncClient) -> None:
    owner, ws = await _owner(client)
    small = (await upload(client, owner, ws, png(100, 100)))["data"]["uploadMedia"]["media"]
    big = (await upload(client, owner, ws, png(1000, 1000, noise=True)))["data"]["uploadMedia"][
        "media"
    ]
    assert big["sizeBytes"] > 1024 * 1024
    made = await gql(
        client,
        'mutation($ws: ID!) { createContent(input: {workspaceId: $ws, title: "Pics", body: "Look"}) { content { id } } }',
        {"ws": ws},
        headers=owner.headers,
    )
    content_id = made["data"]["createContent"]["content"]["id"]
    attach = await gql(
        client,
        "mutation($c: ID!, $m: [ID!]!) { setContentMedia(contentId: $c, mediaIds: $m) { success errors { code } } }",
        {"c": content_id, "m": [big["id"], small["id"]]},
        headers=owner.headers,
    )
    assert attach["data"]["setContentMedia"]["success"] is True
    order = await gql(
        client,
        "query($id: ID!) { content(id: $id) { media { id } } }",
        {"id": content_id},
        headers=owner.headers,
    )
    assert [m["id"] for m in order["data"]["content"]["media"]] == [big["id"], small["id"]]
    variation = """mutation($c: ID!, $p: Platform!, $m: [ID!]) {
      createVariation(contentId: $c, platform: $p, input: {body: "Look at this", mediaIds: $m}) {
        variation { withinLimits violations { code } media { id } } errors { code } } }"""
    insta_bare = await gql(
        client, variation, {"c": content_id, "p": "INSTAGRAM", "m": []}, headers=owner.headers
    )
    assert [
        v["code"] for v in insta_bare["data"]["createVariation"]["variation"]["violations"]
    ] == ["MEDIA_REQUIRED"]
    bluesky = await gql(
        client,
        variation,
        {"c": content_id, "p": "BLUESKY", "m": [big["id"]]},
        headers=owner.headers,
    )
    assert [v["code"] for v in bluesky["data"]["createVariation"]["variation"]["violations"]] == [
        "MEDIA_TOO_LARGE"
    ]
    x = await gql(
        client, variation, {"c": content_id, "p": "X", "m": [small["id"]]}, headers=owner.headers
    )
    assert x["data"]["createVariation"]["variation"]["withinLimits"] is True
    other_owner, other_ws = await _owner(client)
    foreign = (await upload(client, other_owner, other_ws, png()))["data"]["uploadMedia"]["media"]
    cross = await gql(
        client,
        "mutation($c: ID!, $m: [ID!]!) { setContentMedia(contentId: $c, mediaIds: $m) { errors { code } } }",
        {"c": content_id, "m": [foreign["id"]]},
        headers=owner.headers,
    )
    assert cross["data"]["setContentMedia"]["errors"][0]["code"] == "NOT_FOUND"


@pytest.fixture
def s3_server() -> Iterator[str]:
    """moto's standalone server: a local service speaking the S3 HTTP API."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


ITEM = """fragment Item on Content {
  id commentCount writer: author { name } campaign { name }
  variations { platform characterCount withinLimits violations { code part } parts media { id } }
}"""


async def test_a_page_loads_what_it_selects_up_front_with_the_same_answers_as_one_item(
    client: httpx.AsyncClient,
) -> None:
    """Lists load relations and rule checks for the whole page at once (through fragments and
    aliases too); each item must read exactly as it does on its own."""
    owner, ws = await _owner(client)
    small = (await upload(client, owner, ws, png(100, 100)))["data"]["uploadMedia"]["media"]
    big = (await upload(client, owner, ws, png(1000, 1000, noise=True)))["data"]["uploadMedia"][
        "media"
    ]
    create = "mutation($ws: ID!, $t: String!, $b: String!) { createContent(input: {workspaceId: $ws, title: $t, body: $b}) { content { id } } }"
    variation = """mutation($c: ID!, $p: Platform!, $m: [ID!], $b: String) {
      createVariation(contentId: $c, platform: $p, input: {body: $b, mediaIds: $m}) {
        errors { code } } }"""
    long_text = " ".join(["launch"] * 120) + " https://example.com/a-very-long-link"
    for n, (platform, media, body) in enumerate(
        [
            ("INSTAGRAM", [], "No picture #a"),
            ("BLUESKY", [big["id"]], "Too big a picture"),
            ("X", [small["id"]], long_text),
            ("LINKEDIN", [], None),
        ]
    ):
        made = await gql(
            client, create, {"ws": ws, "t": f"Item {n}", "b": long_text}, headers=owner.headers
        )
        content_id = made["data"]["createContent"]["content"]["id"]
        added = await gql(
            client,
            variation,
            {"c": content_id, "p": platform, "m": media, "b": body},
            headers=owner.headers,
        )
        assert added["data"]["createVariation"]["errors"] == []
    page = await gql(
        client,
        "query($ws: ID!) { contents(workspaceId: $ws) { edges { node { ...Item } } } }" + ITEM,
        {"ws": ws},
        headers=owner.headers,
    )
    nodes = [e["node"] for e in page["data"]["contents"]["edges"]]
    assert len(nodes) == 4
    for node in nodes:
        one = await gql(
            client,
            "query($id: ID!) { content(id: $id) { ...Item } }" + ITEM,
            {"id": node["id"]},
            headers=owner.headers,
        )
        assert one["data"]["content"] == node
    by_platform = {n["variations"][0]["platform"]: n["variations"][0] for n in nodes}
    assert [v["code"] for v in by_platform["INSTAGRAM"]["violations"]] == ["MEDIA_REQUIRED"]
    assert [v["code"] for v in by_platform["BLUESKY"]["violations"]] == ["MEDIA_TOO_LARGE"]
    assert by_platform["X"]["withinLimits"] is True
    assert len(by_platform["X"]["parts"]) == 4  # 863 characters, 274 per numbered part
    assert by_platform["X"]["media"] == [{"id": small["id"]}]
    assert nodes[0]["writer"] == {"name": "Test User"}


@pytest.mark.no_db
async def test_s3_storage_against_an_s3_compatible_server(s3_server: str, tmp_path: Path) -> None:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    settings = Settings(
        _env_file=None,
        media_storage="s3",
        s3_bucket="media",
        s3_endpoint_url=s3_server,  # type: ignore[call-arg]
        s3_access_key_id="test",
        s3_secret_access_key="test",
    )
    storage = S3Storage(settings)
    storage._client.create_bucket(Bucket="media")
    source = tmp_path / "blob.png"
    source.write_bytes(png(20, 20))
    await storage.put_file("ws/asset/blob.png", source, "image/png")
    assert await storage.get("ws/asset/blob.png") == source.read_bytes()
    signed = storage.url("ws/asset/blob.png", expires_in=60)
    assert "X-Amz-Signature=" in signed
    fetched = httpx.get(signed)
    assert fetched.status_code == 200 and fetched.content == source.read_bytes()
    assert fetched.headers["content-type"] == "image/png"
    assert fetched.headers["content-disposition"] == "inline"
    # Anything but a raster image or a video is stored inert: a download, never a page.
    await storage.put_file("ws/asset/page.html", source, "text/html")
    page = httpx.get(storage.url("ws/asset/page.html"))
    assert page.headers["content-type"] == "application/octet-stream"
    assert page.headers["content-disposition"] == "attachment"
    await storage.delete("ws/asset/blob.png")
    assert httpx.get(storage.url("ws/asset/blob.png")).status_code == 404
    with pytest.raises(ValueError, match="unsafe"):
        await storage.put_file("../escape", source, "image/png")
