"""X API v2 adapter against the local fake: request shapes from X's API reference
(POST /2/tweets, reply.in_reply_to_tweet_id, media.media_ids, POST /2/media/upload
multipart with media_category, public_metrics)."""

from __future__ import annotations

import time

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms.adapters.x import XPublisher
from app.platforms.publishing import (
    Credentials,
    PermanentError,
    RetryableError,
)
from app.platforms.registry import publisher_for
from app.settings import Settings
from tests.platforms.conftest import creds, image, make_post
from tests.platforms.fakes import PNG, TOKEN, FakePlatforms, Fault

pytestmark = pytest.mark.no_db


def x(http: httpx.AsyncClient, settings: Settings) -> XPublisher:
    publisher = publisher_for(Platform.X, http, settings)
    assert isinstance(publisher, XPublisher)
    return publisher


async def test_single_post(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    published = await x(http, platform_settings).publish(
        make_post("Launch day!"), creds(username="dev")
    )
    [seen] = fake.requests("POST", "/2/tweets")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {"text": "Launch day!"}
    assert published.platform_post_id in fake.tweets
    assert published.url == f"https://x.com/dev/status/{published.platform_post_id}"
    assert published.part_ids == (published.platform_post_id,)


async def test_thread_is_a_reply_chain(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    parts = ("One 1/3", "Two 2/3", "Three 3/3")
    published = await x(http, platform_settings).publish(make_post(parts[0], parts), creds())
    bodies = [s.json() for s in fake.requests("POST", "/2/tweets")]
    first, second, third = published.part_ids
    assert bodies == [
        {"text": "One 1/3"},
        {"text": "Two 2/3", "reply": {"in_reply_to_tweet_id": first}},
        {"text": "Three 3/3", "reply": {"in_reply_to_tweet_id": second}},
    ]
    assert published.platform_post_id == first
    assert published.url == f"https://x.com/i/web/status/{first}"
    assert len(fake.tweets) == 3 and third in fake.tweets


async def test_thread_cut_short_resumes_without_reposting(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    parts = ("A 1/3", "B 2/3", "C 3/3")
    post = make_post(parts[0], parts)
    # The first tweet goes out, the second meets a 503.
    fake.fail(
        "POST", "/2/tweets", Fault(503, {"title": "Service Unavailable", "status": 503}), after=1
    )
    with pytest.raises(RetryableError) as caught:
        await x(http, platform_settings).publish(post, creds())
    partial = caught.value.partial
    assert partial is not None and len(partial.part_ids) == 1
    assert len(fake.tweets) == 1

    resumed = await x(http, platform_settings).publish(
        make_post(
            parts[0], parts, idempotency_key=post.idempotency_key, published_parts=partial.part_ids
        ),
        creds(),
    )
    assert resumed.part_ids[0] == partial.part_ids[0] and len(resumed.part_ids) == 3
    assert len(fake.tweets) == 3  # A once, then B and C
    bodies = [s.json() for s in fake.requests("POST", "/2/tweets")]
    assert bodies[-2] == {"text": "B 2/3", "reply": {"in_reply_to_tweet_id": partial.part_ids[0]}}


async def test_media_upload_then_attach(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    published = await x(http, platform_settings).publish(
        make_post("With a picture", media=(image(fake),)), creds()
    )
    [upload] = fake.requests("POST", "/2/media/upload")
    assert upload.headers["authorization"] == f"Bearer {TOKEN}"
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="media_category"\r\n\r\ntweet_image' in upload.body
    assert upload.files["media"][1:] == ("image/png", PNG)
    [meta] = fake.requests("POST", "/2/media/metadata")
    media_id = meta.json()["id"]
    assert meta.json() == {"id": media_id, "metadata": {"alt_text": {"text": "A red dot"}}}
    assert fake.tweets[published.platform_post_id]["media"] == {"media_ids": [media_id]}


async def test_video_upload_in_chunks(
    fake: FakePlatforms,
    http: httpx.AsyncClient,
    platform_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.platforms.adapters import x as x_module
    from app.platforms.publishing import MediaItem

    monkeypatch.setattr(x_module, "VIDEO_CHUNK_BYTES", 30)  # the fake serves a 67-byte PNG
    fake.poll_pending = 2  # "pending" after finalize, "in_progress" once, then "succeeded"
    clip = MediaItem(url=f"{fake.url}/media/clip.mp4", mime_type="video/mp4")
    published = await x(http, platform_settings).publish(make_post("Watch", media=(clip,)), creds())
    [init] = fake.requests("POST", "/2/media/upload/initialize")
    assert init.json() == {
        "media_type": "video/mp4",
        "total_bytes": len(PNG),
        "media_category": "tweet_video",
    }
    media_id = fake.tweets[published.platform_post_id]["media"]["media_ids"][0]
    appends = fake.requests("POST", f"/2/media/upload/{media_id}/append")
    assert [b'name="segment_index"\r\n\r\n%d' % i in a.body for i, a in enumerate(appends)] == [
        True
    ] * 3
    assert fake.x_media[media_id]["data"] == PNG
    statuses = fake.requests("GET", "/2/media/upload")
    assert [s.query for s in statuses] == [{"command": "STATUS", "media_id": media_id}] * 2


async def test_comment_delete_metrics(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = x(http, platform_settings)
    published = await publisher.publish(make_post("a", ("a 1/2", "b 2/2")), creds())
    reply = await publisher.comment(published, "First comment", creds())
    assert fake.tweets[reply.platform_post_id]["reply"] == {
        "in_reply_to_tweet_id": published.part_ids[-1]
    }
    metrics = await publisher.fetch_metrics(published, creds())
    [read] = fake.requests("GET", f"/2/tweets/{published.platform_post_id}")
    assert read.query == {"tweet.fields": "public_metrics"}
    assert (metrics.impressions, metrics.likes, metrics.comments, metrics.shares) == (250, 10, 2, 4)
    await publisher.delete(published, creds())
    deleted = [s.path.rsplit("/", 1)[1] for s in fake.requests("DELETE", r"/2/tweets/\d+")]
    assert deleted == list(reversed(published.part_ids))
    assert set(fake.tweets) == {reply.platform_post_id}
    await publisher.delete(published, creds())  # already gone: nothing to do


async def test_rate_limit_uses_x_reset_headers(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    reset = int(time.time()) + 40
    fake.fail(
        "POST",
        "/2/tweets",
        Fault(
            429,
            {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
            {
                "x-rate-limit-limit": "200",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            },
        ),
    )
    with pytest.raises(RetryableError) as caught:
        await x(http, platform_settings).publish(make_post(), creds())
    assert caught.value.retry_after is not None and 30 < caught.value.retry_after <= 40
    # The 24-hour posting cap wins over the per-window reset.
    day = int(time.time()) + 3600
    fake.fail(
        "POST",
        "/2/tweets",
        Fault(
            429,
            {"title": "Too Many Requests", "status": 429},
            {
                "x-rate-limit-reset": str(reset),
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": str(day),
            },
        ),
    )
    with pytest.raises(RetryableError) as caught:
        await x(http, platform_settings).publish(make_post(), creds())
    assert caught.value.retry_after is not None and 3500 < caught.value.retry_after <= 3600


async def test_duplicate_content_is_permanent(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    fake.fail(
        "POST",
        "/2/tweets",
        Fault(
            403,
            {
                "detail": "You are not allowed to create a Tweet with duplicate content.",
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
            },
        ),
    )
    with pytest.raises(PermanentError) as caught:
        await x(http, platform_settings).publish(make_post(), creds())
    assert "duplicate content" in caught.value.message and caught.value.status == 403


async def test_refresh_rotates_tokens(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    tokens = await x(http, platform_settings).refresh_token(
        Credentials(access_token="old", refresh_token="refresh-1")
    )
    [seen] = fake.requests("POST", "/2/oauth2/token")
    assert seen.form() == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-1",
        "scope": platform_settings.x_scopes,
    }
    # A confidential client authenticates with HTTP Basic (X's OAuth 2.0 docs).
    assert seen.headers["authorization"].startswith("Basic ")
    assert tokens.access_token.startswith("x-access-") and tokens.refresh_token not in (
        None,
        "refresh-1",
    )
    assert tokens.expires_at is not None


def test_validate(platform_settings: Settings) -> None:
    publisher = XPublisher(httpx.AsyncClient(), platform_settings)
    assert publisher.validate(make_post("ok"), creds()) == []
    too_long = make_post("x" * 281)
    assert any("limit is 280" in p for p in publisher.validate(too_long, creds()))
    assert publisher.validate(make_post("ok"), creds(token=None)) == [
        "The account has no access token; reconnect it."
    ]
