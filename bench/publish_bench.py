"""Benchmark delivery: 10,000 posts due in the same minute, two worker processes, a fake
platform (the tests' webhook receiver) answering each post in 20 ms.

Not a test: it prints figures. It uses DATABASE_URL / REDIS_URL if set, else starts an
embedded Postgres and Redis (data in /tmp/bench-publish-smartcontent); creates a fresh
database `bench_publish` and migrates it; writes one workspace, a webhook account pointing
at the receiver and a content item; writes the posts (one PENDING target each, due at the
same instant unless --spread) and enqueues their arq jobs as schedulePost does; starts two
`smartcontent worker` processes, and waits until every post is final. Then it prints
posts/s, the lag between due time and publish time (p50, p95, max), duplicates (posts the
receiver created more than once), lost posts (given up on, or recorded PUBLISHED but never
created) and unfinished ones (still waiting when it stopped), against the targets: all
published within 60 s of their due time, 0 duplicates, 0 lost.

    make bench-publish
    .venv/bin/python bench/publish_bench.py --posts 2000 --concurrency 50

Exit code 0 when the targets are met, 1 otherwise, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from arq import create_pool
from arq.connections import RedisSettings
from cryptography.fernet import Fernet

from app.db import create_engine, create_session_factory, plain_pg_url
from app.embedded import EmbeddedPostgres, EmbeddedRedis, with_database
from app.infra.queue import PUBLISH_QUEUE
from app.migrate import upgrade_head
from app.platforms.publishing import Credentials
from app.security.crypto import SecretBox
from app.services.publishing.accounts import seal
from app.settings import Settings

# The fake platform and the bulk writer are the fault tests' own (run from the checkout).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.publishing.bulk import create_due
from tests.publishing.receiver import SECRET, serve_receiver

DATA_DIR = Path("/tmp/bench-publish-smartcontent")
DATABASE = "bench_publish"
TARGET_LAG_SECONDS = 60.0
SECRET_KEY = "bench-secret-key-that-is-long-enough-0123456789"


async def _database(admin_url: str) -> str:
    conn = await asyncpg.connect(plain_pg_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    url = with_database(admin_url, DATABASE)
    await asyncio.to_thread(upgrade_head, url)
    return url


async def _seed(database_url: str, key: str, hook_url: str) -> tuple[uuid.UUID, ...]:
    workspace, account, content = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        await conn.execute(
            "INSERT INTO workspaces (id, name, brand_voice) VALUES ($1, 'Bench', '{}')", workspace
        )
        credentials = seal(SecretBox([key]), Credentials(extra={"url": hook_url, "secret": SECRET}))
        await conn.execute(
            "INSERT INTO social_accounts (id, workspace_id, platform, name, status, credentials)"
            " VALUES ($1, $2, 'WEBHOOK', 'Bench hook', 'CONNECTED', $3)",
            account,
            workspace,
            credentials,
        )
        await conn.execute(
            "INSERT INTO contents (id, workspace_id, title, body, content_type, format, status)"
            " VALUES ($1, $2, 'Launch', 'Our launch post, published by the bench.',"
            " 'SOCIAL_POST', 'PLAIN', 'SCHEDULED')",
            content,
            workspace,
        )
    finally:
        await conn.close()
    return workspace, account, content


def _workers(count: int, env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(count):
        log = (log_dir / f"worker-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU the worker processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in procs:
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _load() -> str:
    """How busy the machine is (other processes share it): CPU pressure and load average."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        pressure = " ".join(f for f in some if f.startswith(("avg10", "avg60")))
    except OSError:
        pressure = "cpu pressure n/a"
    loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return f"cpu pressure {pressure}; load average {loadavg}; {os.cpu_count()} cores"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> int:
    pg = redis = None
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if not database_url:
            pg = EmbeddedPostgres(DATA_DIR)
            database_url = pg.start()
        if not redis_url:
            redis = EmbeddedRedis(DATA_DIR)
            redis_url = redis.start()
        database_url = await _database(database_url)
        key = Fernet.generate_key().decode()
        async with serve_receiver(delay=args.platform_ms / 1000) as receiver:
            workspace, account, content = await _seed(database_url, key, receiver.url)
            env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
            env.update(
                DATABASE_URL=database_url,
                REDIS_URL=redis_url,
                ENCRYPTION_KEYS=key,
                SECRET_KEY=SECRET_KEY,
                OUTBOUND_ALLOW_PRIVATE_NETWORKS="true",
                PUBLISH_WORKER_CONCURRENCY=str(args.concurrency),
                DB_POOL_SIZE=str(min(50, args.concurrency)),
                LOG_LEVEL=args.log_level,
                SWEEPER_INTERVAL_SECONDS="2",
            )
            # Workers start first (imports take seconds on a busy machine), the posts are
            # due once they are up: the lag measured is delivery's, not start-up's.
            logs = DATA_DIR / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            procs = _workers(args.workers, env, logs)
            print(f"{args.workers} workers starting (logs in {logs})")
            settings = Settings(_env_file=None, database_url=database_url, redis_url=redis_url)  # type: ignore[call-arg]
            engine = create_engine(database_url, settings, application_name="bench")
            factory = create_session_factory(engine)
            pool = await create_pool(RedisSettings.from_dsn(redis_url))
            if redis is not None:
                await pool.flushdb()  # our own embedded Redis: no jobs left from a past run
            due = datetime.now(UTC) + timedelta(seconds=args.lead)
            print(f"writing {args.posts} posts due at {due:%H:%M:%S} (+{args.spread:g} s spread)")
            targets = await create_due(
                factory,
                workspace_id=workspace,
                account_id=account,
                content_id=content,
                count=args.posts,
                due=due,
            )
            if args.spread:
                conn = await asyncpg.connect(plain_pg_url(database_url))
                await conn.execute(
                    "UPDATE post_targets SET scheduled_at = scheduled_at + random() * $1 *"
                    " interval '1 second'",
                    float(args.spread),
                )
                await conn.execute("UPDATE post_targets SET next_attempt_at = scheduled_at")
                await conn.close()
            rows = await _due_times(database_url)
            for start in range(0, len(targets), 500):
                await asyncio.gather(
                    *(
                        pool.enqueue_job(
                            "publish_target",
                            str(t),
                            0,
                            _job_id=f"publish:{t}:0:g0",
                            _defer_until=rows[t],
                            _queue_name=PUBLISH_QUEUE,
                        )
                        for t in targets[start : start + 500]
                    )
                )
            await pool.aclose()
            print("waiting for the due time")
            # CPU counted from the due time on: start-up and the wait are not the posts'.
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            cpu_before = _cpu_seconds(procs)
            load_before = _load()
            final = await _wait(database_url, args.posts, due, args.timeout)
            machine = {
                "worker_cpu_s": round(_cpu_seconds(procs) - cpu_before, 1),
                "load_before": load_before,
                "load_after": _load(),
            }
            _stop(procs)
            procs = []
            await engine.dispose()
            return await _report(args, database_url, receiver, due, final, machine)
    finally:
        _stop(procs)
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()


