"""Delivery: one attempt to publish one target, and handing targets to arq.

The arq job `publish_target(target_id, attempts)` is only a trigger, deferred to the due
time with an id derived from the target; Postgres decides (app/services/publishing/
transitions.py). One attempt:

1. claims the target (PENDING -> PUBLISHING, guarded; a duplicate job does nothing);
2. re-reads its text, media and account, checks the platform's rules again;
3. if an earlier attempt may have reached the platform (`in_doubt`): asks the platform
   (`find_existing`) when it can; else relies on the platform's idempotency key when it
   has one; else parks the target as UNKNOWN rather than post a second time;
4. publishes, and records the outcome: PUBLISHED (content -> PUBLISHED); a retryable
   failure -> PENDING after exponential back-off (at least the platform's retry-after) or
   FAILED once out of attempts; a permanent one -> FAILED with the platform's message
   (an auth failure also marks the account NEEDS_RECONNECT); no answer -> as in 3.

Nothing here touches another target: each has its own row, attempts and error.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.infra.outbound import OutboundBlocked
from app.infra.queue import PUBLISH_QUEUE, PUBLISH_WAKE_CHANNEL
from app.infra.storage import Storage
from app.jobs.store import Enqueuer
from app.logging import get_logger
from app.platforms import registry
from app.platforms.publishing import (
    AuthError,
    OutcomeUnknown,
    PermanentError,
    Published,
    Publisher,
    RetryableError,
)
from app.security.crypto import SecretBox
from app.services.publishing import (
    account_events,
    comments,
    compose,
    events,
    recurrence,
    transitions,
)
from app.services.publishing.accounts import unseal
from app.services.publishing.events import EventPublisher
from app.settings import Settings

log = get_logger(__name__)

T = TypeVar("T")
PUBLISH_FUNCTION = "publish_target"
MAX_ERROR = 2000


def arq_job_id(target_id: uuid.UUID, attempts: int, generation: int = 0) -> str:
    """One arq job per (target, attempt about to start, enqueue generation)."""
    return f"publish:{target_id}:{attempts}:g{generation}"


async def enqueue(
    pool: Enqueuer | None,
    target_id: uuid.UUID,
    attempts: int,
    *,
    generation: int = 0,
    due: datetime | None = None,
) -> bool:
    """Hand a committed target to arq, deferred to `due`. A failure is logged, not raised:
    the sweeper finds the target in Postgres and enqueues it."""
    if pool is None:
        return False
    defer = due if due is not None and due > datetime.now(UTC) else None
    try:
        await pool.enqueue_job(
            PUBLISH_FUNCTION,
            str(target_id),
            attempts,
            _job_id=arq_job_id(target_id, attempts, generation),
            _defer_until=defer,
            _queue_name=PUBLISH_QUEUE,
        )
    except Exception as exc:
        log.warning("publish_enqueue_failed", target_id=str(target_id), error=repr(exc))
        return False
    if defer is None:
        await _wake(pool)
    return True


async def _wake(pool: Enqueuer) -> None:
    """Due now: idle publish workers look at their queue at once, not at their next poll.
    Best effort, like the jobs' wake-up."""
    publish = getattr(pool, "publish", None)  # Redis clients have it; test doubles may not
    if publish is None:
        return
    try:
        await publish(PUBLISH_WAKE_CHANNEL, "1")
    except Exception as exc:
        log.debug("publish_wake_failed", error=repr(exc))


@dataclass
class Delivery:
    """What an attempt needs: the worker's connections and settings."""

    factory: async_sessionmaker[AsyncSession]
    settings: Settings
    http: httpx.AsyncClient
    box: SecretBox
    storage: Storage | None
    events: EventPublisher | None
    enqueuer: Enqueuer | None


def backoff_seconds(settings: Settings, attempt: int, retry_after: float | None) -> float:
    """Exponential from PUBLISH_BACKOFF_SECONDS, capped; never sooner than retry-after."""
    delay = min(
        settings.publish_backoff_seconds * 2 ** max(0, attempt - 1),
        settings.publish_backoff_max_seconds,
    )
    return float(max(delay, retry_after or 0.0))


