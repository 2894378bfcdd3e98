"""Fixtures for engagement analytics: a workspace with content, a published post target
and API keys of each role, and a second workspace with content of its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from app.models import (
    ApiKey,
    Content,
    PostTarget,
    ScheduledPost,
    SocialAccount,
    Workspace,
)
from app.security import tokens
from app.state import AppState

NIL = uuid.UUID(int=0)


@dataclass
class Tenant:
    workspace_id: uuid.UUID
    content_ids: list[uuid.UUID] = field(default_factory=list)
    target_id: uuid.UUID = NIL  # a post target (on X) of content_ids[0]
    keys: dict[str, str] = field(default_factory=dict)  # role -> bearer secret

    def headers(self, role: str = "MEMBER", ndjson: bool = False) -> dict[str, str]:
        kind = "application/x-ndjson" if ndjson else "application/json"
        return {"Authorization": f"Bearer {self.keys[role]}", "Content-Type": kind}


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.smartcontent
    return state


async def make_tenant(app: Starlette, contents: int = 2) -> Tenant:
    state = state_of(app)
    tenant = Tenant(workspace_id=uuid.uuid4())
    async with state.session_factory() as session, session.begin():
        session.add(Workspace(id=tenant.workspace_id, name="W", brand_voice={}, plan="pro"))
        await session.flush()
        for i in range(contents):
            content_id = uuid.uuid4()
            tenant.content_ids.append(content_id)
            session.add(
                Content(
                    id=content_id,
                    workspace_id=tenant.workspace_id,
                    title=f"Item {i}",
                    body="Body",
                    content_type="SOCIAL_POST",
                    format="PLAIN",
                    status="PUBLISHED",
                    tags=[],
                    version=1,
                )
            )
        account_id, post_id, tenant.target_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        session.add(
            SocialAccount(
                id=account_id, workspace_id=tenant.workspace_id, platform="X", name="X acct"
            )
        )
        await session.flush()
        when = datetime.now(UTC) - timedelta(days=1)
        session.add(
            ScheduledPost(
                id=post_id,
                workspace_id=tenant.workspace_id,
                content_id=tenant.content_ids[0],
                scheduled_at=when,
                timezone="UTC",
            )
        )
        await session.flush()
        session.add(
            PostTarget(
                id=tenant.target_id,
                post_id=post_id,
                workspace_id=tenant.workspace_id,
                social_account_id=account_id,
                platform="X",
                status="PUBLISHED",
                scheduled_at=when,
                timezone="UTC",
                next_attempt_at=when,
                idempotency_key=f"sc-{tenant.target_id.hex}",
            )
        )
        for role in ("ADMIN", "MEMBER", "VIEWER"):
            prefix = uuid.uuid4().hex[:10]
            secret = f"sk_{prefix}_{uuid.uuid4().hex}"
            session.add(
                ApiKey(
                    id=uuid.uuid4(),
                    workspace_id=tenant.workspace_id,
                    name=role,
                    role=role,
                    prefix=prefix,
                    secret_hash=tokens.token_hash(secret),
                )
            )
            tenant.keys[role] = secret
    return tenant


@pytest.fixture
async def tenant(app: Starlette) -> Tenant:
    return await make_tenant(app)


@pytest.fixture
async def other(app: Starlette) -> Tenant:
    return await make_tenant(app, contents=1)


def event(content_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "type": "VIEW",
        "occurredAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    }
    if content_id is not None:
        body["contentId"] = str(content_id)
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(e) for e in events) + b"\n"


async def post_events(
    client: httpx.AsyncClient,
    tenant: Tenant,
    events: list[dict[str, Any]] | bytes,
    *,
    role: str = "MEMBER",
    as_ndjson: bool = False,
) -> httpx.Response:
    if isinstance(events, bytes):
        body = events
    else:
        body = ndjson(events) if as_ndjson else orjson.dumps(events)
    return await client.post(
        "/ingest/events", content=body, headers=tenant.headers(role, ndjson=as_ndjson)
    )


async def raw_aggregates(app: Starlette) -> dict[tuple[Any, ...], tuple[int, Any]]:
    """GROUP BY over the raw events, keyed like the hourly rollup."""
    async with state_of(app).session_factory() as session:
        rows = await session.execute(
            text(
                "SELECT workspace_id, date_trunc('hour', occurred_at, 'UTC'), content_id, "
                "coalesce(target_id, '00000000-0000-0000-0000-000000000000'::uuid), "
                "event_type, coalesce(variant, ''), count(*), coalesce(sum(value), 0) "
                "FROM engagement_events GROUP BY 1, 2, 3, 4, 5, 6"
            )
        )
        return {tuple(r[:6]): (r[6], r[7]) for r in rows}


async def rollup(app: Starlette, table: str) -> dict[tuple[Any, ...], tuple[int, Any]]:
    async with state_of(app).session_factory() as session:
        rows = await session.execute(
            text(
                "SELECT workspace_id, bucket_start, content_id, target_id, event_type, "
                f"variant, events, value_sum FROM {table}"
            )
        )
        return {tuple(r[:6]): (r[6], r[7]) for r in rows}


async def count_raw(app: Starlette) -> int:
    async with state_of(app).session_factory() as session:
        return int(
            (await session.execute(text("SELECT count(*) FROM engagement_events"))).scalar_one()
        )