async def _due_times(database_url: str) -> dict[uuid.UUID, datetime]:
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        return {
            r["id"]: r["scheduled_at"]
            for r in await conn.fetch("SELECT id, scheduled_at FROM post_targets")
        }
    finally:
        await conn.close()


async def _wait(database_url: str, posts: int, due: datetime, limit: float) -> dict[str, int]:
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        deadline = due + timedelta(seconds=limit)
        while True:
            rows = await conn.fetch(
                "SELECT status, count(*) AS n FROM post_targets GROUP BY status"
            )
            counts = {r["status"]: r["n"] for r in rows}
            done = sum(n for s, n in counts.items() if s in ("PUBLISHED", "FAILED", "UNKNOWN"))
            if done >= posts or datetime.now(UTC) > deadline:
                return counts
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def _report(
    args: argparse.Namespace,
    database_url: str,
    receiver: object,
    due: datetime,
    counts: dict[str, int],
    machine: dict[str, object],
) -> int:
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key, status, attempts, scheduled_at, published_at FROM post_targets"
        )
    finally:
        await conn.close()
    created = receiver.creations
    deliveries = receiver.deliveries
    published = [r for r in rows if r["status"] == "PUBLISHED"]
    lags = [(r["published_at"] - r["scheduled_at"]).total_seconds() for r in published]
    last = max((r["published_at"] for r in published), default=due)
    first_due = min(r["scheduled_at"] for r in rows)
    duplicates = sum(1 for n in created.values() if n > 1)
    # Lost: given up on (FAILED, UNKNOWN), or recorded PUBLISHED but never created.
    # Unfinished: still PENDING or PUBLISHING when the wait ended (too slow, not lost).
    lost = sum(
        1
        for r in rows
        if r["status"] in ("FAILED", "UNKNOWN")
        or (r["status"] == "PUBLISHED" and created[r["idempotency_key"]] == 0)
    )
    unfinished = sum(1 for r in rows if r["status"] in ("PENDING", "PUBLISHING"))
    span = max(1e-9, (last - first_due).total_seconds())
    report = {
        "posts": args.posts,
        "workers": args.workers,
        "concurrency_per_worker": args.concurrency,
        "platform_ms": args.platform_ms,
        "statuses": counts,
        "posts_per_second": round(len(published) / span, 1),
        "lag_p50_s": round(_percentile(lags, 0.5), 2),
        "lag_p95_s": round(_percentile(lags, 0.95), 2),
        "lag_max_s": round(max(lags, default=float("nan")), 2),
        "lag_mean_s": round(statistics.fmean(lags), 2) if lags else None,
        "duplicates": duplicates,
        "resent_requests": sum(deliveries.values()) - len(created),
        "lost": lost,
        "unfinished": unfinished,
        "retried": sum(1 for r in rows if r["attempts"] > 1),
        "worker_cpu_ms_per_post": (
            round(1000 * float(machine["worker_cpu_s"]) / len(published), 2)  # type: ignore[arg-type]
            if published
            else None
        ),
        **machine,
    }
    print(json.dumps(report, indent=2))
    needed = args.posts / TARGET_LAG_SECONDS
    print(
        f"posts/s {report['posts_per_second']} (target >= {needed:.0f} sustained); lag p50 "
        f"{report['lag_p50_s']} s, p95 {report['lag_p95_s']} s, max {report['lag_max_s']} s "
        f"(target max <= {TARGET_LAG_SECONDS:g} s); duplicates {duplicates} (target 0); lost "
        f"{lost} (target 0); unfinished {unfinished}; worker CPU "
        f"{report['worker_cpu_ms_per_post']} ms/post"
    )
    met = (
        lost == 0
        and unfinished == 0
        and duplicates == 0
        and bool(lags)
        and max(lags) <= TARGET_LAG_SECONDS
        and len(published) == args.posts
    )
    print(
        f"targets (all within {TARGET_LAG_SECONDS:g} s of due, 0 duplicates, 0 lost): "
        + ("met" if met else "NOT met")
    )
    return 0 if met else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=50, help="attempts per worker")
    parser.add_argument("--platform-ms", type=float, default=20.0, help="fake platform latency")
    parser.add_argument("--lead", type=float, default=30.0, help="seconds until the due time")
    parser.add_argument("--spread", type=float, default=0.0, help="spread due times over S s")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up S s after due")
    parser.add_argument("--log-level", default="WARNING", help="the workers' LOG_LEVEL")
    args = parser.parse_args()
    try:
        code = asyncio.run(run(args))
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
