"""Steps the delivery and recovery tests share: due targets made through the API, the
post as the API shows it, and adapters for platforms unlike the webhook (no idempotency
key; a look-up API)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from app.models import PostTarget
from app.platforms.adapters.webhook import WebhookPublisher
from app.platforms.publishing import Credentials, Post, Published
from app.services.publishing import delivery as engine
from app.services.publishing.delivery import Delivery
from app.state import AppState
from tests.publishing.conftest import (
    POST_FIELDS,
    Team,
    approved_content,
    call,
    connect_webhook,
    schedule,
    targets_of,
)
from tests.publishing.receiver import Receiver
from tests.teams import gid, uid

LATER = timedelta(hours=1)


class NoKeyWebhook(WebhookPublisher):
    """A platform that neither de-duplicates by key nor can be asked."""

    supports_idempotency_key = False


class LookupWebhook(WebhookPublisher):
    """A platform that can be asked for the post an earlier attempt created."""

    supports_idempotency_key = False
    can_look_up = True

    async def find_existing(self, post: Post, credentials: Credentials) -> Published | None:
        response = await self._http.get(
            credentials.extra["url"] + "/posts", params={"idempotency_key": post.idempotency_key}
        )
        if response.status_code == 404:
            return None
        data = response.json()
        return Published(platform_post_id=data["id"], url=data["url"])


async def due_target(
    client: httpx.AsyncClient, state: AppState, team: Team, url: str, accounts: int = 1
) -> tuple[str, list[PostTarget]]:
    """A post scheduled to `accounts` webhook accounts, made due now."""
    ids = [
        (await connect_webhook(client, team, url, f"Hook {i}"))["account"]["id"]
        for i in range(accounts)
    ]
    content_id = await approved_content(client, team)
    post = (await schedule(client, team, content_id, ids, datetime.now(UTC) + LATER))["post"]
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(PostTarget)
            .where(PostTarget.post_id == uid(post["id"]))
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    return post["id"], await targets_of(state, post["id"])


async def post_node(client: httpx.AsyncClient, team: Team, post_id: str) -> dict[str, Any]:
    data = await call(
        client,
        team.owner,
        f"query($id: ID!) {{ node(id: $id) {{ ... on ScheduledPost {{ {POST_FIELDS} }} }} }}",
        {"id": post_id},
    )
    node: dict[str, Any] = data["node"]
    return node


async def run_until(
    delivery: Delivery, target_id: uuid.UUID, attempts: int, want: str, seen: list[str]
) -> bool:
    seen.append(await engine.run(delivery, target_id, attempts))
    return seen[-1] == want


async def make_due(state: AppState, target_id: uuid.UUID) -> None:
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(PostTarget)
            .where(PostTarget.id == target_id)
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def created(receiver: Receiver, key: str) -> bool:
    return receiver.creations[key] == 1


def post_gid(target: PostTarget) -> str:
    return gid("ScheduledPost", target.post_id)


def target_gid(target: PostTarget) -> str:
    return gid("PostTarget", target.id)
