"""The metrics collector: a task in every worker (beside the sweepers and the token
refresher) that fetches due targets' metrics through the adapters' `fetch_metrics`.

One pass: schedule newly published targets (`metrics.discover`), then claim due ones in
batches (`metrics.claim`: a lease, SKIP LOCKED, so two collectors never fetch one target at
once) and fetch METRICS_CONCURRENCY at a time, each inside its lease. Each outcome is one
short transaction guarded by the lease:

- metrics: a snapshot row, the next step; then `{"snapshot_id", "target_id", "content_id",
  "workspace_id", "platform", "collected_at"}` on the workspace's `performance:{id}`
  channel (performanceUpdated);
- `RetryableError` (rate limit, 5xx, network), a timeout, a refused request or an adapter
  bug: retried within the step after a back-off (`metrics.failed`); earlier snapshots stay;
- `AuthError`: the account becomes NEEDS_RECONNECT as delivery marks it
  (`transitions.needs_reconnect`), audited, announced on `accounts:{workspace}` like the
  token refresher does, and its schedules pause until it is reconnected.

Credentials are unsealed only for the call, as delivery does (accounts.unseal).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import ANONYMOUS
from app.infra import outbound
from app.logging import get_logger
from app.models import AccountStatus
from app.platforms import registry
from app.platforms.publishing import AuthError, Metrics, PublishError, RetryableError
from app.security.crypto import SecretBox
from app.services.analytics import metrics
from app.services.audit import trail as audit
from app.services.publishing import refresher, transitions
from app.services.publishing.accounts import unseal
from app.services.publishing.events import EventPublisher
from app.settings import Settings

log = get_logger(__name__)

ACTOR = "system:metrics-collector"
# A fetch must end this long before its lease does (the write after it needs a moment).
LEASE_MARGIN_SECONDS = 2.0


def channel(workspace_id: uuid.UUID | str) -> str:
    """Where a workspace's new snapshots are announced (performanceUpdated)."""
    return f"performance:{workspace_id}"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Collector:
    """What a pass needs: the worker's connections, and the clock (tests pass their own)."""

    factory: async_sessionmaker[AsyncSession]
    settings: Settings
    box: SecretBox
    http: httpx.AsyncClient
    events: EventPublisher | None
    clock: Callable[[], datetime] = utc_now


@dataclass
class CollectReport:
    discovered: int = 0
    collected: list[uuid.UUID] = field(default_factory=list)  # targets with a new snapshot
    retrying: list[uuid.UUID] = field(default_factory=list)
    skipped: list[uuid.UUID] = field(default_factory=list)  # a step given up
    paused: list[uuid.UUID] = field(default_factory=list)  # account not usable
    needs_reconnect: list[uuid.UUID] = field(default_factory=list)  # accounts marked now
    lost: list[uuid.UUID] = field(default_factory=list)  # lease ran out: nothing written


@dataclass
class _Outcome:
    """What one fetch gave: metrics, or the error to record."""

    metrics: Metrics | None = None
    error: str | None = None
    retry_after: float | None = None
    auth: bool = False


async def collect_due(collector: Collector, *, limit: int | None = None) -> CollectReport:
    """One pass: each due target is fetched at most once (at most `limit`, default ten
    batches)."""
    settings = collector.settings
    report = CollectReport()
    budget = limit if limit is not None else settings.metrics_batch * 10
    async with collector.factory() as session, session.begin():
        report.discovered = await metrics.discover(
            session, collector.clock(), settings.metrics_batch * 10
        )
    tried: list[uuid.UUID] = []
    semaphore = asyncio.Semaphore(settings.metrics_concurrency)
    while len(tried) < budget:
        # Each batch's lease runs from its own claim (a pass may last several leases).
        now = collector.clock()
        size = min(settings.metrics_batch, budget - len(tried))
        async with collector.factory() as session, session.begin():
            batch = await metrics.claim(
                session, now, settings.metrics_lease_seconds, size, skip=tried
            )
        if not batch:
            break
        tried.extend(c.target_id for c in batch)
        deadline = asyncio.get_running_loop().time() + max(
            settings.metrics_lease_seconds - LEASE_MARGIN_SECONDS, 1.0
        )
        outcomes = await asyncio.gather(
            *(_fetch(collector, claimed, semaphore, deadline) for claimed in batch)
        )
        for claimed, outcome in zip(batch, outcomes, strict=True):
            # When the platform answered (at most the lease after the claim).
            await _record(collector, claimed, outcome, collector.clock(), report)
    return report


