"""Many due posts at once, written straight to Postgres as schedulePost writes them (one
post and one PENDING target each) and handed to arq the way the service does: for the
fault tests and the bench, where 200 or 10,000 API calls would measure the API instead."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs.store import Enqueuer
from app.models import PostTarget, ScheduledPost
from app.services.publishing import delivery


async def create_due(
    factory: async_sessionmaker[AsyncSession],
    *,
    workspace_id: uuid.UUID,
    account_id: uuid.UUID,
    content_id: uuid.UUID,
    count: int,
    due: datetime,
    max_attempts: int = 5,
) -> list[uuid.UUID]:
    """`count` posts due at `due`; returns their target ids."""
    posts = [uuid.uuid4() for _ in range(count)]
    targets = [uuid.uuid4() for _ in range(count)]
    async with factory() as session, session.begin():
        for start in range(0, count, 2000):
            chunk = range(start, min(count, start + 2000))
            await session.execute(
                insert(ScheduledPost),
                [
                    {
                        "id": posts[i],
                        "workspace_id": workspace_id,
                        "content_id": content_id,
                        "scheduled_at": due,
                        "timezone": "UTC",
                    }
                    for i in chunk
                ],
            )
            await session.execute(
                insert(PostTarget),
                [
                    {
                        "id": targets[i],
                        "post_id": posts[i],
                        "workspace_id": workspace_id,
                        "social_account_id": account_id,
                        "platform": "WEBHOOK",
                        "status": "PENDING",
                        "scheduled_at": due,
                        "timezone": "UTC",
                        "next_attempt_at": due,
                        "max_attempts": max_attempts,
                        "idempotency_key": f"sc-{targets[i].hex}",
                    }
                    for i in chunk
                ],
            )
    return targets


async def enqueue_all(pool: Enqueuer, targets: list[uuid.UUID], due: datetime) -> None:
    for target_id in targets:
        assert await delivery.enqueue(pool, target_id, 0, due=due)
