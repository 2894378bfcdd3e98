"""Fixtures for publishing: an app and workers whose outbound guard lets the local
receiver (127.0.0.1) through, short back-off, and helpers that drive the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import select
from starlette.applications import Starlette

from app.infra import outbound
from app.models import PostTarget
from app.services.publishing.delivery import Delivery
from app.settings import Settings
from app.state import AppState
from tests.conftest import Servers, make_settings, running_app, stop_worker
from tests.helpers import Account, create_workspace, gql, register
from tests.platforms.fakes import FakePlatforms, serve_fake_platforms
from tests.publishing.receiver import SECRET, Receiver, serve_receiver
from tests.teams import uid
from workers.settings import publish_worker_settings, worker_settings

PUBLISHING = {
    "outbound_allow_private_networks": True,
    "publish_backoff_seconds": 0.2,
    "publish_backoff_max_seconds": 2.0,
    "publish_request_timeout_seconds": 1.0,
    "publish_attempt_timeout_seconds": 3.0,
    "publish_lease_seconds": 10,
    "publish_max_attempts": 3,
    "sweeper_interval_seconds": 1,
}


@pytest.fixture(scope="session")
def pub_settings(servers: Servers) -> Settings:
    return make_settings(servers, **PUBLISHING)


@pytest.fixture(scope="session")
async def pub_app(pub_settings: Settings) -> AsyncIterator[Starlette]:
    async with running_app(pub_settings) as app:
        yield app


@pytest.fixture
async def client(pub_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=pub_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def state(pub_app: Starlette) -> AppState:
    value: AppState = pub_app.state.smartcontent
    return value


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as fake:
        yield fake


@pytest.fixture
async def delivery(state: AppState) -> AsyncIterator[Delivery]:
    """The worker's view, in this process: run attempts directly (no arq)."""
    async with outbound.client(state.settings) as http:
        yield Delivery(
            factory=state.session_factory,
            settings=state.settings,
            http=http,
            box=state.keys.box,
            storage=state.storage,
            events=state.hub,
            enqueuer=None,
        )


@asynccontextmanager
async def arq_worker(settings: Settings) -> AsyncIterator[Worker]:
    """Real arq workers (with their sweepers) in this process and event loop, as
    `smartcontent worker` runs them: the publish queue's (yielded) and the jobs queue's
    (webhook deliveries, mail, first comments, metrics)."""
    workers = [
        Worker(**{**make(settings), "handle_signals": False, "poll_delay": 0.05})
        for make in (publish_worker_settings, worker_settings)
    ]
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    try:
        yield workers[0]
    finally:
        for worker, task in zip(workers, tasks, strict=True):
            await stop_worker(worker, task)


@dataclass
class Team:
    owner: Account
    workspace_id: str


@pytest.fixture
async def team(client: httpx.AsyncClient) -> Team:
    owner = await register(client)
    return Team(owner, await create_workspace(client, owner))


async def call(
    client: httpx.AsyncClient, account: Account, document: str, variables: dict[str, Any]
) -> dict[str, Any]:
    body = await gql(client, document, variables, headers=account.headers)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


CONNECT_WEBHOOK = """
mutation($i: ConnectWebhookAccountInput!) {
  connectWebhookAccount(input: $i) {
    account { id platform status name } errors { field code message }
  }
}
"""


async def connect_webhook(
    client: httpx.AsyncClient, team: Team, url: str, name: str = "Hook", secret: str = SECRET
) -> dict[str, Any]:
    data = await call(
        client,
        team.owner,
        CONNECT_WEBHOOK,
        {"i": {"workspaceId": team.workspace_id, "name": name, "url": url, "secret": secret}},
    )
    payload: dict[str, Any] = data["connectWebhookAccount"]
    return payload


async def approved_content(
    client: httpx.AsyncClient, team: Team, body: str = "Launch day is here.", title: str = "Launch"
) -> str:
    data = await call(
        client,
        team.owner,
        "mutation($i: CreateContentInput!) { createContent(input: $i) {"
        " content { id } errors { code } } }",
        {"i": {"workspaceId": team.workspace_id, "title": title, "body": body}},
    )
    content_id: str = data["createContent"]["content"]["id"]
    for step in ("submitForReview", "approveContent"):
        done = await call(
            client,
            team.owner,
            f"mutation($id: ID!) {{ {step}(id: $id) {{ errors {{ code }} }} }}",
            {"id": content_id},
        )
        assert done[step]["errors"] == [], done
    return content_id


POST_FIELDS = """
id status scheduledAt publishedAt platformPostId platformUrl error timezone
targets { id status attempts error platformPostId platformUrl account { id name status } }
content { id status }
"""
SCHEDULE = (
    "mutation($i: SchedulePostInput!) { schedulePost(input: $i) {"
    f" post {{ {POST_FIELDS} }} errors {{ field code message }} }} }}"
)


async def schedule(
    client: httpx.AsyncClient,
    team: Team,
    content_id: str,
    account_ids: list[str],
    when: datetime | str,
    timezone: str = "UTC",
) -> dict[str, Any]:
    data = await call(
        client,
        team.owner,
        SCHEDULE,
        {
            "i": {
                "contentId": content_id,
                "socialAccountIds": account_ids,
                "scheduledAt": when if isinstance(when, str) else when.isoformat(),
                "timezone": timezone,
            }
        },
    )
    payload: dict[str, Any] = data["schedulePost"]
    return payload


async def targets_of(state: AppState, post_id: str) -> list[PostTarget]:
    async with state.session_factory() as session:
        rows = await session.scalars(
            select(PostTarget).where(PostTarget.post_id == uid(post_id)).order_by(PostTarget.id)
        )
        return list(rows.all())


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float = 20, what: str = "condition"
) -> None:
    """Poll `check` until true (tests wait on conditions, not on sleeps)."""
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what}: not true after {timeout:g} s") from None


# ---- Account connections: the platform fakes and an app pointed at them ----------
PUBLIC = "https://app.example.test"


def fake_platform_settings(fake: FakePlatforms) -> dict[str, object]:
    return {
        "public_url": PUBLIC,
        "x_api_base_url": fake.url,
        "x_authorize_url": f"{fake.url}/i/oauth2/authorize",
        "x_token_url": f"{fake.url}/2/oauth2/token",
        "x_client_id": "x-client",
        "x_client_secret": "x-secret-value",
        "bluesky_pds_url": fake.url,
    }


@pytest.fixture(scope="module")
async def fake_api() -> AsyncIterator[FakePlatforms]:
    async with serve_fake_platforms() as fake:
        yield fake


@pytest.fixture(scope="module")
def connect_settings(servers: Servers, fake_api: FakePlatforms) -> Settings:
    return make_settings(servers, **PUBLISHING, **fake_platform_settings(fake_api))


@pytest.fixture(scope="module")
async def connect_app(connect_settings: Settings) -> AsyncIterator[Starlette]:
    async with running_app(connect_settings) as app:
        yield app


@pytest.fixture
async def web(connect_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=connect_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def app_state(connect_app: Starlette) -> AppState:
    value: AppState = connect_app.state.smartcontent
    return value


@pytest.fixture
async def admin(web: httpx.AsyncClient) -> Team:
    owner = await register(web)
    return Team(owner, await create_workspace(web, owner))
