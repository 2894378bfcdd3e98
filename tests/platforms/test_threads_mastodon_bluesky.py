"""Threads, Mastodon and Bluesky against the local fakes: reply chains, Mastodon's
Idempotency-Key, Bluesky sessions, facets, reply refs and the lookup of a lost post."""

from __future__ import annotations

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms.adapters.bluesky import MARKER
from app.platforms.adapters.bluesky_xrpc import create_session, facets
from app.platforms.oauth import mastodon_app, register_mastodon_app
from app.platforms.publishing import AuthError, Credentials, OutcomeUnknown, RetryableError
from app.platforms.registry import publisher_for
from app.settings import Settings
from tests.platforms.conftest import creds, image, make_post
from tests.platforms.fakes import PNG, TOKEN, FakePlatforms, Fault

pytestmark = pytest.mark.no_db

DID = FakePlatforms.DID


async def test_threads_reply_chain(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.THREADS, http, platform_settings)
    parts = ("First part", "Second part", "Third part")
    published = await publisher.publish(make_post(parts[0], parts), creds("1234"))
    containers = [s.form() for s in fake.requests("POST", "/v1.0/1234/threads")]
    first, second, third = published.part_ids
    assert containers == [
        {"media_type": "TEXT", "text": "First part", "access_token": TOKEN},
        {"media_type": "TEXT", "text": "Second part", "reply_to_id": first, "access_token": TOKEN},
        {"media_type": "TEXT", "text": "Third part", "reply_to_id": second, "access_token": TOKEN},
    ]
    publishes = [
        s.form()["creation_id"] for s in fake.requests("POST", "/v1.0/1234/threads_publish")
    ]
    assert publishes == [fake.graph[i]["container"] for i in published.part_ids]
    assert published.url == f"https://www.threads.net/@dev/post/T{first}"
    assert fake.graph[third]["reply_to_id"] == second

    reply = await publisher.comment(published, "A first comment", creds("1234"))
    assert fake.graph[reply.platform_post_id]["reply_to_id"] == third
    metrics = await publisher.fetch_metrics(published, creds("1234"))
    [insights] = fake.requests("GET", f"/v1.0/{first}/insights")
    assert insights.query["metric"] == "views,likes,replies,reposts,quotes,shares"
    assert (metrics.impressions, metrics.likes, metrics.comments, metrics.shares) == (
        1,
        2,
        3,
        4 + 5 + 6,
    )
    await publisher.delete(published, creds("1234"))
    assert not {first, second, third} & set(fake.graph)


async def test_threads_image_waits_for_the_container(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.THREADS, http, platform_settings)
    fake.poll_pending = 1
    published = await publisher.publish(make_post("Look", media=(image(fake),)), creds("1234"))
    [create] = fake.requests("POST", "/v1.0/1234/threads")
    assert create.form() == {
        "text": "Look",
        "media_type": "IMAGE",
        "image_url": image(fake).url,
        "alt_text": "A red dot",
        "access_token": TOKEN,
    }
    container = fake.graph[published.platform_post_id]["container"]
    assert [s.query["fields"] for s in fake.requests("GET", f"/v1.0/{container}")] == [
        "status,error_message"
    ] * 2


async def test_threads_partial_thread(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.THREADS, http, platform_settings)
    parts = ("One", "Two")
    fake.fail("POST", "/v1.0/1234/threads_publish", Fault(drop=True), after=1)
    with pytest.raises(OutcomeUnknown) as caught:
        await publisher.publish(make_post(parts[0], parts), creds("1234"))
    assert caught.value.partial is not None and len(caught.value.partial.part_ids) == 1


async def test_threads_refresh(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.THREADS, http, platform_settings)
    tokens = await publisher.refresh_token(creds("1234"))
    [seen] = fake.requests("GET", "/refresh_access_token")
    assert seen.query == {"grant_type": "th_refresh_token", "access_token": TOKEN}
    assert tokens.access_token == "threads-long-2" and tokens.expires_at is not None
    with pytest.raises(AuthError) as caught:
        await publisher.refresh_token(creds("1234", token="expired-token-xyz"))
    assert "expired-token-xyz" not in caught.value.message


def md(fake: FakePlatforms, token: str | None = TOKEN) -> Credentials:
    return creds(token=token, instance_url=fake.url + "/", username="dev")


