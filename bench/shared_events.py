"""Measure the API's CPU per subscriber per `jobEvents` event, with and without sharing
one event's result among its subscribers (schema.shared_events).

Not a test: it prints figures. The app (uvicorn, on a free loopback port) and an arq
worker run in this process against embedded Postgres and Redis (data in
/tmp/bench-shared-events, stopped at the end); N graphql-transport-ws clients run in a
child process, so this process's CPU time is the server's (and the worker's, a few ms).
For each mode: a `ping` job is queued, N clients subscribe and get its stored state, then
the worker runs the job (3 events: RUNNING, progress, SUCCEEDED) and the CPU this process
spent until every client had the last one is divided by N x events. Latency is from the
event's arrival in Redis (a subscriber in this process) to each client. The worst
event-loop stall is how late a 5 ms timer in this process fired during the fan-out.

    .venv/bin/python bench/shared_events.py --subscribers 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import multiprocessing
import os
import pstats
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets
from arq.worker import Worker
from redis.asyncio import Redis
from strawberry.relay import GlobalID

from app.asgi import create_app
from app.embedded import EmbeddedPostgres, EmbeddedRedis, ensure_database, free_port
from app.jobs.store import job_channel
from app.migrate import upgrade_head
from app.settings import Settings
from schema.shared_events import RESULTS
from workers.settings import worker_settings

DATA_DIR = Path("/tmp/bench-shared-events")
# BENCH_PROFILE=1: cProfile the fan-out (CPU time), top 25 by self time; a path ending in
# .prof: the whole profile written there too (for pstats or snakeviz).
PROFILE = os.environ.get("BENCH_PROFILE", "")
# permessage-deflate costs the server a compression per message and subscriber: off
# unless BENCH_DEFLATE=1, to measure the GraphQL work.
COMPRESSION = "deflate" if os.environ.get("BENCH_DEFLATE") else None
FIELDS = "sequence catchUp attempt status progress message result error"
SELECTIONS = {
    # `job { }` reads the row: unshared, once per subscriber and event (one pool connection
    # each), which at N=1000 exhausts the pool; `plain` leaves it out.
    "job": f"subscription($id: ID!) {{ jobEvents(id: $id) {{ {FIELDS} job {{ id status }} }} }}",
    "plain": f"subscription($id: ID!) {{ jobEvents(id: $id) {{ {FIELDS} }} }}",
}
SIGN_UP = "mutation($i: RegisterInput!) { register(input: $i) { accessToken errors { code } } }"
WORKSPACE = (
    "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }"
)
PING = "mutation($ws: ID!) { ping(workspaceId: $ws, delayMs: 50) { job { id } } }"


# ---- the clients (child process) ----


async def _subscriber(url: str, token: str, job_id: str, query: str) -> Any:
    ws = await websockets.connect(
        url, subprotocols=["graphql-transport-ws"], max_queue=None, compression=COMPRESSION
    )  # type: ignore[list-item]
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    payload = {"query": query, "variables": {"id": job_id}}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    first = json.loads(await ws.recv())
    assert first["type"] == "next", first
    return ws


async def _receive(ws: Any) -> list[tuple[int, float]]:
    got = []
    async for text in ws:
        message = json.loads(text)
        if message["type"] == "complete":
            break
        # -1: a result with errors (unshared, `job { }` can exhaust the pool at this N).
        payload = message["payload"]
        event = None if payload.get("errors") else (payload.get("data") or {}).get("jobEvents")
        got.append((event["sequence"] if event else -1, time.time()))
    await ws.close()
    return got


async def _clients(url: str, token: str, job_id: str, n: int, query: str, pipe: Connection) -> None:
    limit = asyncio.Semaphore(8)  # subscribing is not measured: stay under the pool's size

    async def one() -> Any:
        async with limit:
            return await _subscriber(url, token, job_id, query)

    sockets = await asyncio.gather(*(one() for _ in range(n)))
    pipe.send("ready")
    received = await asyncio.gather(*(_receive(ws) for ws in sockets))
    pipe.send(received)


def client_process(url: str, token: str, job_id: str, n: int, query: str, pipe: Connection) -> None:
    asyncio.run(_clients(url, token, job_id, n, query, pipe))


# ---- the server side (this process) ----


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _gql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str = ""
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    return response.json()["data"]


def _recv(pipe: Connection, proc: Any) -> Any:
    """The child's next message; None once it died without one."""
    while not pipe.poll(0.5):
        if not proc.is_alive():
            return None
    return pipe.recv()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _redis_times(redis_url: str, job_uuid: str, arrived: dict[int, float]) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(job_channel(job_uuid))
            async for message in pubsub.listen():
                if message["type"] == "message":
                    arrived.setdefault(json.loads(message["data"])["seq"], time.time())
    finally:
        await redis.aclose()


