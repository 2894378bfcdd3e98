"""Planted workspaces for the recommendations tests: items with chosen embeddings, tags and
status, each published post with one snapshot (impressions, likes), one account per
platform; and how the tests ask and read the answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from app.models import Content, MetricSnapshot, PostTarget, ScheduledPost
from app.models.vocabulary import Platform
from app.platforms.publishing import Credentials
from app.services.analytics.recommend.scores import PRIOR_IMPRESSIONS
from app.services.publishing.accounts import store_account
from app.settings import embedding_dimensions
from app.state import AppState
from tests.helpers import Account, create_workspace, gql, register

DIM = embedding_dimensions()
NOW = datetime.now(UTC)

QUERY = """
query($ws: ID!, $kind: RecommendationKind!, $first: Int!, $c: ID) {
  recommendations(workspaceId: $ws, kind: $kind, first: $first, contentId: $c) {
    kind score explanation platforms
    signals { name value }
    contents { id title }
    topic { label terms tags titles size }
  }
}
"""


def direction(*weights: tuple[int, float], noise: float = 0.0, seed: int = 0) -> list[float]:
    """A unit vector along the given axes (axis, weight), with optional noise."""
    v = np.zeros(DIM)
    for axis, weight in weights:
        v[axis] = weight
    if noise:
        v += np.random.default_rng(seed).normal(0, noise, DIM)
    return list(v / np.linalg.norm(v))


@dataclass
class Item:
    title: str
    vector: list[float] | None = None
    tags: tuple[str, ...] = ()
    status: str = "PUBLISHED"
    body: str = "text"
    # (platform, impressions, engaged, days ago)
    posts: list[tuple[Platform, int, int, int]] = field(default_factory=list)


async def seed(state: AppState, workspace_id: uuid.UUID, items: list[Item]) -> list[uuid.UUID]:
    ids = []
    async with state.session_factory() as session, session.begin():
        accounts: dict[Platform, uuid.UUID] = {}
        for item in items:
            for platform, *_ in item.posts:
                if platform not in accounts:
                    account = await store_account(
                        session,
                        state.keys.box,
                        workspace_id=workspace_id,
                        platform=platform,
                        name=platform.value,
                        credentials=Credentials(access_token="t", external_id=uuid.uuid4().hex),
                        created_by_id=None,
                    )
                    accounts[platform] = account.id
        for item in items:
            content = Content(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                title=item.title,
                body=item.body,
                content_type="SOCIAL_POST",
                format="PLAIN",
                status=item.status,
                tags=list(item.tags),
                embedding=item.vector,
                embedded_version=1 if item.vector is not None else None,
            )
            session.add(content)
            await session.flush()
            ids.append(content.id)
            for platform, impressions, engaged, days in item.posts:
                at = NOW - timedelta(days=days)
                post = ScheduledPost(
                    id=uuid.uuid4(),
                    workspace_id=workspace_id,
                    content_id=content.id,
                    scheduled_at=at,
                    timezone="UTC",
                )
                session.add(post)
                await session.flush()
                target = PostTarget(
                    id=uuid.uuid4(),
                    post_id=post.id,
                    workspace_id=workspace_id,
                    social_account_id=accounts[platform],
                    platform=platform.value,
                    status="PUBLISHED",
                    scheduled_at=at,
                    timezone="UTC",
                    next_attempt_at=at,
                    idempotency_key=f"sc-{uuid.uuid4().hex}",
                    platform_post_id=uuid.uuid4().hex,
                    published_at=at,
                    attempts=1,
                )
                session.add(target)
                await session.flush()
                session.add(
                    MetricSnapshot(
                        workspace_id=workspace_id,
                        content_id=content.id,
                        target_id=target.id,
                        platform=platform.value,
                        step=0,
                        collected_at=at + timedelta(hours=1),
                        impressions=impressions,
                        likes=engaged,
                        comments=0,
                        shares=0,
                        raw={},
                    )
                )
    return ids


async def ask(
    client: httpx.AsyncClient,
    owner: Account,
    ws: str,
    kind: str,
    first: int = 10,
    content_id: str | None = None,
) -> list[dict[str, Any]]:
    body = await gql(
        client,
        QUERY,
        {"ws": ws, "kind": kind, "first": first, "c": content_id},
        headers=owner.headers,
    )
    assert "errors" not in body, body
    found: list[dict[str, Any]] = body["data"]["recommendations"]
    return found


def signal(rec: dict[str, Any], name: str) -> float | None:
    values = [s["value"] for s in rec["signals"] if s["name"] == name]
    return values[0] if values else None


def shrunk(engaged: int, impressions: int, pooled: float) -> float:
    return (engaged + PRIOR_IMPRESSIONS * pooled) / (impressions + PRIOR_IMPRESSIONS)


async def workspace(client: httpx.AsyncClient) -> tuple[Account, str]:
    owner = await register(client)
    return owner, await create_workspace(client, owner)