async def test_mastodon_thread_with_idempotency_keys(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.MASTODON, http, platform_settings)
    parts = ("Toot one", "Toot two")
    post = make_post(parts[0], parts, idempotency_key="target-42")
    published = await publisher.publish(post, md(fake))
    first, second = fake.requests("POST", "/api/v1/statuses")
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert (first.headers["idempotency-key"], second.headers["idempotency-key"]) == (
        "target-42",
        "target-42:1",
    )
    assert first.json() == {"status": "Toot one", "visibility": "public"}
    assert second.json() == {
        "status": "Toot two",
        "visibility": "public",
        "in_reply_to_id": published.part_ids[0],
    }
    assert published.url == f"{fake.url}/@dev/{published.platform_post_id}"
    # Publishing the same target again (a retry after a lost answer) creates nothing new.
    again = await publisher.publish(post, md(fake))
    assert again.part_ids == published.part_ids and len(fake.statuses) == 2

    metrics = await publisher.fetch_metrics(published, md(fake))
    assert (metrics.likes, metrics.shares, metrics.comments) == (6, 2, 1)
    reply = await publisher.comment(published, "Comment", md(fake))
    assert fake.statuses[reply.platform_post_id]["in_reply_to_id"] == published.part_ids[-1]
    await publisher.delete(published, md(fake))
    assert set(fake.statuses) == {reply.platform_post_id}


async def test_mastodon_media_processing(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.MASTODON, http, platform_settings)
    fake.poll_pending = 2  # 202 on upload, then 206 twice, then 200
    published = await publisher.publish(make_post("Pic", media=(image(fake),)), md(fake))
    [upload] = fake.requests("POST", "/api/v2/media")
    assert upload.files["file"][1:] == ("image/png", PNG)
    assert b'name="description"\r\n\r\nA red dot' in upload.body
    media_id = fake.statuses[published.platform_post_id]["media_attachments"][0]["id"]
    assert len(fake.requests("GET", f"/api/v1/media/{media_id}")) == 3


