"""The `ping` job: a round trip API -> Postgres -> arq worker -> Redis pub/sub -> subscriber."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext
from app.models import Job
from app.permissions import Action
from app.services.audit import trail as audit

PING_KIND = "ping"
MAX_MESSAGE_LENGTH = 500
MAX_DELAY_MS = 10_000


async def start_ping(
    factory: async_sessionmaker[AsyncSession],
    enqueuer: jobs.Enqueuer | None,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    message: str,
    delay_ms: int,
    max_attempts: int,
) -> Job:
    principal.require(workspace_id, Action.JOB_RUN)
    errors = []
    if len(message) > MAX_MESSAGE_LENGTH:
        errors.append(
            FieldError(
                "message",
                UserErrorCode.TOO_LONG,
                f"message must be at most {MAX_MESSAGE_LENGTH} characters",
            )
        )
    if not 0 <= delay_ms <= MAX_DELAY_MS:
        errors.append(
            FieldError(
                "delayMs",
                UserErrorCode.OUT_OF_RANGE,
                f"delayMs must be between 0 and {MAX_DELAY_MS}",
            )
        )
    if errors:
        raise ValidationFailed(errors)
    async with factory() as session, session.begin():
        job = jobs.new_job(
            session,
            PING_KIND,
            {"message": message, "delay_ms": delay_ms},
            max_attempts,
            workspace_id=workspace_id,
        )
        audit.record(
            session,
            principal,
            "ping",
            workspace_id=workspace_id,
            target_type="Job",
            target_id=job.id,
        )
    # Enqueue only after commit: the worker must find the row.
    await jobs.enqueue(enqueuer, job.id, job.attempts)
    return job


async def run_ping(ctx: JobContext) -> dict[str, Any]:
    await ctx.progress(0.5, "pinging")
    await asyncio.sleep(int(ctx.payload.get("delay_ms", 0)) / 1000)
    return {
        "pong": ctx.payload.get("message", ""),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


JOB_HANDLERS: dict[str, Handler] = {PING_KIND: run_ping}
