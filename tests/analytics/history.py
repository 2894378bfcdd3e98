"""Published history for analytics tests: targets with their latest snapshot, written in
one transaction (an earlier snapshot without impressions each, which must not count)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.models import Content, MetricSnapshot, PostTarget, ScheduledPost
from app.models.vocabulary import Platform
from app.platforms.publishing import Credentials
from app.services.publishing.accounts import store_account
from app.state import AppState


@dataclass
class Published:
    at: datetime
    engaged: int  # likes (comments and shares 0)
    impressions: int = 1000
    platform: Platform = Platform.X
    timezone: str = "Europe/Berlin"
    metrics: dict[str, Any] = field(default_factory=dict)


async def seed_published(
    state: AppState, workspace_id: uuid.UUID, posts: Iterable[Published]
) -> None:
    async with state.session_factory() as session, session.begin():
        accounts: dict[Platform, uuid.UUID] = {}
        for i, p in enumerate(posts):
            if p.platform not in accounts:
                account = await store_account(
                    session,
                    state.keys.box,
                    workspace_id=workspace_id,
                    platform=p.platform,
                    name=p.platform.value,
                    credentials=Credentials(access_token="t", external_id=f"ext-{uuid.uuid4()}"),
                    created_by_id=None,
                )
                accounts[p.platform] = account.id
            content = Content(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                title=f"Post {i}",
                body="text",
                content_type="SOCIAL_POST",
                format="PLAIN",
                status="PUBLISHED",
                text_metrics=p.metrics or None,
            )
            post = ScheduledPost(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                content_id=content.id,
                scheduled_at=p.at,
                timezone=p.timezone,
            )
            target = PostTarget(
                id=uuid.uuid4(),
                post_id=post.id,
                workspace_id=workspace_id,
                social_account_id=accounts[p.platform],
                platform=p.platform.value,
                status="PUBLISHED",
                scheduled_at=p.at,
                timezone=p.timezone,
                next_attempt_at=p.at,
                idempotency_key=f"sc-{uuid.uuid4().hex}",
                platform_post_id=str(i),
                published_at=p.at,
                attempts=1,
            )
            session.add_all([content, post])
            await session.flush()
            session.add(target)
            await session.flush()
            for step, (shown, likes) in enumerate([(None, 1), (p.impressions, p.engaged)]):
                session.add(
                    MetricSnapshot(
                        workspace_id=workspace_id,
                        content_id=content.id,
                        target_id=target.id,
                        platform=p.platform.value,
                        step=step,
                        collected_at=p.at + timedelta(hours=step + 1),
                        impressions=shown,
                        likes=likes,
                        comments=0,
                        shares=0,
                        raw={},
                    )
                )
