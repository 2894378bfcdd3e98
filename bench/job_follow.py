"""In-process costs of following jobs (`app/jobs/events.py follow`) on the real hub, Redis
and Postgres, without websockets or GraphQL: what one API process pays per subscriber.

    .venv/bin/python bench/job_follow.py [--subscribers 10000] [--jobs 1] [--events 20]

Uses DATABASE_URL / REDIS_URL (`source /work/tools/bench-servers.env`) with a database of
its own (`follow_bench_<pid>`, migrated here, dropped at the end). Prints, beside the load
average:
- subscribe: process CPU per `follow()` until its first (stored) event;
- fan-out: process CPU per event per subscriber, each event published through Redis and
  received by every follower (consumers only count, as a socket writer would be elsewhere);
- idle: CPU per second with every follower idle, and the statements it issued;
- the longest garbage-collector pause (gc.callbacks, in CPU time) and the full collections;
- memory (RSS, traced Python blocks, live objects) before, at the peak and after every
  follower has ended.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import psutil
from sqlalchemy import event

from app.auth import Principal, WorkspaceAccess
from app.db import create_engine, create_session_factory
from app.embedded import ensure_database
from app.infra.realtime import EventHub
from app.jobs import store as jobs
from app.jobs.events import follow
from app.jobs.runner import publish
from app.migrate import upgrade_head
from app.permissions import Role
from app.settings import Settings


class Pauses:
    """The garbage collector's pauses, from gc.callbacks."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.total = 0.0
        self.full = 0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # CPU time, not wall time: on a loaded machine a pause is also preempted.
        if phase == "start":
            self._start = time.process_time()
            return
        pause = time.process_time() - self._start
        self.total += pause
        self.longest = max(self.longest, pause)
        self.full += info["generation"] == 2


@contextmanager
def cpu(label: str, per: float, unit: str) -> Iterator[None]:
    start, wall = time.process_time(), time.perf_counter()
    yield
    used, took = time.process_time() - start, time.perf_counter() - wall
    print(
        f"{label}: {used * 1e6 / per:,.1f} us CPU per {unit} "
        f"({used:.2f} s CPU, {took:.2f} s wall; load {os.getloadavg()[0]:.2f})"
    )


def memory(label: str) -> None:
    callbacks = gc.callbacks[:]
    gc.callbacks.clear()  # this collection is ours, not a pause to report
    gc.collect()
    gc.callbacks.extend(callbacks)
    rss = psutil.Process().memory_info().rss / 2**20
    traced = (
        f", traced {tracemalloc.get_traced_memory()[0] / 2**20:,.1f} MiB"
        if tracemalloc.is_tracing()
        else ""
    )
    print(f"memory {label}: RSS {rss:,.0f} MiB{traced}, objects {len(gc.get_objects()):,}")


async def main(args: argparse.Namespace) -> None:
    admin = os.environ["DATABASE_URL"]
    name = f"follow_bench_{os.getpid()}"
    url = await ensure_database(admin, name)
    await asyncio.to_thread(upgrade_head, url)
    settings = Settings(database_url=url, redis_url=os.environ["REDIS_URL"])
    engine = create_engine(url, settings, application_name="follow-bench")
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    factory = create_session_factory(engine)
    hub = EventHub(settings.redis_url or "")
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 30)
    pauses = Pauses()
    try:
        workspace = uuid.uuid4()
        conn = await asyncpg.connect(url)
        await conn.execute("INSERT INTO workspaces (id, name) VALUES ($1, 'bench')", workspace)
        await conn.close()
        async with factory() as session, session.begin():
            rows = [
                jobs.new_job(session, "ping", {}, 3, workspace_id=workspace)
                for _ in range(args.jobs)
            ]
        job_ids = [row.id for row in rows]
        principal = Principal(
            kind="user",
            user_id=uuid.uuid4(),
            access={workspace: WorkspaceAccess(Role.OWNER, False)},
        )
        n = args.subscribers
        received = [0] * n
        firsts: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()

        total = 0
        target = (0, asyncio.Event())

        failures: list[BaseException] = []

        async def consume(i: int, first: asyncio.Future[None]) -> None:
            nonlocal total
            try:
                async for _event in follow(factory, hub, principal, job_ids[i % len(job_ids)]):
                    if not first.done():
                        first.set_result(None)
                    received[i] += 1
                    total += 1
                    if total >= target[0]:
                        target[1].set()
            except Exception as exc:  # e.g. a pool timeout: counted, not a hang
                failures.append(exc)
                if not first.done():
                    first.set_result(None)

        if args.trace:
            tracemalloc.start(1)  # slows everything: CPU figures are then not comparable
        memory("before")
        gc.callbacks.append(pauses)
        tasks = []
        with cpu("subscribe", n, "follow() (until its stored state)"):
            before = statements
            for i in range(n):
                first = loop.create_future()
                firsts.append(first)
                tasks.append(asyncio.create_task(consume(i, first)))
                if len(tasks) % 200 == 0:
                    await asyncio.gather(*firsts[-200:])
            await asyncio.gather(*firsts)
        print(f"  statements per subscribe: {(statements - before) / n:.2f}")
        if failures:
            print(f"  {len(failures)} followers failed, e.g. {failures[0]!r}")
        memory("subscribed")
        with cpu("idle", args.idle, "second, all followers idle"):
            before = statements
            await asyncio.sleep(args.idle)
        print(f"  statements while idle: {statements - before}")

        claimed = [await jobs.claim(factory, job_id, 600) for job_id in job_ids]
        assert all(claimed)
        attempts = {row.id: row.attempts for row in claimed if row is not None}

        async def all_received(count_: int) -> None:
            nonlocal target
            target = ((n - len(failures)) * count_, asyncio.Event())
            if total < target[0]:
                try:
                    await asyncio.wait_for(target[1].wait(), 60)
                except TimeoutError:
                    short = sum(1 for r in received if r < count_)
                    print(f"  after 60 s, {short} followers still lack event {count_}")

        for row in claimed:
            assert row is not None
            await publish(hub, row)
        await all_received(2)
        with cpu("fan-out", n * args.events, "event per subscriber"):
            start = time.perf_counter()
            for step in range(args.events):
                for job_id in job_ids:
                    row = await jobs.report_progress(
                        factory, job_id, attempts[job_id], step / args.events, "step"
                    )
                    assert row is not None
                    await publish(hub, row)
                await all_received(3 + step)
        print(f"  {args.events} events to {n} followers in {time.perf_counter() - start:.2f} s")
        memory("peak")
        for job_id in job_ids:
            row = await jobs.succeed(factory, job_id, attempts[job_id], {"ok": True})
            assert row is not None
            await publish(hub, row)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        gc.callbacks.remove(pauses)
        lost = sum(1 for r in received if r != args.events + 3)
        print(f"followers with a missing or extra event: {lost}; failed: {len(failures)}")
        print(
            f"gc: longest pause {pauses.longest * 1e3:.1f} ms CPU, {pauses.full} full "
            f"collections, {pauses.total:.2f} s in total; thresholds {gc.get_threshold()}"
        )
        del tasks, firsts
        memory("after every follower ended")
    finally:
        await hub.stop()
        await engine.dispose()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle")
    parser.add_argument("--trace", action="store_true", help="tracemalloc (memory only)")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() first")
    parser.add_argument("--tune-gc", action="store_true", help="app/asgi.py's tune_gc() first")
    parsed = parser.parse_args()
    if parsed.freeze:
        gc.freeze()
    if parsed.tune_gc:
        from app.asgi import tune_gc

        tune_gc()
    asyncio.run(main(parsed))