@dataclass
class _Attempt:
    target: transitions.Target
    # What it sends, read by the claim's own statement; a string says why it cannot be sent.
    loaded: compose.Loaded | str
    sent: bool = False  # a request that may create the post has left
    publisher: Publisher | None = field(default=None, repr=False)


class _Unknown(Exception):
    """The outcome of a request that may have created the post is not known."""


async def run(delivery: Delivery, target_id: uuid.UUID, expected_attempts: int) -> str:
    """One attempt of `target_id` if the row still has `expected_attempts` started (the arq
    job's view). Returns what happened, for logs and tests."""
    settings = delivery.settings
    attempt = await _claim(delivery, target_id, expected_attempts)
    if attempt is None:
        return "skipped"
    target = attempt.target
    await events.emit(delivery.events, [target])
    try:
        async with asyncio.timeout(settings.publish_attempt_timeout_seconds):
            result = await _deliver(delivery, attempt)
    except asyncio.CancelledError:
        row = await asyncio.shield(
            transitions.release(delivery.factory, target.id, target.attempts, sent=attempt.sent)
        )
        await asyncio.shield(events.emit(delivery.events, [row] if row else []))
        raise
    except TimeoutError:
        limit = f"{settings.publish_attempt_timeout_seconds:g} s"
        if not attempt.sent:
            return await _record_retryable(delivery, attempt, f"Timed out after {limit}.", None)
        message = f"No answer within {limit}; the platform may have the post."
        return await _record_unknown(delivery, attempt, message)
    except _Unknown as exc:
        return await _record_unknown(delivery, attempt, str(exc))
    except AuthError as exc:
        row = await transitions.failed(
            delivery.factory,
            target.id,
            target.attempts,
            _clip(exc.message),
            reconnect_account=target.social_account_id,
        )
        await account_events.announce_account_of(delivery.events, target)
        return await _done(delivery, row, "failed")
    except PermanentError as exc:
        row = await transitions.failed(
            delivery.factory, target.id, target.attempts, _clip(exc.message)
        )
        return await _done(delivery, row, "failed")
    except RetryableError as exc:
        return await _record_retryable(delivery, attempt, exc.message, exc.retry_after)
    loaded = attempt.loaded
    row = await transitions.published(
        delivery.factory,
        target,
        target.attempts,
        result,
        content_scheduled=isinstance(loaded, compose.Loaded) and loaded.content_scheduled,
        # Unknown without a load (the target is published anyway): take the careful path.
        followups=not isinstance(loaded, compose.Loaded) or loaded.followups,
    )
    return await _done(delivery, row, "published")


def _clip(message: str) -> str:
    return message[:MAX_ERROR]


async def _done(delivery: Delivery, row: transitions.Target | None, outcome: str) -> str:
    if row is None:
        return "lost-lease"
    await events.emit(delivery.events, [row])
    await comments.enqueue(delivery.enqueuer, row)
    await recurrence.enqueue_next(delivery.factory, row, partial(enqueue, delivery.enqueuer))
    return outcome


async def _record_retryable(
    delivery: Delivery,
    attempt: _Attempt,
    message: str,
    retry_after: float | None,
    *,
    in_doubt: bool = False,
) -> str:
    target = attempt.target
    if target.attempts >= target.max_attempts:
        final = f"Gave up after {target.attempts} attempts: {message}"
        if in_doubt or target.in_doubt:
            row = await transitions.unknown(
                delivery.factory, target.id, target.attempts, _clip(final)
            )
            return await _done(delivery, row, "unknown")
        row = await transitions.failed(delivery.factory, target.id, target.attempts, _clip(final))
        return await _done(delivery, row, "failed")
    delay = backoff_seconds(delivery.settings, target.attempts, retry_after)
    row = await transitions.retry_later(
        delivery.factory,
        target.id,
        target.attempts,
        _clip(message),
        delay_seconds=delay,
        in_doubt=in_doubt,
    )
    if row is None:
        return "lost-lease"
    await events.emit(delivery.events, [row])
    await enqueue(
        delivery.enqueuer,
        row.id,
        row.attempts,
        generation=row.enqueue_generation,
        due=row.next_attempt_at,
    )
    return "retrying"


