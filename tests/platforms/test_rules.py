"""The platform rules table and the variation API that reports it."""

from __future__ import annotations

import random
import time

import httpx
import pytest
from twitter_text import parse_tweet

from app.platforms.counting import graphemes, x_weighted_length
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


# X's weighted length, Bluesky's graphemes, X's media rule ----------------------------------

FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one emoji, 7 code points
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"
THUMBS_UP_MEDIUM = "\U0001f44d\U0001f3fd"
JAPAN = "\U0001f1ef\U0001f1f5"


def test_x_counts_cjk_as_two_and_any_emoji_as_two() -> None:
    assert evaluate(Platform.X, "日本語のテキスト").character_count == 16
    assert len(evaluate(Platform.X, "字" * 140).parts) == 1
    over = evaluate(Platform.X, "字" * 141)
    assert over.character_count == 282 and len(over.parts) == 2, "a thread of two"
    explicit = evaluate(Platform.X, "Intro\n---\n" + "한" * 141)
    assert [(v.code, v.part) for v in explicit.violations] == [("TOO_LONG", 2)]
    for emoji in (FAMILY, RAINBOW_FLAG, THUMBS_UP_MEDIUM, JAPAN, "1\ufe0f\u20e3", "\u00a9"):
        assert evaluate(Platform.X, emoji).character_count == 2, repr(emoji)
    assert len(evaluate(Platform.X, FAMILY * 140).parts) == 1
    assert len(evaluate(Platform.X, FAMILY * 141).parts) == 2
    # Latin with accents (composed or not), Cyrillic and Greek weigh 1.
    assert evaluate(Platform.X, "café cafe\u0301 Привет αβγ").character_count == 20


def test_x_counts_every_link_as_23_with_or_without_a_scheme() -> None:
    assert evaluate(Platform.X, "Visit example.com.").character_count == 6 + 23 + 1
    assert evaluate(Platform.X, "詳しくはexample.co.jp/ja/へ").character_count == 8 + 23 + 2
    path = "https://en.wikipedia.org/wiki/Foo_(bar)"
    assert evaluate(Platform.X, f"({path}), e.g. v1.2").character_count == 1 + 23 + 12
    # An email address is no link; .js is no top-level domain.
    assert evaluate(Platform.X, "me@example.com node.js").character_count == 22


def test_x_agrees_with_twitter_text() -> None:
    """The reference: twitter-text-parser's own parse_tweet, on ordinary posts."""
    rng = random.Random(20260)
    pieces = [
        "launch", "today", "日本語", "テキスト", "한국어", "Привет", "café", "naïve",
        FAMILY, THUMBS_UP_MEDIUM, JAPAN, RAINBOW_FLAG, "1\ufe0f\u20e3", "\u00a9", "\u2122",
        "https://example.com", "https://example.com/path", "example.com",
        "http://sub.example.co.uk/a/b?x=1&y=2", "www.example.org/page", "https://t.co/abc",
        "https://en.wikipedia.org/wiki/Foo_(bar)", "https://例え.jp", "e.g.", "v1.2",
        "node.js", "end.", "(see", "this)", "#tag", "@user", "me@example.com", "—", "…",
        "“quoted”", "100%", "\n",
    ]  # fmt: skip
    for _ in range(500):
        words = [rng.choice(pieces) for _ in range(rng.randint(1, 30))]
        text = "".join(w + rng.choice([" ", " ", "\n", ". ", ", "]) for w in words)
        assert x_weighted_length(text) == parse_tweet(text).weightedLength, repr(text)


def test_bluesky_counts_graphemes() -> None:
    assert evaluate(Platform.BLUESKY, FAMILY * 3 + JAPAN + "e\u0301").character_count == 5
    assert codes(Platform.BLUESKY, FAMILY * 300) == []
    assert codes(Platform.BLUESKY, FAMILY * 301) == ["TOO_LONG"]
    assert codes(Platform.BLUESKY, "字" * 300) == []
    # A run of flags pairs up from its start; an odd one out is a grapheme of its own.
    assert graphemes("\U0001f1ef" * 5) == 3


def test_counting_stays_linear_on_hostile_text() -> None:
    """twitter-text's URL expression takes seconds on 1.6 KB of "a.a.a..." and `regex`'s
    \\X is quadratic on runs of regional indicators: neither shape may stall a read."""
    hostile = [
        "a." * 50_000,
        ("é" * 30 + ".") * 3000,
        "https://x.com/" + "?" * 99_000,
        "https://" + "日." * 49_000,
        "\U0001f1ef" * 100_000,
        "a.b " * 25_000,
        FAMILY * 14_000,
    ]
    started = time.perf_counter()
    for text in hostile:
        for platform in (Platform.X, Platform.BLUESKY):
            assert not evaluate(platform, text).within_limits
    # Under 0.1 s each on a laptop; the bound is far from the seconds-to-hours of before.
    assert time.perf_counter() - started < 10


def test_x_threads_cut_text_written_without_spaces() -> None:
    text = "これは長い日本語の文章です。" * 30  # 420 characters, 840 weighted, no spaces
    result = evaluate(Platform.X, text)
    assert result.within_limits, result.violations
    assert len(result.parts) == 4
    assert all(x_weighted_length(p) <= 280 for p in result.parts)
    assert "".join(p.rsplit(" ", 1)[0] for p in result.parts) == text


def test_x_takes_four_images_or_one_video_not_both() -> None:
    image = MediaItem("image/png", 100, "IMAGE")
    video = MediaItem("video/mp4", 100, "VIDEO")
    assert codes(Platform.X, "hi", media=[image] * 4) == []
    assert codes(Platform.X, "hi", media=[video]) == []
    assert codes(Platform.X, "hi", media=[image, video]) == ["MEDIA_MIX"]
    assert codes(Platform.X, "hi", media=[video, video]) == ["TOO_MANY_VIDEOS"]
    # Elsewhere a mix is fine.
    assert codes(Platform.LINKEDIN, "hi", media=[image, video, video]) == []
