"""Which adapter publishes to each platform (one `Publisher` per platform)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from app.models.vocabulary import Platform
from app.platforms.adapters import webhook
from app.platforms.adapters.bluesky import BlueskyPublisher
from app.platforms.adapters.email import EmailPublisher
from app.platforms.adapters.facebook import FacebookPublisher
from app.platforms.adapters.instagram import InstagramPublisher
from app.platforms.adapters.linkedin import LinkedInPublisher
from app.platforms.adapters.mastodon import MastodonPublisher
from app.platforms.adapters.threads import ThreadsPublisher
from app.platforms.adapters.x import XPublisher
from app.platforms.publishing import Publisher
from app.settings import Settings

# Builds a platform's adapter around the caller's HTTP client and the settings (API base
# URLs are settings, so tests point adapters at local fakes of each platform).
PublisherFactory = Callable[[httpx.AsyncClient, Settings], Publisher]

FACTORIES: dict[Platform, PublisherFactory] = {
    Platform.X: XPublisher,
    Platform.LINKEDIN: LinkedInPublisher,
    Platform.FACEBOOK: FacebookPublisher,
    Platform.INSTAGRAM: InstagramPublisher,
    Platform.THREADS: ThreadsPublisher,
    Platform.MASTODON: MastodonPublisher,
    Platform.BLUESKY: BlueskyPublisher,
    Platform.EMAIL: EmailPublisher,
    Platform.WEBHOOK: webhook.factory,
}


def publisher_for(platform: Platform, http: httpx.AsyncClient, settings: Settings) -> Publisher:
    try:
        factory = FACTORIES[platform]
    except KeyError:
        raise LookupError(f"no publisher for {platform.value}") from None
    return factory(http, settings)