async def _record_unknown(delivery: Delivery, attempt: _Attempt, message: str) -> str:
    """The request may have created the post. Retry only where a retry cannot post twice
    (the platform can be asked, or de-duplicates by our key); else a person decides."""
    publisher = attempt.publisher
    if publisher is not None and (publisher.can_look_up or publisher.supports_idempotency_key):
        return await _record_retryable(delivery, attempt, message, None, in_doubt=True)
    target = attempt.target
    explanation = (
        f"{message} This platform cannot be asked whether the post exists, so it is not "
        "sent again on its own: check the account, then confirm it (confirmPostPublished) "
        "or send it again (retryPost)."
    )
    row = await transitions.unknown(
        delivery.factory, target.id, target.attempts, _clip(explanation)
    )
    return await _done(delivery, row, "unknown")


async def _claim(
    delivery: Delivery, target_id: uuid.UUID, expected_attempts: int
) -> _Attempt | None:
    """Claim the target and read what it sends: one statement (two with media)."""
    async with transitions.autocommit(delivery.factory) as session:
        claimed = await compose.claim_and_load(
            session, target_id, expected_attempts, delivery.settings.publish_lease_seconds
        )
    if claimed is None:
        return None
    return _Attempt(*claimed)


async def _deliver(delivery: Delivery, attempt: _Attempt) -> Published:
    target = attempt.target
    loaded = attempt.loaded
    if isinstance(loaded, str):
        raise PermanentError(loaded)
    draft = loaded.draft
    platform = draft.platform
    credentials = unseal(delivery.box, loaded.sealed_credentials)
    try:
        publisher = registry.publisher_for(platform, delivery.http, delivery.settings)
    except LookupError:
        raise PermanentError(f"Publishing to {platform.value} is not available yet.") from None
    attempt.publisher = publisher
    evaluation = compose.check(draft)
    if evaluation.violations:
        broken = compose.violations_text(evaluation)
        raise PermanentError(f"Breaks {platform.value}'s rules: {broken}")
    post = compose.post_of(
        draft,
        evaluation,
        target_id=target.id,
        content_id=loaded.content_id,
        idempotency_key=target.idempotency_key,
        storage=delivery.storage,
    )
    problems = publisher.validate(post, credentials)
    if problems:
        raise PermanentError(" ".join(problems))
    if target.in_doubt:
        if publisher.can_look_up:
            found = await _call(publisher.find_existing(post, credentials), looking_up=True)
            if found is not None:
                log.info("publish_found_existing", target_id=str(target.id))
                return found
        elif not publisher.supports_idempotency_key:
            raise _Unknown(target.error or "An earlier attempt may have published this post.")
    attempt.sent = True
    return await _call(publisher.publish(post, credentials))


async def _call(call: Awaitable[T], *, looking_up: bool = False) -> T:
    """Await an adapter call, mapping what is not the interface's own errors."""
    try:
        return await call
    except (RetryableError, PermanentError):
        raise
    except OutcomeUnknown as exc:
        raise _Unknown(exc.message) from None
    except OutboundBlocked as exc:
        raise PermanentError(exc.message) from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise RetryableError(f"Cannot reach the platform: {type(exc).__name__}.") from None
    except Exception as exc:
        # An adapter bug or an unmapped error: it may have been sent. A look-up that
        # failed this way is simply retried later.
        log.warning("publish_adapter_error", error=repr(exc))
        if looking_up:
            raise RetryableError(f"Could not ask the platform: {type(exc).__name__}.") from None
        raise _Unknown(f"Unexpected error while sending ({type(exc).__name__}).") from None
