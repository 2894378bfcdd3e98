"""Benchmark engagement ingest: N events (1,000,000 by default) through
`POST /ingest/events` on a real API server (`smartcontent serve`, uvicorn, a child
process with --workers processes), in batches of 10,000 from a few concurrent clients,
beside raw COPY of the same rows into the same table (the physical limit on this
machine), with the machine's load.

Longer than 400 lines because it is one script a newcomer runs: servers, seeding, the
clients, both measurements and the CPU accounting side by side.

Not a test: it prints figures. It uses DATABASE_URL / REDIS_URL if set, else starts an
embedded Postgres and Redis (data in /tmp/bench-ingest-smartcontent); creates a fresh
database `bench_ingest`, migrates it, creates the monthly partitions the events fall in,
and seeds one workspace with 100 content items and a member API key. The events (ids,
global content ids, times over the last 20 days, small properties on one in ten) are
serialised before the clock starts. Then:

1. ingest: the batches are POSTed by --clients concurrent clients; events/s is N over the
   wall time from the first request to the last answer (accepted must equal N);
2. the rollup worker's share, off the ingest path and not in the ratio: the time and
   Postgres CPU of `rollups.apply_pending` counting every ingested batch into the rollups;
3. raw COPY: the tables are emptied, and the same rows (already as Python tuples) are
   COPYed straight into `engagement_events` over --clients connections, batch by batch;
4. the ratio ingest / raw COPY against the target (>= 50 %).

CPU pressure (Linux PSI: the share of time some task waited for a CPU) and the load
average are printed per phase: this machine is shared, and the figures mean little when
others were busy.

    make bench-ingest
    .venv/bin/python bench/ingest_bench.py --events 100000 --clients 3 --workers 2

Exit code 0 when the target is met, 1 otherwise, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from app.db import create_engine, create_session_factory, plain_pg_url
from app.embedded import EmbeddedPostgres, EmbeddedRedis, with_database
from app.migrate import upgrade_head
from app.security import tokens
from app.services.analytics import partitions, rollups
from app.settings import Settings

DATA_DIR = Path("/tmp/bench-ingest-smartcontent")
DATABASE = "bench_ingest"
TARGET_RATIO = 0.5
TYPES = ("VIEW", "IMPRESSION", "CLICK", "LIKE", "SHARE", "COMMENT", "CONVERSION")
COLUMNS = (
    "workspace_id",
    "event_id",
    "content_id",
    "target_id",
    "platform",
    "event_type",
    "occurred_at",
    "value",
    "properties",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_stall() -> float | None:
    """Seconds some runnable task waited for a CPU so far (Linux PSI), or None."""
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some "):
                return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return None
    return None


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def tree_cpu(parent: int | None) -> float:
    """CPU seconds of a process, its reaped children and its live children (Postgres and
    its backends); 0 when unknown."""
    if parent is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    fields = _stat(parent)
    total = 0.0 if fields is None else sum(int(f) for f in fields[11:15]) / tick
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = _stat(int(entry.name))
            if child is not None and int(child[1]) == parent:
                total += (int(child[11]) + int(child[12])) / tick
    return total


@dataclass
class Phase:
    seconds: float
    stall: float | None
    load: float
    cpu: dict[str, float]  # CPU seconds by process: what the work costs, whatever the load

    def describe(self) -> str:
        pressure = (
            f"CPU pressure {self.stall / self.seconds * 100:.0f}%"
            if self.stall is not None
            else "CPU pressure n/a"
        )
        return f"{pressure}, load average {self.load:.2f} on {os.cpu_count()} cores"


@contextlib.asynccontextmanager
async def measured(out: list[Phase], watched: dict[str, int | None]) -> Any:
    """Time a phase, with the CPU seconds of `watched` processes (and this one) in it."""
    cpu_before = {name: tree_cpu(pid) for name, pid in watched.items()}
    own = time.process_time()
    stall, started = cpu_stall(), time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    end_stall = cpu_stall()
    cpu = {name: tree_cpu(pid) - cpu_before[name] for name, pid in watched.items()}
    cpu["bench client"] = time.process_time() - own
    out.append(
        Phase(
            seconds,
            None if stall is None or end_stall is None else end_stall - stall,
            os.getloadavg()[0],
            cpu,
        )
    )


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


async def _seed(database_url: str, contents: int) -> tuple[uuid.UUID, list[uuid.UUID], str]:
    workspace = uuid.uuid4()
    content_ids = [uuid.uuid4() for _ in range(contents)]
    prefix = secrets.token_hex(5)
    key = f"sk_{prefix}_{secrets.token_urlsafe(32)}"
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        await conn.execute(
            "INSERT INTO workspaces (id, name, brand_voice, plan) "
            "VALUES ($1, 'Bench', '{}', 'enterprise')",
            workspace,
        )
        await conn.executemany(
            "INSERT INTO contents (id, workspace_id, title, body, content_type, format, status)"
            " VALUES ($1, $2, 'Item', 'Body', 'SOCIAL_POST', 'PLAIN', 'PUBLISHED')",
            [(c, workspace) for c in content_ids],
        )
        await conn.execute(
            "INSERT INTO api_keys (id, workspace_id, name, role, prefix, secret_hash) "
            "VALUES ($1, $2, 'bench', 'MEMBER', $3, $4)",
            uuid.uuid4(),
            workspace,
            prefix,
            tokens.token_hash(key),
        )
    finally:
        await conn.close()
    return workspace, content_ids, key


def _events(
    count: int, content_ids: list[uuid.UUID], seed: int
) -> list[tuple[dict[str, Any], uuid.UUID]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    global_ids = {c: base64.b64encode(f"Content:{c}".encode()).decode() for c in content_ids}
    out = []
    for _ in range(count):
        content = rng.choice(content_ids)
        kind = rng.choice(TYPES)
        event: dict[str, Any] = {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4).hex,
            "contentId": global_ids[content],
            "type": kind,
            "occurredAt": (now - timedelta(seconds=rng.randint(60, 20 * 86400))).isoformat(),
        }
        if kind == "CONVERSION":
            event["value"] = round(rng.uniform(1, 200), 2)
        if rng.random() < 0.1:
            event["properties"] = {"utm_source": rng.choice(["news", "x", "ads"]), "app": "web"}
        out.append((event, content))
    return out


def _records(
    workspace: uuid.UUID, events: list[tuple[dict[str, Any], uuid.UUID]]
) -> list[tuple[Any, ...]]:
    """The rows ingest stores, as COPY takes them."""
    rows = []
    for event, content in events:
        value = event.get("value")
        props = event.get("properties")
        rows.append(
            (
                workspace,
                event["id"],
                content,
                None,
                None,
                event["type"],
                datetime.fromisoformat(event["occurredAt"]),
                None if value is None else Decimal(repr(value)),
                None if props is None else orjson.dumps(props).decode(),
            )
        )
    return rows


class ApiServer:
    """`smartcontent serve` as a child process (its event loop is not the clients')."""

    def __init__(self, database_url: str, redis_url: str, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir = DATA_DIR / "app"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        unlimited = str(10**9)
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            ENVIRONMENT="development",
            LOG_LEVEL="WARNING",
            DATA_DIR=str(data_dir),
            MEDIA_DIR=str(data_dir / "media"),
            SECRET_KEY=secrets.token_urlsafe(48),
            RATE_LIMIT_ENTERPRISE=unlimited,
            GRACEFUL_SHUTDOWN_SECONDS="5",
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            cwd=data_dir,
            start_new_session=True,
        )

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit("smartcontent serve exited; see its log above")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.url + "/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise SystemExit("smartcontent serve was not ready within 90 s")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def _ingest(url: str, key: str, bodies: list[bytes], clients: int) -> dict[str, int]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    totals = {"accepted": 0, "duplicate": 0, "refused": 0}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def client() -> None:
        async with httpx.AsyncClient(timeout=120) as http:
            while not queue.empty():
                body = queue.get_nowait()
                response = await http.post(url + "/ingest/events", content=body, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"ingest failed: {response.status_code} {response.text}")
                report = response.json()
                for name in totals:
                    totals[name] += report[name]

    await asyncio.gather(*(client() for _ in range(clients)))
    return totals


async def _raw_copy(database_url: str, batches: list[list[tuple[Any, ...]]], clients: int) -> None:
    queue: asyncio.Queue[list[tuple[Any, ...]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def client() -> None:
        conn = await asyncpg.connect(plain_pg_url(database_url))
        try:
            while not queue.empty():
                batch = queue.get_nowait()
                await conn.copy_records_to_table(
                    "engagement_events", records=batch, columns=COLUMNS
                )
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))


async def _count(database_url: str) -> int:
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM engagement_events"))
    finally:
        await conn.close()


async def _empty(database_url: str) -> None:
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        await conn.execute(
            "TRUNCATE engagement_events, engagement_event_ids, engagement_rollup_deltas, "
            "engagement_batches"
        )
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> int:
    pg = redis = None
    server: ApiServer | None = None
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    try:
        if not database_url:
            pg = EmbeddedPostgres(DATA_DIR)
            database_url = pg.start()
        if not redis_url:
            redis = EmbeddedRedis(DATA_DIR)
            redis_url = redis.start()
        database_url = await _database(database_url)
        settings = Settings(_env_file=None, database_url=database_url, redis_url=redis_url)  # type: ignore[call-arg]
        engine = create_engine(database_url, settings, application_name="bench")
        factory = create_session_factory(engine)
        last_month = partitions.add_months(partitions.month_start(datetime.now(UTC)), -1)
        await partitions.ensure_partitions(factory, 3, now=last_month)
        await engine.dispose()
        workspace, content_ids, key = await _seed(database_url, args.contents)
        print(f"preparing {args.events:,} events in batches of {args.batch:,}")
        events = _events(args.events, content_ids, args.seed)
        bodies = [
            orjson.dumps([e for e, _ in events[i : i + args.batch]])
            for i in range(0, len(events), args.batch)
        ]
        records = _records(workspace, events)
        batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
        del events
        server = ApiServer(database_url, redis_url, args.workers)
        await server.wait_ready()
        # One small batch first: connections, caches and the staging table warm.
        warm = orjson.dumps(
            [
                {
                    "id": f"warm-{i}",
                    "contentId": str(content_ids[0]),
                    "type": "VIEW",
                    "occurredAt": datetime.now(UTC).isoformat(),
                }
                for i in range(100)
            ]
        )
        await _ingest(server.url, key, [warm] * args.clients, args.clients)
        await _empty(database_url)
        phases: list[Phase] = []
        pg_pid = int((pg.pgdata / "postmaster.pid").read_text().split()[0]) if pg else None
        watched = {"api server": server.process.pid, "postgres": pg_pid}
        print(f"ingest: {len(bodies)} requests from {args.clients} clients to {server.url}")
        async with measured(phases, watched):
            totals = await _ingest(server.url, key, bodies, args.clients)
        stored = await _count(database_url)
        # The rollup worker's share, off the ingest path: counting the batches into the
        # hourly and daily rollups (what `rollup_engagement` does within seconds).
        engine = create_engine(database_url, settings, application_name="bench")
        async with measured(phases, {"postgres": pg_pid}):
            applied = await rollups.apply_pending(create_session_factory(engine))
        await engine.dispose()
        server.stop()
        server = None
        await _empty(database_url)
        print(f"raw COPY: {len(batches)} batches over {args.clients} connections")
        async with measured(phases, {"postgres": pg_pid}):
            await _raw_copy(database_url, batches, args.clients)
        copied = await _count(database_url)
        ingest, rollup, copy = phases
        ingest_rate = args.events / ingest.seconds
        copy_rate = args.events / copy.seconds
        ratio = ingest_rate / copy_rate
        cpu_ingest = sum(ingest.cpu.values()) / args.events * 1e6
        cpu_copy = sum(copy.cpu.values()) / args.events * 1e6
        report = {
            "events": args.events,
            "batch": args.batch,
            "clients": args.clients,
            "api_workers": args.workers,
            "ingest": {
                **totals,
                "stored": stored,
                "seconds": round(ingest.seconds, 2),
                "events_per_second": round(ingest_rate),
                "machine": ingest.describe(),
                "cpu_seconds": {k: round(v, 1) for k, v in ingest.cpu.items()},
                "cpu_us_per_event": round(cpu_ingest, 1),
            },
            "rollup_after_ingest": {
                "batches": applied,
                "seconds": round(rollup.seconds, 2),
                "events_per_second": round(args.events / rollup.seconds),
                "machine": rollup.describe(),
                "cpu_us_per_event": round(sum(rollup.cpu.values()) / args.events * 1e6, 1),
            },
            "raw_copy": {
                "stored": copied,
                "seconds": round(copy.seconds, 2),
                "rows_per_second": round(copy_rate),
                "machine": copy.describe(),
                "cpu_seconds": {k: round(v, 1) for k, v in copy.cpu.items()},
                "cpu_us_per_row": round(cpu_copy, 1),
            },
            "ratio": round(ratio, 3),
            # What the ratio would be with the same CPU for both (a shared machine's load
            # moves wall-clock rates; CPU per event moves much less).
            "cpu_ratio": round(cpu_copy / cpu_ingest, 3) if cpu_ingest else None,
            "target_ratio": TARGET_RATIO,
        }
        print(json.dumps(report, indent=2))
        met = ratio >= TARGET_RATIO and totals["accepted"] == args.events == stored
        print(
            f"ingest {ingest_rate:,.0f} events/s vs raw COPY {copy_rate:,.0f} rows/s: "
            f"{ratio:.0%} (target >= {TARGET_RATIO:.0%}): " + ("met" if met else "NOT met")
        )
        return 0 if met else 1
    finally:
        if server is not None:
            server.stop()
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="events per request")
    parser.add_argument("--clients", type=int, default=3, help="concurrent clients")
    parser.add_argument(
        "--workers", type=int, default=2, help="API server processes (one per core)"
    )
    parser.add_argument("--contents", type=int, default=100, help="content items")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    try:
        code = asyncio.run(run(args))
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


if __name__ == "__main__":
    main()
