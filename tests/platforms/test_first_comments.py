"""First comments on the platforms whose comment call was not yet pinned elsewhere
(Instagram, Bluesky), each request as the platform documents it, and the error mapping
of a comment: the Graph API refusing a comment is permanent, a rate limit retryable.
(X, LinkedIn, Facebook, Threads and Mastodon comments: test_x.py, test_linkedin_meta.py,
test_threads_mastodon_bluesky.py.)"""

from __future__ import annotations

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms.publishing import PermanentError, Published, RetryableError
from app.platforms.registry import publisher_for
from app.settings import Settings
from tests.platforms.conftest import creds, image, make_post
from tests.platforms.fakes import TOKEN, FakePlatforms, Fault
from tests.platforms.test_threads_mastodon_bluesky import DID, bsky

pytestmark = pytest.mark.no_db

IG = "17841400001"


async def test_instagram_comment_on_the_published_media(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.INSTAGRAM, http, platform_settings)
    published = await publisher.publish(make_post("Caption", media=(image(fake),)), creds(IG))
    comment = await publisher.comment(published, "Link in bio", creds(IG))
    # POST /{ig-media-id}/comments with `message` (Instagram Graph API, Comments).
    [request] = fake.requests("POST", f"/v23.0/{published.platform_post_id}/comments")
    assert request.form() == {"message": "Link in bio", "access_token": TOKEN}
    assert fake.graph[comment.platform_post_id]["parent"] == published.platform_post_id
    assert comment.url == published.url  # a comment has no page of its own


async def test_instagram_comment_errors_map_like_posts(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.INSTAGRAM, http, platform_settings)
    gone = Published("no-such-media", None, ("no-such-media",))
    with pytest.raises(PermanentError, match="cannot be commented"):
        await publisher.comment(gone, "Hello", creds(IG))
    published = await publisher.publish(make_post("Caption", media=(image(fake),)), creds(IG))
    limit = {"error": {"message": "Application request limit reached", "code": 4}}
    fake.fail("POST", r"/v23.0/\d+/comments", Fault(400, limit))
    with pytest.raises(RetryableError, match="rate limit"):
        await publisher.comment(published, "Hello", creds(IG))


async def test_bluesky_comment_is_a_reply_record_to_the_thread(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.BLUESKY, http, platform_settings)
    parts = ("Skeet one", "Skeet two")
    published = await publisher.publish(make_post(parts[0], parts), bsky(fake))
    fake.seen.clear()
    reply = await publisher.comment(published, "More below", bsky(fake))
    [create] = fake.requests("POST", "/xrpc/com.atproto.repo.createRecord")
    body = create.json()
    assert (body["repo"], body["collection"]) == (DID, "app.bsky.feed.post")
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post" and record["text"] == "More below"
    # app.bsky.feed.post#replyRef: root is the thread's first post, parent its last.
    first, last = published.part_ids
    assert record["reply"] == {
        "root": {"uri": first, "cid": fake.records[first]["cid"]},
        "parent": {"uri": last, "cid": fake.records[last]["cid"]},
    }
    assert reply.platform_post_id in fake.records