async def _fetch(
    collector: Collector,
    claimed: metrics.Claimed,
    semaphore: asyncio.Semaphore,
    deadline: float,
) -> _Outcome:
    if claimed.account_status != AccountStatus.CONNECTED.value or not claimed.sealed_credentials:
        return _Outcome(error=f"The account is {claimed.account_status.lower()}.", auth=True)
    try:
        async with asyncio.timeout_at(deadline), semaphore:
            credentials = unseal(collector.box, claimed.sealed_credentials)
            publisher = registry.publisher_for(claimed.platform, collector.http, collector.settings)
            return _Outcome(metrics=await publisher.fetch_metrics(claimed.published, credentials))
    except AuthError as exc:
        return _Outcome(error=exc.message, auth=True)
    except RetryableError as exc:
        return _Outcome(error=exc.message, retry_after=exc.retry_after)
    except PublishError as exc:
        return _Outcome(error=exc.message)
    except TimeoutError:
        return _Outcome(error="The platform did not answer within the collector's lease.")
    except outbound.OutboundBlocked as exc:
        return _Outcome(error=exc.message)
    except (httpx.HTTPError, LookupError, ValueError) as exc:
        return _Outcome(error=f"Could not read the metrics ({type(exc).__name__}).")
    except Exception as exc:  # an adapter bug: logged, retried like a platform error
        log.warning("metrics_adapter_error", target_id=str(claimed.target_id), error=repr(exc))
        return _Outcome(error=f"Unexpected error while reading metrics ({type(exc).__name__}).")


async def _record(
    collector: Collector,
    claimed: metrics.Claimed,
    outcome: _Outcome,
    now: datetime,
    report: CollectReport,
) -> None:
    settings = collector.settings
    target = claimed.target_id
    announce: tuple[str, dict[str, Any]] | None = None
    async with collector.factory() as session, session.begin():
        if outcome.metrics is not None:
            snapshot = await metrics.collected(session, claimed, outcome.metrics, now)
            if snapshot is None:
                report.lost.append(target)
                return
            report.collected.append(target)
            announce = (
                channel(claimed.workspace_id),
                {
                    "snapshot_id": str(snapshot.id),
                    "target_id": str(target),
                    "content_id": str(claimed.content_id),
                    "workspace_id": str(claimed.workspace_id),
                    "platform": claimed.platform.value,
                    "collected_at": now.isoformat(),
                },
            )
        elif outcome.auth:
            error = outcome.error or "The account's token was refused."
            result = await metrics.paused(session, settings, claimed, now, error)
            if result == "lost-lease":
                report.lost.append(target)
                return
            report.paused.append(target)
            if claimed.account_status == AccountStatus.CONNECTED.value and (
                await transitions.needs_reconnect(session, claimed.account_id, error)
            ):
                _audit_reconnect(session, claimed, error)
                report.needs_reconnect.append(claimed.account_id)
                announce = (
                    refresher.channel(claimed.workspace_id),
                    {
                        "account_id": str(claimed.account_id),
                        "workspace_id": str(claimed.workspace_id),
                        "status": AccountStatus.NEEDS_RECONNECT.value,
                        "reason": error,
                    },
                )
        else:
            error = outcome.error or "The metrics could not be read."
            result = await metrics.failed(
                session, settings, claimed, now, error, retry_after=outcome.retry_after
            )
            {"retrying": report.retrying, "skipped": report.skipped, "lost-lease": report.lost}[
                result
            ].append(target)
            log.info("metrics_fetch_failed", target_id=str(target), outcome=result, error=error)
    if announce is not None and collector.events is not None:
        try:
            await collector.events.publish(*announce)
        except Exception as exc:  # the snapshot is saved; subscribers catch up from it
            log.warning("metrics_event_publish_failed", error=repr(exc))


def _audit_reconnect(session: AsyncSession, claimed: metrics.Claimed, reason: str) -> None:
    audit.record(
        session,
        ANONYMOUS,
        "accountNeedsReconnect",
        workspace_id=claimed.workspace_id,
        target_type="SocialAccount",
        target_id=claimed.account_id,
        details={"reason": reason},
        actor_label=ACTOR,
    )


async def run_forever(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    box: SecretBox,
    events: EventPublisher | None,
) -> None:
    """The worker's collector task: a pass every METRICS_INTERVAL_SECONDS over its own HTTP
    client (the outbound guard, METRICS_REQUEST_TIMEOUT_SECONDS); a failing pass (Postgres
    away) is logged and tried again at the next tick."""
    # The HTTP client (an SSL context, a connection pool) is made when there is first
    # something to fetch: most passes of most workers find nothing due.
    http: httpx.AsyncClient | None = None
    try:
        while True:
            try:
                async with factory() as session:
                    due = await metrics.due_or_new(session, utc_now())
                if due:
                    if http is None:
                        http = outbound.client(
                            settings,
                            timeout=settings.metrics_request_timeout_seconds,
                            max_connections=settings.metrics_concurrency,
                        )
                    report = await collect_due(Collector(factory, settings, box, http, events))
                    if report.collected or report.retrying or report.needs_reconnect:
                        log.info(
                            "metrics_collected",
                            collected=len(report.collected),
                            retrying=len(report.retrying),
                            needs_reconnect=len(report.needs_reconnect),
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("metrics_collector_failed", error=repr(exc))
            await asyncio.sleep(settings.metrics_interval_seconds)
    finally:
        if http is not None:
            await asyncio.shield(http.aclose())


def start(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    box: SecretBox,
    events: EventPublisher | None,
) -> asyncio.Task[None]:
    """The collector task, for the worker's startup (cancel it at shutdown)."""
    return asyncio.create_task(run_forever(factory, settings, box, events), name="metrics")
