"""First comments: posted as their own step once a target is PUBLISHED.

The step lives on the target's row (`comment_status`, `comment_attempts`,
`comment_platform_id`, `comment_error`) and is driven by one durable job per target
(`publish_first_comment`, id derived from the target), so the jobs machinery gives it a
lease, back-off and the sweeper's recovery when Redis loses the arq job. The job row is
written in the transaction that makes the target PUBLISHED (`queue`, called from
transitions.published); `sweep` writes it for targets published another way
(confirmPostPublished) and closes steps whose job ended without recording an outcome.

Schedule-time checks (platforms without comments, text rules) are in comment_checks.py.
A comment never touches the post: its failure leaves the target PUBLISHED, and nothing
here re-posts. Each attempt is guarded in SQL: PENDING -> PUBLISHING (attempt counted),
then PUBLISHED | PENDING (retry, the job backs off) | FAILED | UNKNOWN. An attempt that
finds the step still PUBLISHING knows an earlier one was lost mid-request (killed worker,
timeout): the platform may have the comment. Only where the platform de-duplicates by our
key (Mastodon's Idempotency-Key) is it sent again; elsewhere it becomes UNKNOWN.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.infra import outbound
from app.infra.outbound import OutboundBlocked
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.logging import get_logger
from app.models import AccountStatus, CommentStatus, Job, JobStatus, PostTarget, SocialAccount
from app.models import TargetStatus as S
from app.models.vocabulary import Platform
from app.platforms import registry
from app.platforms.publishing import (
    OutcomeUnknown,
    PermanentError,
    Published,
    Publisher,
    RetryableError,
)
from app.security.crypto import SecretBox
from app.security.keys import load_keys
from app.services.publishing import accounts, events
from app.services.publishing.events import EventPublisher
from app.settings import Settings

if TYPE_CHECKING:  # at run time transitions imports these modules
    from app.services.publishing.transitions import Target as AttemptTarget

log = get_logger(__name__)

COMMENT_JOB = "publish_first_comment"
MAX_ERROR = 2000
_JOB_NAMESPACE = uuid.UUID("5c0c0aae-7f1e-4c1b-9d8e-1f1c0ae7c011")
WAITING = (CommentStatus.PENDING.value, CommentStatus.PUBLISHING.value)
FINAL_JOB = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
NO_POST_ID = "The post's id on the platform is not known, so the comment has nothing to go under."
LOST = (
    "An earlier attempt stopped while sending the comment; it may be on the platform, which "
    "cannot be asked, so it is not sent again on its own. Check the post."
)


def job_id_for(target_id: uuid.UUID) -> uuid.UUID:
    """One comment job per target, whoever writes it (the publish hook, the sweep)."""
    return uuid.uuid5(_JOB_NAMESPACE, str(target_id))


def initial_status(first_comment: str | None) -> str:
    return (CommentStatus.PENDING if first_comment else CommentStatus.NONE).value


async def queue(session: AsyncSession, target: PostTarget) -> None:
    """In the transaction that made `target` PUBLISHED: its comment job, if it has a
    comment waiting (no SQL for targets without one). A job already there is kept: this
    must never fail the transaction that records a post as published."""
    if target.comment_status != CommentStatus.PENDING.value:
        return
    await session.execute(
        insert(Job)
        .values(
            id=job_id_for(target.id),
            workspace_id=None,
            kind=COMMENT_JOB,
            status=JobStatus.QUEUED.value,
            payload={"target_id": str(target.id)},
            max_attempts=max(target.max_attempts, 1),
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def enqueue(
    enqueuer: jobs.Enqueuer | None, target: PostTarget | AttemptTarget | None
) -> None:
    """After commit: hand the comment job to arq (a lost enqueue is the sweeper's)."""
    if (
        target is not None
        and target.comment_status == CommentStatus.PENDING.value
        and target.status == S.PUBLISHED.value
    ):
        await jobs.enqueue(enqueuer, job_id_for(target.id), 0)


# ---- one attempt ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    target: PostTarget
    in_doubt: bool  # an earlier attempt was lost while it may have sent the comment
    platform: Platform
    sealed: str | None
    account_status: str


async def _claim(
    factory: async_sessionmaker[AsyncSession], target_id: uuid.UUID
) -> _Claimed | None:
    async with factory() as session, session.begin():
        row = (
            await session.execute(
                select(PostTarget.comment_status, SocialAccount.credentials, SocialAccount.status)
                .join(SocialAccount, SocialAccount.id == PostTarget.social_account_id)
                .where(
                    PostTarget.id == target_id,
                    PostTarget.status == S.PUBLISHED.value,
                    PostTarget.comment_status.in_(WAITING),
                )
                .with_for_update(of=PostTarget)
            )
        ).first()
        if row is None:
            return None
        target = await _set(
            session,
            target_id,
            row.comment_status,
            {
                "comment_status": CommentStatus.PUBLISHING.value,
                "comment_attempts": PostTarget.comment_attempts + 1,
            },
        )
        assert target is not None  # the row is locked
        return _Claimed(
            target=target,
            in_doubt=row.comment_status == CommentStatus.PUBLISHING.value,
            platform=Platform(target.platform),
            sealed=row.credentials,
            account_status=row.status,
        )


async def _set(
    session: AsyncSession, target_id: uuid.UUID, leaving: str, values: dict[str, Any]
) -> PostTarget | None:
    """One guarded change of the comment step: only from the state it leaves."""
    stmt = (
        update(PostTarget)
        .where(PostTarget.id == target_id, PostTarget.comment_status == leaving)
        .values(event_seq=PostTarget.event_seq + 1, **values)
        .returning(PostTarget)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.scalars(stmt)).one_or_none()


def _clip(message: str) -> str:
    return message[:MAX_ERROR]


class CommentRetry(Exception):
    """Retryable: the job runner backs off and runs the next attempt."""


@dataclass(frozen=True)
class Outcome:
    status: CommentStatus
    detail: str | None = None


async def _end(
    step: _Step,
    status: CommentStatus,
    detail: str | None,
    platform_id: str | None = None,
) -> Outcome:
    """Record this attempt's outcome (it holds the step: PUBLISHING); PENDING then raises
    `CommentRetry` so the job backs off."""
    values: dict[str, Any] = {"comment_status": status.value}
    if status is CommentStatus.PUBLISHED:
        values.update(comment_platform_id=platform_id, comment_error=None)
    else:
        values["comment_error"] = _clip(detail or "")
    async with step.factory() as session, session.begin():
        row = await _set(session, step.target_id, CommentStatus.PUBLISHING.value, values)
    await events.emit(step.events, [row] if row is not None else [])
    if status is CommentStatus.PENDING:
        raise CommentRetry(detail)
    return Outcome(status, platform_id or detail)


@dataclass(frozen=True)
class _Step:
    factory: async_sessionmaker[AsyncSession]
    target_id: uuid.UUID
    events: EventPublisher | None


async def attempt(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    box: SecretBox,
    http: httpx.AsyncClient,
    target_id: uuid.UUID,
    *,
    last: bool,
    publisher_events: EventPublisher | None = None,
) -> Outcome | None:
    """One attempt of a target's first comment. None: nothing to do (no comment waiting,
    the post not PUBLISHED). Raises `CommentRetry` after recording PENDING when a retry may
    help and this is not the `last` attempt. A cancellation (shutdown, the job's time
    limit) mid-request leaves the step PUBLISHING: the next attempt knows it is in doubt."""
    claimed = await _claim(factory, target_id)
    if claimed is None:
        return None
    step = _Step(factory, target_id, publisher_events)
    await events.emit(publisher_events, [claimed.target])
    target, name = claimed.target, claimed.platform.value
    failed, unknown = CommentStatus.FAILED, CommentStatus.UNKNOWN
    try:
        publisher = registry.publisher_for(claimed.platform, http, settings)
    except LookupError:
        return await _end(step, failed, f"{name} takes no comments.")
    if not publisher.supports_first_comment:
        return await _end(step, failed, f"{name} takes no comments.")
    if claimed.in_doubt and not publisher.supports_idempotency_key:
        return await _end(step, unknown, LOST)
    if claimed.account_status != AccountStatus.CONNECTED.value:
        return await _end(step, failed, "The account is no longer connected.")
    if not target.platform_post_id:  # confirmed by hand without one: nothing to reply to
        return await _end(step, failed, NO_POST_ID)
    published = Published(
        target.platform_post_id or "", target.platform_url, tuple(target.part_ids or ())
    )
    retry = failed if last else CommentStatus.PENDING
    try:
        result = await _send(publisher, published, target, accounts.unseal(box, claimed.sealed))
    except _Unknown as exc:  # sent again only where the platform de-duplicates by our key
        again = publisher.supports_idempotency_key and not last
        return await _end(step, CommentStatus.PENDING if again else unknown, str(exc))
    except RetryableError as exc:
        tried = f"Gave up after {target.comment_attempts} attempts: " if last else ""
        return await _end(step, retry, tried + exc.message)
    except PermanentError as exc:  # AuthError included: the post is out, only this failed
        return await _end(step, failed, exc.message)
    platform_id = result.platform_post_id or None
    return await _end(step, CommentStatus.PUBLISHED, None, platform_id)


class _Unknown(Exception):
    pass


async def _send(
    publisher: Publisher, published: Published, target: PostTarget, credentials: Any
) -> Published:
    assert target.first_comment is not None
    try:
        return await publisher.comment(published, target.first_comment, credentials)
    except (RetryableError, PermanentError):
        raise
    except OutcomeUnknown as exc:
        raise _Unknown(f"No answer to the comment: {exc.message}") from None
    except OutboundBlocked as exc:
        raise PermanentError(exc.message) from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise RetryableError(f"Cannot reach the platform: {type(exc).__name__}.") from None
    except Exception as exc:
        log.warning("comment_adapter_error", target_id=str(target.id), error=repr(exc))
        raise _Unknown(f"Unexpected error while sending ({type(exc).__name__}).") from None


async def run_comment_job(ctx: JobContext) -> dict[str, Any]:
    """The job handler: one attempt with a client under the outbound policy."""
    settings = ctx.settings
    if settings is None:
        raise PermanentJobError("the comment job needs the worker's settings")
    target_id = uuid.UUID(str(ctx.payload["target_id"]))
    async with outbound.client(settings) as http:
        outcome = await attempt(
            ctx.factory,
            settings,
            load_keys(settings).box,
            http,
            target_id,
            last=ctx.job.attempts >= ctx.job.max_attempts,
            publisher_events=ctx.publisher,
        )
    if outcome is None:
        return {"comment": "nothing to do"}
    return {"comment": outcome.status.value}


JOB_HANDLERS: dict[str, Handler] = {COMMENT_JOB: run_comment_job}


# ---- the sweep --------------------------------------------------------------------------


async def sweep(session: AsyncSession, batch: int = 200) -> list[uuid.UUID]:
    """In the sweeper's transaction: comment steps no job will finish. A PUBLISHED target
    with a comment waiting and no job (published by hand) gets one; one whose job ended
    without an outcome is closed (PUBLISHING: UNKNOWN, it may be out; PENDING: FAILED).
    Returns the jobs made, to enqueue after commit."""
    rows = (
        await session.execute(
            select(PostTarget.id, PostTarget.comment_status, PostTarget.max_attempts)
            .where(
                PostTarget.status == S.PUBLISHED.value,
                PostTarget.comment_status.in_(WAITING),
            )
            .order_by(PostTarget.published_at)
            .limit(batch)
        )
    ).all()
    if not rows:
        return []
    by_job = {job_id_for(r.id): r for r in rows}
    found = {
        job_id: status
        for job_id, status in (
            await session.execute(select(Job.id, Job.status).where(Job.id.in_(by_job)))
        ).all()
    }
    created: list[uuid.UUID] = []
    for job_id, row in by_job.items():
        status = found.get(job_id)
        if status is None:
            job = jobs.new_job(
                session,
                COMMENT_JOB,
                {"target_id": str(row.id)},
                max(row.max_attempts, 1),
                workspace_id=None,
            )
            job.id = job_id
            created.append(job_id)
        elif status in FINAL_JOB:
            lost = row.comment_status == CommentStatus.PUBLISHING.value
            await _set(
                session,
                row.id,
                row.comment_status,
                {
                    "comment_status": (
                        CommentStatus.UNKNOWN if lost else CommentStatus.FAILED
                    ).value,
                    "comment_error": func.coalesce(
                        PostTarget.comment_error, LOST if lost else "The comment job ended."
                    ),
                },
            )
    if created:
        log.info("comment_jobs_made", count=len(created))
    return created
