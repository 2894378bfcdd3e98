"""Fixtures for analytics: an app and a collector pointed at the local platform fakes, a
clock the tests move by hand, and rows of published targets to collect."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from app.infra import outbound
from app.models import Content, MetricSchedule, MetricSnapshot, PostTarget, ScheduledPost, Workspace
from app.models.vocabulary import Platform
from app.platforms.publishing import Credentials
from app.services.analytics.metrics_collector import Collector
from app.services.publishing.accounts import store_account
from app.settings import Settings
from app.state import AppState
from tests.conftest import Servers, make_settings, running_app
from tests.platforms.fakes import TOKEN, FakePlatforms, serve_fake_platforms

# Published at a fixed time: the tests' clock starts here, whatever the wall clock says.
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ANALYTICS = {
    "outbound_allow_private_networks": True,
    "metrics_backoff_seconds": 60,
    "metrics_backoff_max_seconds": 3600,
    "metrics_max_attempts": 3,
    "metrics_lease_seconds": 30,
    "metrics_request_timeout_seconds": 5,
    "metrics_interval_seconds": 3600,  # the workers' own collector stays out of the way
}


class Clock:
    """The collector's `now`, moved by the test."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, offset: timedelta) -> Clock:
        self.now = T0 + offset
        return self


@pytest.fixture(scope="module")
async def fake_api() -> AsyncIterator[FakePlatforms]:
    async with serve_fake_platforms() as fake:
        yield fake


@pytest.fixture
def fake(fake_api: FakePlatforms) -> FakePlatforms:
    fake_api.reset()
    return fake_api


@pytest.fixture(scope="module")
def analytics_settings(servers: Servers, fake_api: FakePlatforms) -> Settings:
    return make_settings(servers, **ANALYTICS, x_api_base_url=fake_api.url)


@pytest.fixture(scope="module")
async def analytics_app(analytics_settings: Settings) -> AsyncIterator[Starlette]:
    async with running_app(analytics_settings) as app:
        yield app


@pytest.fixture
def state(analytics_app: Starlette) -> AppState:
    value: AppState = analytics_app.state.smartcontent
    return value


@pytest.fixture
async def client(analytics_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=analytics_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def collector(state: AppState, clock: Clock) -> AsyncIterator[Collector]:
    async with outbound.client(state.settings, timeout=5) as http:
        yield Collector(
            state.session_factory, state.settings, state.keys.box, http, state.hub, clock
        )


@dataclass
class Seeded:
    workspace_id: uuid.UUID
    content_id: uuid.UUID
    account_id: uuid.UUID
    target_id: uuid.UUID
    platform_post_id: str


async def seed_workspace(state: AppState) -> uuid.UUID:
    workspace_id = uuid.uuid4()
    async with state.session_factory() as session, session.begin():
        session.add(Workspace(id=workspace_id, name="Metrics", brand_voice={}))
    return workspace_id


async def seed_content(
    state: AppState, workspace_id: uuid.UUID, title: str = "Launch"
) -> uuid.UUID:
    content_id = uuid.uuid4()
    async with state.session_factory() as session, session.begin():
        session.add(
            Content(
                id=content_id,
                workspace_id=workspace_id,
                title=title,
                body="Launch day is here.",
                content_type="SOCIAL_POST",
                format="PLAIN",
                status="PUBLISHED",
            )
        )
    return content_id


async def seed_target(
    state: AppState,
    *,
    workspace_id: uuid.UUID | None = None,
    content_id: uuid.UUID | None = None,
    platform: Platform = Platform.X,
    token: str = TOKEN,
    published_at: datetime = T0,
    platform_post_id: str | None = None,
    fake: FakePlatforms | None = None,
) -> Seeded:
    """A PUBLISHED target on a new account (the X fake knows its tweet when given)."""
    workspace_id = workspace_id or await seed_workspace(state)
    content_id = content_id or await seed_content(state, workspace_id)
    platform_post_id = platform_post_id or str(uuid.uuid4().int % 10**15)
    if fake is not None:
        fake.tweets[platform_post_id] = {"text": "Launch day is here."}
    target_id = uuid.uuid4()
    async with state.session_factory() as session, session.begin():
        account = await store_account(
            session,
            state.keys.box,
            workspace_id=workspace_id,
            platform=platform,
            name=f"{platform.value} account",
            credentials=Credentials(access_token=token, external_id=f"ext-{uuid.uuid4()}"),
            created_by_id=None,
        )
        post = ScheduledPost(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            content_id=content_id,
            scheduled_at=published_at,
            timezone="UTC",
        )
        session.add(post)
        await session.flush()
        session.add(
            PostTarget(
                id=target_id,
                post_id=post.id,
                workspace_id=workspace_id,
                social_account_id=account.id,
                platform=platform.value,
                status="PUBLISHED",
                scheduled_at=published_at,
                timezone="UTC",
                next_attempt_at=published_at,
                idempotency_key=f"sc-{target_id.hex}",
                platform_post_id=platform_post_id,
                published_at=published_at,
                attempts=1,
            )
        )
    return Seeded(workspace_id, content_id, account.id, target_id, platform_post_id)


async def snapshots_of(state: AppState, target_id: uuid.UUID) -> list[MetricSnapshot]:
    async with state.session_factory() as session:
        rows = await session.scalars(
            select(MetricSnapshot)
            .where(MetricSnapshot.target_id == target_id)
            .order_by(MetricSnapshot.collected_at)
        )
        return list(rows.all())


async def schedule_of(state: AppState, target_id: uuid.UUID) -> MetricSchedule:
    async with state.session_factory() as session:
        row = await session.get(MetricSchedule, target_id)
    assert row is not None
    return row


def x_metrics(
    impressions: int, likes: int, replies: int, retweets: int, quotes: int = 0
) -> dict[str, Any]:
    return {
        "impression_count": impressions,
        "like_count": likes,
        "reply_count": replies,
        "retweet_count": retweets,
        "quote_count": quotes,
        "bookmark_count": 1,
    }