async def _loop_lag(worst: list[float], period: float = 0.005) -> None:
    """The longest the event loop kept a 5 ms timer waiting past its time: what a
    /healthz request (or any socket) would have waited during the fan-out."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        worst[0] = max(worst[0], loop.time() - due)


async def one_mode(
    settings: Settings, base: str, n: int, query: str, shared: bool
) -> dict[str, float]:
    RESULTS.enabled = shared
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        email = f"bench-{os.urandom(4).hex()}@example.com"
        signed = await _gql(
            http, SIGN_UP, {"i": {"email": email, "password": "correct horse battery", "name": "B"}}
        )
        token = signed["register"]["accessToken"]
        ws_id = (await _gql(http, WORKSPACE, {"i": {"name": "bench"}}, token))["createWorkspace"][
            "workspace"
        ]["id"]
        job_id = (await _gql(http, PING, {"ws": ws_id}, token))["ping"]["job"]["id"]
    url = base.replace("http", "ws") + "/graphql"
    # Started now, taking jobs only once the clock runs: its start-up is not measured.
    kwargs = worker_settings(settings)
    kwargs.update(handle_signals=False, poll_delay=0.05)
    worker = Worker(**kwargs)
    worker.allow_pick_jobs = False
    work = asyncio.create_task(worker.async_run())
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(
        target=client_process, args=(url, token, job_id, n, query, child)
    )
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    proc.start()
    if await loop.run_in_executor(None, _recv, parent, proc) != "ready":
        raise SystemExit("the clients failed to subscribe; see the log above")
    subscribe_seconds = time.perf_counter() - started
    arrived: dict[int, float] = {}
    listener = asyncio.create_task(
        _redis_times(settings.redis_url or "", GlobalID.from_id(job_id).node_id, arrived)
    )
    await asyncio.sleep(0.2)  # the listener is subscribed
    before = RESULTS.stats.executed
    profile = cProfile.Profile(time.process_time) if PROFILE else None
    times0, wall0 = os.times(), time.perf_counter()
    if profile:
        profile.enable()
    worst_lag = [0.0]
    lag = asyncio.create_task(_loop_lag(worst_lag))
    worker.allow_pick_jobs = True
    received: list[list[tuple[int, float]]] = await loop.run_in_executor(None, _recv, parent, proc)
    lag.cancel()
    if received is None:
        raise SystemExit("the clients failed; see the log above")
    times1, wall = os.times(), time.perf_counter() - wall0
    user, system = times1.user - times0.user, times1.system - times0.system
    cpu = user + system
    if profile:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        if PROFILE.endswith(".prof"):
            profile.dump_stats(PROFILE)
    executed = RESULTS.stats.executed - before
    await worker.close()
    work.cancel()
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await work
        await listener
    proc.join(30)
    events = len(received[0])
    lost = sum(events - len(r) for r in received)
    failed = sum(seq == -1 for r in received for seq, _ in r)
    latencies = [t - arrived[seq] for r in received for seq, t in r if seq in arrived]
    return {
        "subscribers": n,
        "events": events,
        "lost": lost,
        "failed": failed,
        "cpu_s": cpu,
        "user_s": user,
        "system_s": system,
        "cpu_ms_per_subscriber_event": 1000 * cpu / (n * events),
        "wall_s": wall,
        "p50_ms": 1000 * _percentile(latencies, 0.5),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "executions": executed,
        "subscribe_s": subscribe_seconds,
        "loop_stall_ms": 1000 * worst_lag[0],
    }


async def bench(
    settings: Settings, n: int, query: str, modes: list[bool]
) -> list[dict[str, float]]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None,
        log_level="warning", access_log=False, lifespan="on", ws_max_queue=10_000,
    )  # fmt: skip
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
            await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        return [await one_mode(settings, base, n, query, shared) for shared in modes]
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--selection", choices=sorted(SELECTIONS), default="job")
    parser.add_argument("--modes", default="unshared,shared", help="unshared,shared (in order)")
    args = parser.parse_args()
    modes = [m == "shared" for m in args.modes.split(",")]
    pg, redis = EmbeddedPostgres(DATA_DIR), EmbeddedRedis(DATA_DIR)
    try:
        database_url = asyncio.run(ensure_database(pg.start(), "bench"))
        redis_url = redis.start()
        upgrade_head(database_url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database_url,
            redis_url=redis_url,
            log_level="WARNING",
            data_dir=DATA_DIR,
            secret_key="bench-secret-key-that-is-long-enough-0123456789",
            rate_limit_anonymous=10**9,
            rate_limit_free=10**9,
            rate_limit_rejected_credentials=10**9,
            ws_max_subscriptions=10,
        )
        rows = asyncio.run(bench(settings, args.subscribers, SELECTIONS[args.selection], modes))
    finally:
        redis.stop()
        pg.stop()
    print(
        f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )
    for shared, row in zip(modes, rows, strict=True):
        name = "shared" if shared else "unshared"
        print(
            f"{name:>8}: N={row['subscribers']} events={row['events']} lost={row['lost']} "
            f"with errors={row['failed']} "
            f"executions={row['executions']} API CPU {row['cpu_s']:.2f} s "
            f"(user {row['user_s']:.2f}, system {row['system_s']:.2f}) = "
            f"{row['cpu_ms_per_subscriber_event']:.3f} ms per subscriber per event; "
            f"Redis->client p50 {row['p50_ms']:.0f} ms p99 {row['p99_ms']:.0f} ms; "
            f"fan-out wall {row['wall_s']:.2f} s; subscribe phase {row['subscribe_s']:.1f} s; "
            f"worst event-loop stall during the fan-out {row['loop_stall_ms']:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
