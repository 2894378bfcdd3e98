"""LinkedIn (Posts API), Facebook Pages and Instagram (Graph API) against the local fakes:
the documented endpoints, headers and bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms.adapters.linkedin import little_text
from app.platforms.publishing import MediaItem, OutcomeUnknown, PermanentError, RetryableError
from app.platforms.registry import publisher_for
from app.settings import Settings
from tests.platforms.conftest import creds, image, make_post
from tests.platforms.fakes import PNG, TOKEN, FakePlatforms, Fault

pytestmark = pytest.mark.no_db

AUTHOR = "urn:li:person:782bbtaQ"
IG = "17841400001"


def video(fake: FakePlatforms) -> MediaItem:
    return MediaItem(url=f"{fake.url}/media/clip.mp4", mime_type="video/mp4")


def test_little_text_escapes_markup_but_keeps_links_and_hashtags() -> None:
    text = "Big (news) [today] @all: 50% off_now ~ <3 * | {x} \\ #launch https://ex.com/a_(b)"
    assert little_text(text) == (
        "Big \\(news\\) \\[today\\] \\@all: 50% off\\_now \\~ \\<3 \\* \\| \\{x\\} \\\\ "
        "#launch https://ex.com/a_(b)"
    )


async def test_linkedin_post(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.LINKEDIN, http, platform_settings)
    published = await publisher.publish(make_post("Hiring (remote) #jobs"), creds(AUTHOR))
    [seen] = fake.requests("POST", "/rest/posts")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["linkedin-version"] == platform_settings.linkedin_api_version
    assert seen.headers["x-restli-protocol-version"] == "2.0.0"
    assert seen.json() == {
        "author": AUTHOR,
        "commentary": "Hiring \\(remote\\) #jobs",
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    urn = published.platform_post_id
    assert urn.startswith("urn:li:share:") and urn in fake.li_posts
    assert published.url == f"https://www.linkedin.com/feed/update/{urn}/"

    comment = await publisher.comment(published, "More in the comments", creds(AUTHOR))
    [c] = fake.requests("POST", r"/rest/socialActions/.+/comments")
    assert c.json() == {"actor": AUTHOR, "object": urn, "message": {"text": "More in the comments"}}
    assert comment.platform_post_id.startswith("urn:li:comment:")
    metrics = await publisher.fetch_metrics(published, creds(AUTHOR))
    assert (metrics.likes, metrics.comments) == (7, 4)
    await publisher.delete(published, creds(AUTHOR))
    [d] = fake.requests("DELETE", r"/rest/posts/.+")
    assert d.headers["linkedin-version"] and urn not in fake.li_posts


async def test_linkedin_images(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.LINKEDIN, http, platform_settings)
    await publisher.publish(
        make_post("Two pictures", media=(image(fake), image(fake, None))), creds(AUTHOR)
    )
    inits = fake.requests("POST", "/rest/images")
    assert [s.query for s in inits] == [{"action": "initializeUpload"}] * 2
    assert inits[0].json() == {"initializeUploadRequest": {"owner": AUTHOR}}
    assert list(fake.li_images_up.values()) == [PNG, PNG]
    [post] = fake.li_posts.values()
    images = post["content"]["multiImage"]["images"]
    assert images[0]["altText"] == "A red dot" and "altText" not in images[1]
    assert all(i["id"].startswith("urn:li:image:") for i in images)


async def test_linkedin_validate(
    http: httpx.AsyncClient, platform_settings: Settings, fake: FakePlatforms
) -> None:
    publisher = publisher_for(Platform.LINKEDIN, http, platform_settings)
    assert publisher.validate(make_post("ok"), creds(AUTHOR)) == []
    problems = publisher.validate(make_post("ok", media=(video(fake),)), creds("12345"))
    assert "video/mp4 cannot be posted to LINKEDIN." in problems
    assert "The LinkedIn account's author must be a urn:li: URN." in problems


async def test_facebook_text_photo_album_video(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.FACEBOOK, http, platform_settings)
    page = creds("111")
    text = await publisher.publish(make_post("Page update"), page)
    [feed] = fake.requests("POST", "/v23.0/111/feed")
    assert feed.form() == {"message": "Page update", "access_token": TOKEN}
    assert text.platform_post_id.startswith("111_")
    assert text.url == f"https://www.facebook.com/{text.platform_post_id}"

    photo = await publisher.publish(make_post("One photo", media=(image(fake),)), page)
    [one] = fake.requests("POST", "/v23.0/111/photos")
    assert one.form() == {"url": image(fake).url, "caption": "One photo", "access_token": TOKEN}
    assert photo.platform_post_id.startswith("111_")

    album = await publisher.publish(make_post("Album", media=(image(fake), image(fake))), page)
    uploads = fake.requests("POST", "/v23.0/111/photos")[1:]
    assert [u.form()["published"] for u in uploads] == ["false", "false"]
    feed = fake.requests("POST", "/v23.0/111/feed")[-1].form()
    assert feed["message"] == "Album"
    ids = [json.loads(feed[f"attached_media[{i}]"])["media_fbid"] for i in range(2)]
    assert all(fake.graph[i]["kind"] == "photo" for i in ids)
    assert album.platform_post_id in fake.graph

    clip = await publisher.publish(make_post("A clip", media=(video(fake),)), page)
    [v] = fake.requests("POST", "/v23.0/111/videos")
    assert v.form()["file_url"] == video(fake).url and v.form()["description"] == "A clip"
    assert clip.url == f"https://www.facebook.com/111/videos/{clip.platform_post_id}"

    comment = await publisher.comment(text, "First!", page)
    assert fake.graph[comment.platform_post_id] == {
        "kind": "comment",
        "parent": text.platform_post_id,
        "message": "First!",
        "access_token": TOKEN,
    }
    metrics = await publisher.fetch_metrics(text, page)
    assert (metrics.likes, metrics.comments, metrics.shares) == (9, 3, 2)
    assert (metrics.impressions, metrics.reach) == (5, 6)
    await publisher.delete(text, page)
    assert text.platform_post_id not in fake.graph


async def test_instagram_container_then_publish(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.INSTAGRAM, http, platform_settings)
    fake.poll_pending = 2  # the container reports IN_PROGRESS twice, then FINISHED
    published = await publisher.publish(make_post("Caption #tag", media=(image(fake),)), creds(IG))
    [create] = fake.requests("POST", f"/v23.0/{IG}/media")
    assert create.form() == {
        "caption": "Caption #tag",
        "image_url": image(fake).url,
        "alt_text": "A red dot",
        "access_token": TOKEN,
    }
    container = fake.graph[published.platform_post_id]["container"]
    polls = fake.requests("GET", f"/v23.0/{container}")
    assert len(polls) == 3 and polls[0].query["fields"] == "status_code,status"
    [publish] = fake.requests("POST", f"/v23.0/{IG}/media_publish")
    assert publish.form() == {"creation_id": container, "access_token": TOKEN}
    assert published.url == f"https://www.instagram.com/p/X{published.platform_post_id}/"


async def test_instagram_carousel_and_reel(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.INSTAGRAM, http, platform_settings)
    await publisher.publish(make_post("Carousel", media=(image(fake), video(fake))), creds(IG))
    first, second, carousel = [s.form() for s in fake.requests("POST", f"/v23.0/{IG}/media")]
    assert first["is_carousel_item"] == "true" and first["image_url"] == image(fake).url
    assert second == {
        "media_type": "VIDEO",
        "video_url": video(fake).url,
        "is_carousel_item": "true",
        "access_token": TOKEN,
    }
    assert carousel["media_type"] == "CAROUSEL" and carousel["caption"] == "Carousel"
    assert len(carousel["children"].split(",")) == 2
    await publisher.publish(make_post("Reel", media=(video(fake),)), creds(IG))
    reel = fake.requests("POST", f"/v23.0/{IG}/media")[-1].form()
    assert reel["media_type"] == "REELS" and reel["video_url"] == video(fake).url


async def test_instagram_container_steps_are_retryable_publish_is_not(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.INSTAGRAM, http, platform_settings)
    post = make_post("Caption", media=(image(fake),))
    # A lost answer while creating the (invisible) container: safe to retry.
    fake.fail("POST", f"/v23.0/{IG}/media", Fault(drop=True))
    with pytest.raises(RetryableError):
        await publisher.publish(post, creds(IG))
    fake.poll_pending = 10  # never finishes within the attempts: retry later
    with pytest.raises(RetryableError, match="still being processed"):
        await publisher.publish(post, creds(IG))
    fake.poll_pending = 0
    fake.fail("POST", f"/v23.0/{IG}/media_publish", Fault(drop=True))
    with pytest.raises(OutcomeUnknown):
        await publisher.publish(post, creds(IG))
    assert [g["kind"] for g in fake.graph.values()].count("ig_media") == 1


async def test_instagram_needs_media(http: httpx.AsyncClient, platform_settings: Settings) -> None:
    publisher = publisher_for(Platform.INSTAGRAM, http, platform_settings)
    assert "INSTAGRAM needs at least one image or video." in publisher.validate(
        make_post("x"), creds(IG)
    )
    with pytest.raises(PermanentError):
        await publisher.publish(make_post("x"), creds(IG))
