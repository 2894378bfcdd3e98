"""The platform rules table and the variation API that reports it."""

from __future__ import annotations

import httpx
import pytest

from app.platforms.rules import MediaItem, Platform, evaluate
from tests.helpers import create_workspace, gql, register


def codes(platform: Platform, body: str, **kwargs: object) -> list[str]:
    return [v.code for v in evaluate(platform, body, **kwargs).violations]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("platform", "limit"),
    [
        (Platform.LINKEDIN, 3000),
        (Platform.INSTAGRAM, 2200),
        (Platform.FACEBOOK, 63206),
        (Platform.THREADS, 500),
        (Platform.MASTODON, 500),
        (Platform.BLUESKY, 300),
    ],
)
def test_character_limits(platform: Platform, limit: int) -> None:
    media = [MediaItem("image/png", 1000, "IMAGE")]
    assert "TOO_LONG" not in codes(platform, "a" * limit, media=media)
    result = evaluate(platform, "a" * (limit + 1), media=media)
    assert [v.code for v in result.violations] == ["TOO_LONG"]
    assert result.character_count == limit + 1 and not result.within_limits


def test_x_threads_are_numbered_and_fit() -> None:
    text = " ".join(f"word{i}" for i in range(200))  # ~1,400 characters
    result = evaluate(Platform.X, text)
    assert result.within_limits
    assert len(result.parts) >= 5
    assert all(len(p) <= 280 for p in result.parts)
    assert result.parts[0].endswith(f" 1/{len(result.parts)}")
    assert " ".join(p.rsplit(" ", 1)[0] for p in result.parts) == text


def test_x_explicit_parts_and_links_count_23() -> None:
    long_link = "https://example.com/" + "x" * 200
    assert evaluate(Platform.X, f"Read {long_link}").character_count == len("Read ") + 23
    too_long_part = "short intro\n---\n" + "y" * 300
    result = evaluate(Platform.X, too_long_part)
    assert [(v.code, v.part) for v in result.violations] == [("TOO_LONG", 2)]


def test_instagram_hashtags_and_media() -> None:
    tags = " ".join(f"#tag{i}" for i in range(31))
    assert codes(Platform.INSTAGRAM, tags) == ["TOO_MANY_HASHTAGS", "MEDIA_REQUIRED"]
    ok = codes(
        Platform.INSTAGRAM,
        " ".join(f"#t{i}" for i in range(30)),
        media=[MediaItem("image/jpeg", 10, "IMAGE")],
    )
    assert ok == []


def test_email_subject_and_preheader() -> None:
    assert codes(Platform.EMAIL, "Body", subject=None) == ["SUBJECT_REQUIRED"]
    assert codes(Platform.EMAIL, "Body", subject="s" * 101) == ["SUBJECT_TOO_LONG"]
    assert codes(Platform.EMAIL, "Body", subject="Hello", preheader="p" * 151) == [
        "PREHEADER_TOO_LONG"
    ]
    assert codes(Platform.EMAIL, "Body", subject="s" * 100, preheader="p" * 150) == []


def test_media_limits() -> None:
    five = [MediaItem("image/png", 100, "IMAGE")] * 5
    assert codes(Platform.X, "hi", media=five) == ["TOO_MANY_MEDIA"]
    assert codes(
        Platform.BLUESKY, "hi", media=[MediaItem("image/png", 2 * 1024 * 1024, "IMAGE")]
    ) == ["MEDIA_TOO_LARGE"]
    assert codes(Platform.X, "hi", media=[MediaItem("image/tiff", 10, "IMAGE")]) == ["MEDIA_TYPE"]
    assert codes(
        Platform.EMAIL, "hi", subject="s", media=[MediaItem("image/png", 10, "IMAGE")]
    ) == ["MEDIA_NOT_SUPPORTED"]


VARIATION = """
mutation($id: ID!, $p: Platform!, $i: VariationInput) {
  createVariation(contentId: $id, platform: $p, input: $i) {
    variation { id platform body characterCount withinLimits violations { code message part } parts subject }
    errors { field code }
  }
}
"""


async def test_variations_report_their_rule_check(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    created = await gql(
        client,
        'mutation($ws: ID!) { createContent(input: {workspaceId: $ws, title: "Launch", body: "Hello world"}) '
        "{ content { id } } }",
        {"ws": ws},
        headers=owner.headers,
    )
    content_id = created["data"]["createContent"]["content"]["id"]
    bluesky = await gql(
        client,
        VARIATION,
        {"id": content_id, "p": "BLUESKY", "i": {"body": "b" * 301}},
        headers=owner.headers,
    )
    variation = bluesky["data"]["createVariation"]["variation"]
    assert variation["characterCount"] == 301 and variation["withinLimits"] is False
    assert [v["code"] for v in variation["violations"]] == ["TOO_LONG"]
    email = await gql(client, VARIATION, {"id": content_id, "p": "EMAIL"}, headers=owner.headers)
    assert email["data"]["createVariation"]["variation"]["subject"] == "Launch", (
        "defaults to the title"
    )
    assert email["data"]["createVariation"]["variation"]["withinLimits"] is True
    twice = await gql(client, VARIATION, {"id": content_id, "p": "EMAIL"}, headers=owner.headers)
    assert twice["data"]["createVariation"]["errors"] == [{"field": "platform", "code": "EXISTS"}]
    fixed = await gql(
        client,
        'mutation($id: ID!) { updateVariation(id: $id, input: {body: "Short and sweet"}) '
        "{ variation { withinLimits characterCount } errors { code } } }",
        {"id": variation["id"]},
        headers=owner.headers,
    )
    assert fixed["data"]["updateVariation"]["variation"] == {
        "withinLimits": True,
        "characterCount": 15,
    }
    listed = await gql(
        client,
        "query($id: ID!) { content(id: $id) { variations { platform } } }",
        {"id": content_id},
        headers=owner.headers,
    )
    assert [v["platform"] for v in listed["data"]["content"]["variations"]] == ["BLUESKY", "EMAIL"]
