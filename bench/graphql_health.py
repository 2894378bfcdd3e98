"""Benchmark the GraphQL endpoint: `{ health }` and `mutation { ping }` over real HTTP.

Not a test: it prints figures. It starts the app in this process with uvicorn on a free
loopback port, against the servers named by DATABASE_URL / REDIS_URL or, when unset,
embedded ones (data in /tmp/bench-smartcontent), applies migrations, then drives each
operation with C concurrent httpx clients for N requests in total. It prints p50/p95/p99
latency and requests/s per operation, deletes the jobs `ping` created, and stops every
server it started.

    make bench
    .venv/bin/python bench/graphql_health.py --requests 2000 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import gc
import os
import platform
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import uvicorn

from app.asgi import create_app
from app.embedded import EmbeddedPostgres, EmbeddedRedis, ensure_database, free_port
from app.migrate import upgrade_head
from app.settings import Settings

BENCH_DATA_DIR = Path("/tmp/bench-smartcontent")
BENCH_DATABASE = "bench"
MAX_REQUESTS = 100_000

OPERATIONS = {
    "health": "{ health { database redis version } }",
    "ping": "mutation($ws: ID!) { ping(workspaceId: $ws) { job { id } errors { code } } }",
}


@dataclass
class Run:
    name: str
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str | None = None
    elapsed: float = 0.0
    job_ids: list[str] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.failures += 1
        self.first_failure = self.first_failure or why


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def check(run: Run, response: httpx.Response) -> None:
    if response.status_code != 200:
        run.fail(f"HTTP {response.status_code}: {response.text[:200]}")
        return
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        run.fail(f"errors: {body['errors']}")
        return
    if run.name == "ping":
        payload = body["data"]["ping"]
        if payload["errors"] or payload["job"] is None:
            run.fail(f"payload errors: {payload['errors']}")
            return
        run.job_ids.append(payload["job"]["id"])


async def client(
    http: httpx.AsyncClient,
    url: str,
    query: str,
    count: int,
    run: Run,
    stop: asyncio.Event,
    variables: dict[str, Any] | None = None,
) -> None:
    """One client: `count` requests, one after another, on its keep-alive connection."""
    for _ in range(count):
        if stop.is_set():
            return
        started = time.perf_counter()
        try:
            response = await http.post(url, json={"query": query, "variables": variables or {}})
        except httpx.HTTPError as exc:
            run.fail(repr(exc))
            continue
        run.latencies.append(time.perf_counter() - started)
        check(run, response)


async def sign_up(url: str) -> tuple[str, str]:
    """A fresh account and workspace to ping in: (access token, workspace id)."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(timeout=30) as http:
        registered = await http.post(
            url,
            json={
                "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                "variables": {
                    "i": {"email": email, "password": "bench password 12345", "name": "B"}
                },
            },
        )
        token = registered.json()["data"]["register"]["accessToken"]
        created = await http.post(
            url,
            json={
                "query": 'mutation { createWorkspace(input: {name: "Bench"}) { workspace { id } } }'
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    return token, created.json()["data"]["createWorkspace"]["workspace"]["id"]


def shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def measure(
    clients: list[httpx.AsyncClient],
    url: str,
    name: str,
    requests: int,
    warmup: int,
    stop: asyncio.Event,
    variables: dict[str, Any] | None = None,
) -> tuple[Run, Run]:
    """(warm-up, measured): the warm-up's figures are not reported, its jobs are deleted."""
    query = OPERATIONS[name]
    warm, run = Run(name), Run(name)
    for target, total in ((warm, warmup), (run, requests)):
        counts = shares(total, len(clients))
        started = time.perf_counter()
        pairs = zip(clients, counts, strict=True)
        await asyncio.gather(
            *(client(http, url, query, n, target, stop, variables) for http, n in pairs)
        )
        target.elapsed = time.perf_counter() - started
    return warm, run


def report(runs: list[Run]) -> None:
    header = f"{'operation':<10}{'requests':>9}{'failed':>8}{'req/s':>9}"
    header += f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(header)
    for run in runs:
        done = sorted(run.latencies)
        ms = [percentile(done, p) * 1000 for p in (50, 95, 99, 100)]
        rate = len(done) / run.elapsed if run.elapsed else 0.0
        print(
            f"{run.name:<10}{len(done):>9}{run.failures:>8}{rate:>9.0f}"
            + "".join(f"{value:>9.1f}" for value in ms)
        )
    for run in runs:
        if run.first_failure:
            print(f"first failure in {run.name}: {run.first_failure}", file=sys.stderr)


def job_uuid(global_id: str) -> uuid.UUID:
    type_name, _, node_id = base64.b64decode(global_id).decode().partition(":")
    assert type_name == "Job", global_id
    return uuid.UUID(node_id)


async def delete_jobs(database_url: str, redis_url: str, global_ids: list[str]) -> None:
    """Remove the benchmark's ping jobs: their rows, and their arq entries (no worker ran)."""
    if not global_ids:
        return
    from arq.constants import default_queue_name, job_key_prefix
    from redis.asyncio import Redis
    from sqlalchemy import delete

    from app.db import create_engine
    from app.jobs.store import arq_job_id
    from app.models import Job

    ids = [job_uuid(g) for g in global_ids]
    engine = create_engine(database_url, Settings(database_url=database_url, db_pool_size=1))
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(Job).where(Job.id.in_(ids), Job.kind == "ping"))
    finally:
        await engine.dispose()
    arq_ids = [arq_job_id(i, 0) for i in ids]
    redis = Redis.from_url(redis_url)
    try:
        for start in range(0, len(arq_ids), 500):
            chunk = arq_ids[start : start + 500]
            await redis.zrem(default_queue_name, *chunk)
            await redis.delete(*(job_key_prefix + a for a in chunk))
    finally:
        await redis.aclose()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling, which would re-raise SIGTERM after stopping
    and kill this process before it stops the servers it started. We handle signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def bench(settings: Settings, args: argparse.Namespace) -> tuple[list[Run], bool]:
    """(runs, interrupted)."""
    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = _Server(config)
    stop = asyncio.Event()
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        stop.set()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    serving = asyncio.create_task(server.serve())
    runs: list[Run] = []
    job_ids: list[str] = []
    try:
        while not server.started:
            if serving.done():
                raise SystemExit("uvicorn did not start; see the log above")
            await asyncio.sleep(0.05)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()  # what the server would gain from gc.freeze() once started
        url = f"http://127.0.0.1:{port}/graphql"
        # Made before the clock starts (each builds an SSL context); one connection each.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        token, workspace_id = await sign_up(url)
        async with contextlib.AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        limits=limits, timeout=30, headers={"Authorization": f"Bearer {token}"}
                    )
                )
                for _ in range(args.concurrency)
            ]
            for name in OPERATIONS:
                warm, run = await measure(
                    clients,
                    url,
                    name,
                    args.requests,
                    args.warmup,
                    stop,
                    {"ws": workspace_id} if name == "ping" else None,
                )
                job_ids += warm.job_ids + run.job_ids
                if warm.failures:
                    raise SystemExit(f"warm-up of {name} failed: {warm.first_failure}")
                runs.append(run)
                if stop.is_set():
                    break
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        assert settings.database_url and settings.redis_url
        try:
            await delete_jobs(settings.database_url, settings.redis_url, job_ids)
        except Exception as exc:  # cleanup must not hide the figures
            print(f"could not delete benchmark jobs: {exc!r}", file=sys.stderr)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return runs, interrupted


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per operation (default 2000)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients (default 8)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="move start-up objects out of the garbage collector's reach (experiment)",
    )
    args = parser.parse_args()
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.concurrency <= 256:
        parser.error(f"--requests must be 1..{MAX_REQUESTS} and --concurrency 1..256")

    configured = Settings()
    signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: run the `finally` below
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    try:
        database_url = configured.database_url
        if not database_url:
            pg = EmbeddedPostgres(BENCH_DATA_DIR)
            database_url = asyncio.run(ensure_database(pg.start(), BENCH_DATABASE))
        redis_url = configured.redis_url
        if not redis_url:
            redis = EmbeddedRedis(BENCH_DATA_DIR)
            redis_url = redis.start()
        upgrade_head(database_url)
        settings = Settings(
            database_url=database_url,
            redis_url=redis_url,
            log_level="WARNING",
            log_json=configured.log_json,
            data_dir=BENCH_DATA_DIR,
            # The benchmark measures the server, not the rate limiter's refusals.
            rate_limit_anonymous=10**9,
            rate_limit_free=10**9,
        )
        servers = "Postgres " + ("embedded" if pg else "from DATABASE_URL")
        servers += ", Redis " + ("embedded" if redis else "from REDIS_URL")
        print(
            f"SmartContent GraphQL benchmark  {datetime.date.today()}  {platform.system()} "
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(
            f"{servers}; {args.requests} requests per operation, "
            f"{args.concurrency} client{'s' if args.concurrency != 1 else ''}, "
            f"{args.warmup} warm-up requests" + (", gc.freeze()" if args.gc_freeze else "")
        )
        runs, interrupted = asyncio.run(bench(settings, args))
        report(runs)
        if interrupted:
            print("interrupted: figures cover the requests done so far", file=sys.stderr)
            return 130
        return 1 if any(run.failures for run in runs) else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    raise SystemExit(main())