async def test_mastodon_app_registration_and_oauth(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    app = await register_mastodon_app(http, fake.url, "https://app.example/oauth/mastodon/callback")
    [seen] = fake.requests("POST", "/api/v1/apps")
    assert seen.form() == {
        "client_name": "SmartContent",
        "scopes": "read write",
        "redirect_uris": "https://app.example/oauth/mastodon/callback",
    }
    assert app == mastodon_app(fake.url, "md-client", "md-secret")
    assert (
        app.authorize_url == f"{fake.url}/oauth/authorize"
        and app.token_url == f"{fake.url}/oauth/token"
    )


def bsky(fake: FakePlatforms, **extra: str) -> Credentials:
    return Credentials(
        external_id=DID,
        access_token=fake.session_jwts()["accessJwt"],
        extra={"handle": "dev.bsky.social", "pds_url": fake.url, **extra},
    )


def test_facets_are_utf8_byte_ranges() -> None:
    text = "Ünïcode 🚀 #launch at https://example.com/x. #2024 ok"
    found = facets(text)
    raw = text.encode()
    spans = [raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in found]
    assert spans == ["#launch", "https://example.com/x"]
    assert found[0]["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "launch"}]
    assert found[1]["features"] == [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/x"}
    ]


async def test_bluesky_thread_with_reply_refs(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.BLUESKY, http, platform_settings)
    parts = ("Skeet #one https://example.com", "Skeet two", "Skeet three")
    post = make_post(parts[0], parts, idempotency_key="target-7")
    published = await publisher.publish(post, bsky(fake))
    bodies = [s.json() for s in fake.requests("POST", "/xrpc/com.atproto.repo.createRecord")]
    assert all(b["repo"] == DID and b["collection"] == "app.bsky.feed.post" for b in bodies)
    records = [b["record"] for b in bodies]
    assert [r["text"] for r in records] == list(parts)
    assert [r[MARKER] for r in records] == ["target-7:0", "target-7:1", "target-7:2"]
    assert records[0]["$type"] == "app.bsky.feed.post" and records[0]["createdAt"].endswith("Z")
    assert [f["features"][0]["$type"] for f in records[0]["facets"]] == [
        "app.bsky.richtext.facet#tag",
        "app.bsky.richtext.facet#link",
    ]
    root = {"uri": published.part_ids[0], "cid": fake.records[published.part_ids[0]]["cid"]}
    second = {"uri": published.part_ids[1], "cid": fake.records[published.part_ids[1]]["cid"]}
    assert "reply" not in records[0]
    assert records[1]["reply"] == {"root": root, "parent": root}
    assert records[2]["reply"] == {"root": root, "parent": second}
    rkey = published.platform_post_id.rsplit("/", 1)[1]
    assert published.url == f"https://bsky.app/profile/dev.bsky.social/post/{rkey}"

    metrics = await publisher.fetch_metrics(published, bsky(fake))
    assert (metrics.likes, metrics.shares, metrics.comments) == (8, 3, 1)
    await publisher.delete(published, bsky(fake))
    assert not fake.records


async def test_bluesky_finds_a_post_whose_answer_was_lost(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.BLUESKY, http, platform_settings)
    assert publisher.can_look_up
    parts = ("Part A", "Part B")
    post = make_post(parts[0], parts, idempotency_key="target-9")
    assert await publisher.find_existing(post, bsky(fake)) is None
    # Part A is created and its answer lost.
    fake.fail("POST", "/xrpc/com.atproto.repo.createRecord", Fault(drop=True))
    with pytest.raises(OutcomeUnknown):
        await publisher.publish(post, bsky(fake))
    found = await publisher.find_existing(post, bsky(fake))
    assert found is not None and len(found.part_ids) == 1  # the thread was cut short
    [listing] = fake.requests("GET", "/xrpc/com.atproto.repo.listRecords")[-1:]
    assert listing.query == {"repo": DID, "collection": "app.bsky.feed.post", "limit": "100"}
    finished = await publisher.publish(
        make_post(parts[0], parts, idempotency_key="target-9", published_parts=found.part_ids),
        bsky(fake),
    )
    assert finished.part_ids[0] == found.part_ids[0] and len(fake.records) == 2
    last = fake.records[finished.part_ids[1]]["value"]
    assert last["reply"]["root"]["uri"] == found.part_ids[0]
    assert (await publisher.find_existing(post, bsky(fake))) == finished


async def test_bluesky_images_and_alt_text(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.BLUESKY, http, platform_settings)
    published = await publisher.publish(make_post("Pic", media=(image(fake),)), bsky(fake))
    [upload] = fake.requests("POST", "/xrpc/com.atproto.repo.uploadBlob")
    assert upload.body == PNG and upload.headers["content-type"] == "image/png"
    embed = fake.records[published.platform_post_id]["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert embed["images"][0]["alt"] == "A red dot"
    assert embed["images"][0]["image"]["ref"]["$link"] in fake.blobs


async def test_bluesky_sessions(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    session = await create_session(http, platform_settings, "dev.bsky.social", "app-pass-word")
    [seen] = fake.requests("POST", "/xrpc/com.atproto.server.createSession")
    assert seen.json() == {"identifier": "dev.bsky.social", "password": "app-pass-word"}
    assert session.did == DID and session.tokens.expires_at is not None
    with pytest.raises(AuthError) as caught:
        await create_session(http, platform_settings, "dev.bsky.social", "wrong-app-password")
    assert "wrong-app-password" not in caught.value.message

    publisher = publisher_for(Platform.BLUESKY, http, platform_settings)
    expired = fake.session_jwts(lifetime=-60)
    # An expired session with the app password stored: a new session, then the post.
    stale = Credentials(
        external_id=DID,
        access_token=expired["accessJwt"],
        extra={"handle": "dev.bsky.social", "pds_url": fake.url, "app_password": "app-pass-word"},
    )
    await publisher.publish(make_post("After expiry"), stale)
    assert len(fake.records) == 1
    # Without it: the account needs its tokens refreshed.
    with pytest.raises(AuthError):
        await publisher.publish(
            make_post("x"), Credentials(external_id=DID, access_token=expired["accessJwt"])
        )
    refreshed = await publisher.refresh_token(
        Credentials(
            external_id=DID,
            access_token=expired["accessJwt"],
            refresh_token=expired["refreshJwt"],
            extra={"pds_url": fake.url},
        )
    )
    [refresh] = fake.requests("POST", "/xrpc/com.atproto.server.refreshSession")
    assert refresh.headers["authorization"] == f"Bearer {expired['refreshJwt']}"
    assert refreshed.refresh_token and refreshed.refresh_token != expired["refreshJwt"]


async def test_bluesky_rate_limit_on_upload_is_retryable(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.BLUESKY, http, platform_settings)
    fake.fail(
        "POST",
        "/xrpc/com.atproto.repo.uploadBlob",
        Fault(429, {"error": "RateLimitExceeded"}, {"retry-after": "5"}),
    )
    with pytest.raises(RetryableError) as caught:
        await publisher.publish(make_post("Pic", media=(image(fake),)), bsky(fake))
    assert caught.value.retry_after == 5 and not fake.records


async def test_bluesky_session_refused_by_the_pds_is_replaced(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    import jwt as pyjwt

    forged = pyjwt.encode(
        {"scope": "com.atproto.access", "sub": DID},
        "some-other-secret-of-32-bytes!!!",
        algorithm="HS256",
    )
    publisher = publisher_for(Platform.BLUESKY, http, platform_settings)
    credentials = Credentials(
        external_id=DID,
        access_token=forged,
        extra={"handle": "dev.bsky.social", "pds_url": fake.url, "app_password": "app-pass-word"},
    )
    await publisher.publish(make_post("Still goes out"), credentials)
    assert len(fake.records) == 1
    creates = fake.requests("POST", "/xrpc/com.atproto.repo.createRecord")
    assert [s.headers["authorization"] == f"Bearer {forged}" for s in creates] == [True, False]
