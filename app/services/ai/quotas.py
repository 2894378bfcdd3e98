"""Per-workspace monthly AI token allowances by plan tier.

Checked when a generation is requested, before any job exists or any provider is called:
a workspace that used its allowance this calendar month (UTC) gets a QUOTA_EXCEEDED user
error. Usage is what providers reported (or the estimate where they report none), summed
over the month's generation records; a job already queued may still finish past the line.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import Generation, Workspace
from app.settings import Settings


@dataclass(frozen=True)
class TokenUsage:
    used: int
    allowance: int | None  # None: unlimited

    @property
    def exceeded(self) -> bool:
        return self.allowance is not None and self.used >= self.allowance


def allowance(settings: Settings, plan: str) -> int | None:
    tokens = {
        "pro": settings.ai_monthly_tokens_pro,
        "enterprise": settings.ai_monthly_tokens_enterprise,
    }.get(plan, settings.ai_monthly_tokens_free)  # an unknown plan counts as free
    return tokens or None


async def usage(session: AsyncSession, settings: Settings, workspace_id: uuid.UUID) -> TokenUsage:
    plan = await session.scalar(select(Workspace.plan).where(Workspace.id == workspace_id))
    used = await session.scalar(
        select(
            func.coalesce(func.sum(Generation.input_tokens + Generation.output_tokens), 0)
        ).where(
            Generation.workspace_id == workspace_id,
            Generation.created_at >= func.date_trunc("month", func.now(), "UTC"),
        )
    )
    return TokenUsage(used=int(used or 0), allowance=allowance(settings, plan or "free"))


async def check(session: AsyncSession, settings: Settings, workspace_id: uuid.UUID) -> None:
    current = await usage(session, settings, workspace_id)
    if current.exceeded:
        raise ValidationFailed(
            [
                FieldError(
                    None,
                    UserErrorCode.QUOTA_EXCEEDED,
                    f"This workspace used {current.used:,} of its {current.allowance:,} AI "
                    "tokens this month; the allowance renews on the 1st (UTC).",
                )
            ]
        )
