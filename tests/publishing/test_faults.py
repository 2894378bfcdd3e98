"""Delivery under faults, with real worker processes and a real receiver:

- 200 posts due at once, two worker processes, one SIGKILLed mid-run (while requests it
  sent are accepted but unanswered): afterwards every post is PUBLISHED, each created
  exactly once at the receiver, none stuck;
- Redis flushed after scheduling (every queued job lost): the sweeper still publishes
  every post.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import func, select, update

from app.infra.queue import PUBLISH_QUEUE
from app.models import Content, PostTarget
from app.settings import Settings
from app.state import AppState
from tests.conftest import Servers
from tests.publishing.bulk import create_due, enqueue_all
from tests.publishing.conftest import Team, approved_content, arq_worker, connect_webhook
from tests.publishing.fault_worker import READY_SET
from tests.publishing.receiver import Receiver, serve_receiver
from tests.teams import uid

pytestmark = pytest.mark.slow

POSTS = 200
KILL_AFTER = 60  # creations at the receiver before one worker is killed
LEASE_SECONDS = 8
CONCURRENCY = 10  # per worker
# Seen taking 12-20 s on a 2-core machine shared with other runs (the killed worker's
# targets wait for their lease, 8 s, then the sweeper's next pass).
BOUND_SECONDS = 50


@pytest.fixture
def worker_env(servers: Servers) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env.update(
        DATABASE_URL=servers.database_url,
        REDIS_URL=servers.redis_url,
        LOG_LEVEL="WARNING",
        SECRET_KEY="test-secret-key-that-is-long-enough-0123456789",
        OUTBOUND_ALLOW_PRIVATE_NETWORKS="true",
        PUBLISH_LEASE_SECONDS=str(LEASE_SECONDS),
        PUBLISH_ATTEMPT_TIMEOUT_SECONDS="3",
        PUBLISH_REQUEST_TIMEOUT_SECONDS="2.5",
        PUBLISH_BACKOFF_SECONDS="0.2",
        SWEEPER_INTERVAL_SECONDS="1",
        PUBLISH_WORKER_CONCURRENCY=str(CONCURRENCY),
        DB_POOL_SIZE="5",
        GRACEFUL_SHUTDOWN_SECONDS="2",
    )
    return env


@pytest.fixture
def procs(worker_env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    for i in range(2):
        log = (tmp_path / f"worker-{i}.log").open("wb")
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.publishing.fault_worker"],
                env=worker_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _setup(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> tuple[str, str]:
    account = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content = await approved_content(client, team)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Content).where(Content.id == uid(content)).values(status="SCHEDULED")
        )
    return account, content


async def _statuses(state: AppState) -> Counter[str]:
    async with state.session_factory() as session:
        rows = await session.execute(
            select(PostTarget.status, func.count()).group_by(PostTarget.status)
        )
        return Counter({status: count for status, count in rows.all()})


async def test_a_killed_worker_loses_no_post_and_doubles_none(
    client: httpx.AsyncClient,
    state: AppState,
    team: Team,
    servers: Servers,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    random.seed(11)
    # Answers take 300 ms after the post is created: a kill leaves posts created at the
    # receiver whose answers the dead worker never read.
    async with serve_receiver(delay=0.3) as receiver:
        account, content = await _setup(client, state, team, receiver)
        pool = await create_pool(RedisSettings.from_dsn(servers.redis_url))
        try:
            async with asyncio.timeout(60):
                while await pool.scard(READY_SET) < 2:
                    await asyncio.sleep(0.1)
            due = datetime.now(UTC) + timedelta(seconds=1)
            targets = await create_due(
                state.session_factory,
                workspace_id=uid(team.workspace_id),
                account_id=uid(account),
                content_id=uid(content),
                count=POSTS,
                due=due,
            )
            await enqueue_all(pool, targets, due)
        finally:
            await pool.aclose()

        victim: subprocess.Popen[bytes] | None = None
        started = time.monotonic()
        while True:
            counts = await _statuses(state)
            if counts["PUBLISHED"] == POSTS:
                break
            assert time.monotonic() - started < BOUND_SECONDS, (
                f"not all published after {BOUND_SECONDS} s: {dict(counts)}"
            )
            # More targets held than one worker's concurrency: both are mid-attempt (a
            # worker between two arq polls holds none, and killing it would test nothing).
            busy = counts["PUBLISHING"] > CONCURRENCY
            if victim is None and receiver.creations.total() >= KILL_AFTER and busy:
                victim = random.choice(procs)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started

    assert victim is not None and victim.returncode == -signal.SIGKILL
    async with state.session_factory() as session:
        rows = (await session.scalars(select(PostTarget))).all()
        content_status = (await session.get(Content, uid(content))).status  # type: ignore[union-attr]
    keys = {row.idempotency_key for row in rows}
    assert len(rows) == POSTS and {row.status for row in rows} == {"PUBLISHED"}
    assert all(row.locked_until is None and not row.in_doubt for row in rows), "none stuck"
    # Each created exactly once at the receiver, and recorded with the id it was given.
    assert set(receiver.creations) == keys and set(receiver.creations.values()) == {1}
    assert {row.platform_post_id for row in rows} == {
        receiver.created[row.idempotency_key].post_id for row in rows
    }
    # The kill did hit posts in flight: each was taken back and attempted again. Whether a
    # given one had already reached the receiver (then resent under the same key and
    # recognised: delivered twice, created once) depends on where the kill landed.
    recovered = [row for row in rows if row.attempts > 1]
    assert recovered, "the kill interrupted no attempt"
    assert content_status == "PUBLISHED"
    print(
        f"{POSTS} published in {elapsed:.1f} s after a SIGKILL;"
        f" {len(recovered)} recovered, {sum(receiver.deliveries.values()) - POSTS} resent"
    )


async def test_redis_flushed_after_scheduling_the_sweeper_publishes_every_post(
    client: httpx.AsyncClient,
    state: AppState,
    team: Team,
    pub_settings: Settings,
    servers: Servers,
    receiver: Receiver,
) -> None:
    account, content = await _setup(client, state, team, receiver)
    pool = await create_pool(RedisSettings.from_dsn(servers.redis_url))
    try:
        due = datetime.now(UTC) + timedelta(seconds=1)
        targets = await create_due(
            state.session_factory,
            workspace_id=uid(team.workspace_id),
            account_id=uid(account),
            content_id=uid(content),
            count=40,
            due=due,
        )
        await enqueue_all(pool, targets, due)
        queued = await pool.zrange(PUBLISH_QUEUE, 0, -1)
        assert sum(job.startswith(b"publish:") for job in queued) == 40
        await pool.flushall()
        assert await pool.zcard(PUBLISH_QUEUE) == 0  # every queued job is gone
    finally:
        await pool.aclose()
    async with arq_worker(pub_settings):
        async with asyncio.timeout(30):
            while (await _statuses(state))["PUBLISHED"] < 40:
                await asyncio.sleep(0.1)
    assert set(receiver.creations.values()) == {1} and receiver.creations.total() == 40
