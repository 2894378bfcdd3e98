"""Fixtures for the publisher tests: the local platform fakes, settings pointing every
adapter at them, and an HTTP client like the one delivery hands adapters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.platforms.publishing import Credentials, MediaItem, Post
from app.settings import Settings
from tests.platforms.fakes import TOKEN, FakePlatforms, serve_fake_platforms


@pytest.fixture(scope="session")
async def fake_server() -> AsyncIterator[FakePlatforms]:
    async with serve_fake_platforms() as fake:
        yield fake


@pytest.fixture
async def fake(fake_server: FakePlatforms) -> FakePlatforms:
    fake_server.reset()
    return fake_server


@pytest.fixture
def platform_settings(fake: FakePlatforms) -> Settings:
    return adapter_settings(fake)


def adapter_settings(fake: FakePlatforms, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "x_api_base_url": fake.url,
        "x_token_url": f"{fake.url}/2/oauth2/token",
        "x_client_id": "x-client",
        "x_client_secret": "x-secret-value",
        "linkedin_api_base_url": fake.url,
        "linkedin_token_url": f"{fake.url}/oauth/v2/accessToken",
        "linkedin_client_id": "li-client",
        "linkedin_client_secret": "li-secret-value",
        "meta_graph_base_url": fake.url,
        "meta_graph_version": "v23.0",
        "facebook_client_id": "fb-app",
        "facebook_client_secret": "fb-secret-value",
        "threads_api_base_url": fake.url,
        "threads_client_id": "th-app",
        "threads_client_secret": "th-secret-value",
        "bluesky_pds_url": fake.url,
        "platform_media_poll_seconds": 0,
        "platform_media_poll_attempts": 5,
        "smtp_timeout_seconds": 5,
        # The fakes and the SMTP inbox listen on 127.0.0.1 (the email adapter checks it).
        "outbound_allow_private_networks": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # One client for the session (building one costs an SSL context, ~0.1 s).
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=1.0)) as client:
        yield client


def make_post(
    text: str = "Hello from SmartContent",
    parts: tuple[str, ...] | None = None,
    media: tuple[MediaItem, ...] = (),
    **fields: Any,
) -> Post:
    return Post(
        target_id=uuid.uuid4(),
        content_id=uuid.uuid4(),
        text=text,
        parts=parts or (text,),
        media=media,
        idempotency_key=fields.pop("idempotency_key", f"target-{uuid.uuid4()}"),
        **fields,
    )


def creds(external_id: str | None = None, token: str | None = TOKEN, **extra: str) -> Credentials:
    return Credentials(access_token=token, external_id=external_id, extra=extra)


def image(fake: FakePlatforms, alt: str | None = "A red dot") -> MediaItem:
    return MediaItem(
        url=f"{fake.url}/media/dot.png?sig=media-signature", mime_type="image/png", alt_text=alt
    )
