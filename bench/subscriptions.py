"""Realtime at scale: N `jobEvents` subscribers over graphql-transport-ws, on one shared job
(scenario A) and on N different jobs at a total event rate (scenario B), against the real
`smartcontent serve` (one process, or `--replicas 2` behind one port) -- issue 13's table.

Longer than 400 lines because it is one self-contained benchmark (servers, client, health
and publisher processes, the figures and the report) meant to be read and run alone.

It creates a fresh database (`bench_subscriptions`) on the server named by DATABASE_URL or
an embedded one, migrates it, starts `smartcontent serve` (rate limits out of the way, as
content_bench.py does) and `smartcontent worker` as child processes for the whole bench,
registers a user and a workspace through the API, then for each scenario and N (one after
the other; a new API process per scenario) opens N websockets from several client
processes (asyncio + `websockets`; their CPU is printed: they must never be the
bottleneck), sends `connection_init` with the token, subscribes every socket at once (or
`--subscribe-window` at a time) and waits for every first event (the stored state,
`catchUp`), then:

- A "one job": the N sockets follow one `ping` job queued through the mutation while the
  worker is paused (SIGSTOP); it resumes once every subscriber is in, so the job's three
  events (RUNNING, progress 0.5, SUCCEEDED after `--delay-ms`) take the real path
  worker -> Redis -> hub -> socket. Their publish times are taken by a Redis subscriber of
  the job's channel in this process.
- B "many jobs": the N sockets follow N jobs whose rows this bench inserts (RUNNING, lease
  an hour ahead, so no worker or sweeper touches them); a publisher process moves them at
  `--rate` events/s in total (default: one per job per second) the way the worker does --
  a guarded UPDATE bumping `event_seq` (batched per 10 ms tick), then `runner.publish`
  over the worker's BatchingPublisher -- stamping each event's publish time, and finally
  makes every job SUCCEEDED, at the same rate. The real worker cannot produce that rate
  (ping: 3 events).

Per run it prints: connect and subscribe phases (wall, API CPU per connection and per
subscribe), publish-to-client latency p50/p99/max, deliveries/s, lost events (a
subscriber's sequence skipped, or never reached the job's last one), reordered ones
(sequence not increasing), catch-up events after the first, failed and unfinished
subscriptions (and the events they lacked), API RSS before / subscribed /
after the events / after every socket closed, and the worst `/healthz` response of a
separate process polling it every 20 ms over the whole run. With `--replicas 2` the API is
`serve --workers 2` (uvicorn's workers accept on one inherited socket: the kernel spreads
the connections, nothing in between to measure), and each replica's sockets, CPU and RSS
are printed. Exit status 1 when a target is not met.

    make bench-subscriptions                                   # N='100 1000' ARGS='--quick'
    .venv/bin/python bench/subscriptions.py --quick            # N=100,1000, short phases
    .venv/bin/python bench/subscriptions.py --subscribers 1000 --replicas 2 --scenarios B
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import http.client
import itertools
import json
import multiprocessing
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop
from redis import asyncio as aioredis
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent))

import content_bench as cb
from versus_postgraphile import descendants_cpu

from app.db import plain_pg_url
from app.embedded import EmbeddedPostgres, EmbeddedRedis, with_database
from app.jobs import runner
from app.jobs.store import job_channel
from app.migrate import upgrade_head
from app.models import Job
from app.settings import Settings
from schema.ids import to_global_id
from workers.runtime import BatchingPublisher

DATABASE = "bench_subscriptions"
DATA_DIR = Path("/tmp/bench-subscriptions-smartcontent")
FOLLOW = """subscription($id: ID!) { jobEvents(id: $id) {
  sequence attempt status progress message catchUp } }"""
PING = """mutation($w: ID!, $d: Int!) { ping(workspaceId: $w, message: "bench", delayMs: $d) {
  job { id } errors { code message } } }"""
HEALTHZ_EVERY = 0.02
TICK = 0.01  # the publisher's batch period (scenario B)
# Handshakes in flight per client process: the API's accept backlog is finite.
IN_FLIGHT = 64
SETTLE_SECONDS = 3.0  # between runs: the last one's closes and collections done

TARGETS = {
    "lost or reordered events, failed or unfinished subscriptions": ("==", 0.0),
    "API CPU per subscribe (ms)": ("<", 1.0),
    "A: one event to N subscribers, p99 (ms; the target is at N=10,000)": ("<", 1000.0),
    "B: N jobs at the rate, p99 (ms; the target is N=1,000 at 1,000/s)": ("<", 100.0),
    "worst /healthz response during a run (ms)": ("<", 100.0),
}


# --- Helper processes (forked at start, before any event loop or server) ------------------


@dataclass
class Sock:
    ws: Any
    events: list[tuple[int, bool, float]] = field(default_factory=list)
    first: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None
    task: asyncio.Task[None] | None = None

    def reset(self) -> None:
        self.events, self.error = [], None
        self.first, self.done = asyncio.Event(), asyncio.Event()


class ClientPool:
    """One client process: its share of the websockets, driven by commands on a pipe; each
    reply carries the process's CPU seconds so far."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.socks: list[Sock] = []
        self.round = 0

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, *params = await loop.run_in_executor(None, self.conn.recv)
            if command == "exit":
                return
            reply = await getattr(self, command)(*params)
            reply["cpu"] = time.process_time()
            self.conn.send(reply)

    async def connect(self, url: str, token: str, count: int, seconds: float) -> dict[str, Any]:
        gate = asyncio.Semaphore(IN_FLIGHT)
        init = json.dumps(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        )

        async def open_one() -> Sock:
            async with gate:
                ws = await ws_connect(
                    url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                    ping_interval=None, max_size=None, open_timeout=seconds, close_timeout=2,
                )  # fmt: skip
                await ws.send(init)
                ack = json.loads(await asyncio.wait_for(ws.recv(), seconds))
                if ack.get("type") != "connection_ack":
                    await ws.close()
                    raise RuntimeError(f"no connection_ack: {ack}")
            sock = Sock(ws)
            sock.task = asyncio.create_task(self.receive(sock))
            return sock

        started = time.time()
        outcomes = await asyncio.gather(*(open_one() for _ in range(count)), return_exceptions=True)
        self.socks = [s for s in outcomes if isinstance(s, Sock)]
        failures = [repr(e)[:200] for e in outcomes if isinstance(e, BaseException)]
        return {"started": started, "ended": time.time(), "failures": failures}

    async def receive(self, sock: Sock) -> None:
        try:
            async for raw in sock.ws:
                at = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    event = (message["payload"].get("data") or {}).get("jobEvents")
                    if event is None:
                        sock.error = str(message["payload"].get("errors"))[:300]
                    else:
                        sock.events.append((event["sequence"], event["catchUp"], at))
                    sock.first.set()
                elif kind in ("complete", "error"):
                    if kind == "error":
                        sock.error = str(message.get("payload"))[:300]
                    sock.first.set()
                    sock.done.set()
                elif kind == "ping":
                    await sock.ws.send('{"type": "pong"}')
        except ConnectionClosed as exc:
            sock.error = sock.error or f"closed: {exc}"[:300]
        sock.first.set()
        sock.done.set()

    async def subscribe(self, job_ids: list[str], seconds: float, window: int) -> dict[str, Any]:
        """Every socket subscribes (all at once, or at most `window` awaiting their first
        event); returns when each has its first event or after `seconds`."""
        self.round += 1
        for sock in self.socks:
            sock.reset()
        gate = asyncio.Semaphore(window or len(self.socks) or 1)

        async def one(sock: Sock, job_id: str) -> None:
            payload = {"query": FOLLOW, "variables": {"id": job_id}}
            message = json.dumps({"id": str(self.round), "type": "subscribe", "payload": payload})
            async with gate:
                await sock.ws.send(message)
                await sock.first.wait()

        started = time.time()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                pairs = zip(self.socks, job_ids, strict=False)
                await asyncio.gather(*(one(s, j) for s, j in pairs), return_exceptions=True)
        ready = [s.events[0][2] if s.events else None for s in self.socks]
        errors = [s.error for s in self.socks if s.error]
        return {"started": started, "ready": ready, "errors": errors}

    async def collect(self, seconds: float) -> dict[str, Any]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                for sock in self.socks:
                    await sock.done.wait()
        return {
            "events": [s.events for s in self.socks],
            "complete": [s.done.is_set() and s.error is None for s in self.socks],
            "errors": [s.error for s in self.socks if s.error],
        }

    async def cpu(self) -> dict[str, Any]:
        return {}  # the reply carries it

    async def close(self) -> dict[str, Any]:
        await asyncio.gather(*(s.ws.close() for s in self.socks), return_exceptions=True)
        for sock in self.socks:
            if sock.task is not None:
                sock.task.cancel()
        self.socks = []
        return {}


def client_process(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    uvloop.run(ClientPool(conn).serve())


def healthz_process(conn: Connection) -> None:
    """On ("poll", port): GET /healthz on a new connection every 20 ms until told to stop,
    then reply with each request's start (wall clock) and response time (seconds), and the
    failures."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while (command := conn.recv())[0] == "poll":
        times: list[float] = []
        starts: list[float] = []
        failures = 0
        while not conn.poll(HEALTHZ_EVERY):
            starts.append(time.time())
            started = time.perf_counter()
            http_conn = http.client.HTTPConnection("127.0.0.1", command[1], timeout=60)
            try:
                http_conn.request("GET", "/healthz")
                response = http_conn.getresponse()
                response.read()
                failures += response.status != 200
            except OSError:
                failures += 1
            finally:
                http_conn.close()
            times.append(time.perf_counter() - started)
        conn.recv()  # the stop
        conn.send({"times": times, "starts": starts, "failures": failures})


async def publish_events(
    database_url: str, redis_url: str, jobs: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    """Scenario B's publisher: the worker's two steps (a guarded UPDATE bumping event_seq,
    then `runner.publish`), for `rate` events/s over `jobs` in turn, then each job's final
    SUCCEEDED. Returns each event's publish time by (job index, sequence)."""
    conn = await asyncpg.connect(plain_pg_url(database_url))
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    redis = aioredis.Redis.from_url(redis_url)
    publisher = BatchingPublisher(redis)
    index = {uuid.UUID(j): n for n, j in enumerate(jobs)}
    stamps: dict[tuple[int, int], float] = {}
    step = """UPDATE jobs SET event_seq = event_seq + 1, progress = $2, message = 'bench',
      updated_at = now() WHERE id = ANY($1::uuid[]) AND status = 'RUNNING' RETURNING *"""
    finish = """UPDATE jobs SET event_seq = event_seq + 1, status = 'SUCCEEDED', progress = 1,
      result = '{}', locked_until = NULL, finished_at = now(), updated_at = now()
      WHERE id = ANY($1::uuid[]) AND status = 'RUNNING' RETURNING *"""

    async def announce(rows: list[asyncpg.Record]) -> None:
        at = time.time()
        for row in rows:
            stamps[(index[row["id"]], row["event_seq"])] = at
        await asyncio.gather(*(runner.publish(publisher, Job(**dict(row))) for row in rows))

    cpu, started, sent, turn = time.process_time(), time.perf_counter(), 0, 0
    ids = [uuid.UUID(j) for j in jobs]
    try:
        while (elapsed := time.perf_counter() - started) < seconds:
            due = min(int(rate * elapsed) - sent, len(ids))
            if due > 0:
                batch = [ids[(turn + k) % len(ids)] for k in range(due)]
                turn = (turn + due) % len(ids)
                await announce(await conn.fetch(step, batch, min(1.0, elapsed / seconds)))
                sent += due
            await asyncio.sleep(TICK)
        elapsed = time.perf_counter() - started
        # The final events at the same rate: all N at once would be a burst far above it
        # (it made the p99 of a 5 s run measure 1,000 events published in one instant).
        chunk = max(1, round(rate * TICK))
        for first in range(0, len(ids), chunk):
            await announce(await conn.fetch(finish, ids[first : first + chunk]))
            await asyncio.sleep(TICK)
        finals = await conn.fetch("SELECT id, event_seq FROM jobs WHERE id = ANY($1::uuid[])", ids)
    finally:
        await conn.close()
        await redis.aclose()
    final_seq = [0] * len(ids)
    for row in finals:
        final_seq[index[row["id"]]] = row["event_seq"]
    return {
        "stamps": stamps,
        "final_seq": final_seq,
        "sent": sent,
        "elapsed": elapsed,
        "cpu": time.process_time() - cpu,
    }


def publisher_process(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while (command := conn.recv())[0] == "publish":
        conn.send(uvloop.run(publish_events(*command[1:])))


class Helpers:
    """The forked helper processes and their pipes."""

    def __init__(self, clients: int) -> None:
        context = multiprocessing.get_context("fork")
        self.processes: list[multiprocessing.process.BaseProcess] = []

        def start(target: Any) -> Connection:
            ours, theirs = context.Pipe()
            process = context.Process(target=target, args=(theirs,), daemon=True)
            process.start()
            self.processes.append(process)
            return ours

        self.clients = [start(client_process) for _ in range(clients)]
        self.client_pids = [p.pid for p in self.processes if p.pid is not None]
        self.healthz = start(healthz_process)
        self.publisher = start(publisher_process)

    async def ask(self, conn: Connection, *command: Any) -> Any:
        conn.send(command)
        return await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    async def all_clients(self, commands: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(self.ask(c, *cmd) for c, cmd in zip(self.clients, commands, strict=True))
            )
        )

    def stop(self) -> None:
        for conn in [*self.clients, self.healthz, self.publisher]:
            with contextlib.suppress(OSError, ValueError):
                conn.send(("exit",))
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


# --- The API and the worker ---------------------------------------------------------------


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def serving_pids(server: cb.ApiServer, replicas: int) -> list[int]:
    """The processes that answer: `serve` itself, or with several workers uvicorn's
    spawned children (not its supervisor, nor multiprocessing's resource tracker)."""
    if replicas == 1:
        return [server.process.pid]
    found = []
    for entry in Path("/proc").iterdir():
        fields = cb._stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == server.process.pid:
            cmdline = (entry / "cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                found.append(int(entry.name))
    return sorted(found)


def established(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections on `port` held by each of `pids` (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "01" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    counts = {}
    for pid in pids:
        count = 0
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    count += link.startswith("socket:[") and link[8:-1] in inodes
        counts[pid] = count
    return counts


class Worker:
    """`smartcontent worker --queue jobs` as a child process."""

    def __init__(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "app.cli", "worker", "--queue", "jobs"]
        self.process = subprocess.Popen(command, env=env, cwd=DATA_DIR, start_new_session=True)

    def pause(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Setup:
    database_url: str
    redis_url: str
    env: dict[str, str]
    email: str
    workspace: str
    workspace_uuid: uuid.UUID


async def sign_in(url: str, setup: Setup) -> str:
    async with httpx.AsyncClient() as http:
        login = {"email": setup.email, "password": cb.PASSWORD}
        data = await cb.gql(http, url + "/graphql", cb.LOGIN, {"i": login})
    token: str = data["login"]["accessToken"]
    return token


async def register(url: str) -> tuple[str, str]:
    async with httpx.AsyncClient() as http:
        email = f"subs-{uuid.uuid4().hex[:8]}@example.com"
        account = {"email": email, "password": cb.PASSWORD, "name": "Bench User"}
        data = await cb.gql(http, url + "/graphql", cb.REGISTER, {"i": account})
        token = data["register"]["accessToken"]
        data = await cb.gql(
            http, url + "/graphql", cb.CREATE_WORKSPACE, {"i": {"name": "Subs"}}, token
        )
    return email, data["createWorkspace"]["workspace"]["id"]


async def insert_jobs(database_url: str, workspace: uuid.UUID, n: int) -> list[uuid.UUID]:
    """N running jobs nobody runs: leased an hour ahead, so the sweeper leaves them alone."""
    ids = [uuid.uuid4() for _ in range(n)]
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        await conn.execute(
            """INSERT INTO jobs (id, workspace_id, kind, status, payload, attempts, max_attempts,
                 event_seq, progress, enqueue_generation, locked_until, started_at)
               SELECT id, $2, 'ping', 'RUNNING', '{}', 1, 1, 1, 0, 0,
                 now() + interval '1 hour', now() FROM unnest($1::uuid[]) AS id""",
            ids,
            workspace,
        )
    finally:
        await conn.close()
    return ids


# --- One run -------------------------------------------------------------------------------


@dataclass
class Figures:
    scenario: str
    n: int
    replicas: int
    connected: int
    subscribed: int
    connect_s: float
    connect_api_cpu_ms: float  # per connection (handshake + connection_init)
    subscribe_s: float
    subscribe_api_cpu_ms: float  # per subscribe, until its first event
    published: int
    deliveries: int
    delivered_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    reordered: int
    catch_ups: int
    failed: int  # subscriptions without a first event (socket refused, subscribe error)
    incomplete: int  # subscribed, then not completed by the deadline or ended by an error
    undelivered: int  # the events those had not received by then
    delivery_api_cpu_s: float
    rss_before_mb: float
    rss_subscribed_mb: float
    rss_after_events_mb: float
    rss_closed_mb: float
    kb_per_subscriber: float
    healthz_worst_ms: float
    healthz_p99_ms: float
    healthz_failures: int
    # The worst /healthz response that started in each phase: connect, subscribe, events,
    # close (to tell a handshake or subscribe storm from a fan-out).
    healthz_phases: dict[str, float]
    client_cpu_s: float  # all client processes, the whole run
    client_busiest: float  # the busiest client process's CPU over the run's wall time
    publisher_cpu_s: float | None
    achieved_rate: float | None
    replicas_detail: list[dict[str, Any]]
    first_error: str | None


def worst_by_phase(
    starts: list[float], times: list[float], phase_starts: dict[str, float]
) -> dict[str, float]:
    """The worst response time (ms) of the requests that started in each phase (phases in
    the order given, each until the next one starts)."""
    bounds = sorted(phase_starts.items(), key=lambda item: item[1])
    worst = dict.fromkeys(phase_starts, 0.0)
    for started, took in zip(starts, times, strict=True):
        phase = next((name for name, at in reversed(bounds) if started >= at), None)
        if phase is not None:
            worst[phase] = max(worst[phase], took * 1000)
    return worst


def shares(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[p::parts] for p in range(parts)]


def sequence_faults(
    events: list[tuple[int, bool, float]], last: int, complete: bool
) -> tuple[int, int, int, int]:
    """(lost, reordered, catch-ups after the first, undelivered) for one subscriber's events:
    a sequence skipped is lost (so is the job's `last` one never reached by a subscription
    that completed); what an unfinished subscription had not received yet is undelivered."""
    lost = reordered = catch_ups = 0
    for (prev, _, _), (seq, catch_up, _) in itertools.pairwise(events):
        if seq <= prev:
            reordered += 1
        elif seq > prev + 1:
            lost += seq - prev - 1
        catch_ups += catch_up
    behind = max(0, last - max((seq for seq, _, _ in events), default=last))
    return lost + (behind if complete else 0), reordered, catch_ups, 0 if complete else behind


def fan_out_seconds(
    events: list[list[tuple[int, bool, float]]],
    job_index: list[int],
    published_at: dict[tuple[int, int], float],
) -> float:
    """How long events were on their way: the union of the intervals from each event's
    publish to its last delivery (one job's events spaced by a delay do not count the
    delay; a steady stream counts its whole span)."""
    last: dict[tuple[int, int], float] = {}
    for i, got in enumerate(events):
        for seq, _, at in got[1:]:
            key = (job_index[i], seq)
            last[key] = max(last.get(key, at), at)
    spans = sorted((published_at[k], t) for k, t in last.items() if k in published_at)
    total, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


async def one_run(
    helpers: Helpers,
    setup: Setup,
    server: cb.ApiServer,
    worker: Worker,
    scenario: str,
    n: int,
    args: argparse.Namespace,
) -> Figures:
    observer: asyncio.Task[None] | None = None
    published_at: dict[tuple[int, int], float] = {}
    try:
        pids = serving_pids(server, args.replicas)
        token = await sign_in(server.url, setup)

        def cpu() -> float:
            return descendants_cpu(server.process.pid)

        def rss() -> float:
            return sum(rss_mb(p) for p in pids)

        per_cpu_start = {p: cb._cpu(p, children=False) for p in pids}
        rss_before, wall_start = rss(), time.time()
        parts = len(helpers.clients)
        client_cpu_start = [r["cpu"] for r in await helpers.all_clients([("cpu",)] * parts)]
        helpers.healthz.send(("poll", server.port))
        ws_url = server.url.replace("http://", "ws://") + "/graphql"
        timeout = 60 + n / 20  # N=3,000 took 120 s to subscribe at load 6-9

        phase_starts = {"connect": time.time()}
        cpu0 = cpu()
        counts = [len(s) for s in shares(list(range(n)), parts)]
        replies = await helpers.all_clients(
            [("connect", ws_url, token, c, timeout) for c in counts]
        )
        cpu1 = cpu()
        connect_s = max(r["ended"] for r in replies) - min(r["started"] for r in replies)
        errors = [e for r in replies for e in r["failures"]]
        connected = n - len(errors)

        if scenario == "A":
            worker.pause()  # the job must not start before every subscriber is in
            async with httpx.AsyncClient() as http:
                variables = {"w": setup.workspace, "d": args.delay_ms}
                data = await cb.gql(http, server.url + "/graphql", PING, variables, token)
            job_gid = data["ping"]["job"]["id"]
            job_ids = [job_gid] * n
        else:
            rows = await insert_jobs(setup.database_url, setup.workspace_uuid, n)
            job_ids = [str(to_global_id("Job", r)) for r in rows]
        cpu2 = cpu()
        phase_starts["subscribe"] = time.time()
        replies = await helpers.all_clients(
            [("subscribe", ids, timeout, args.subscribe_window) for ids in shares(job_ids, parts)]
        )
        cpu3 = cpu()
        ready = [t for r in replies for t in r["ready"] if t is not None]
        subscribe_s = (max(ready) if ready else time.time()) - min(r["started"] for r in replies)
        errors += [e for r in replies for e in r["errors"]]
        rss_subscribed = rss()
        sockets = established(pids, server.port)
        per_cpu_subscribed = {p: cb._cpu(p, children=False) for p in pids}
        phase_starts["events"] = time.time()

        if scenario == "A":
            redis = aioredis.Redis.from_url(setup.redis_url)
            pubsub = redis.pubsub()
            await pubsub.subscribe(job_channel(cb.node_uuid(job_gid)))

            async def observe() -> None:
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        published_at[(0, json.loads(message["data"])["seq"])] = time.time()

            observer = asyncio.create_task(observe())
            worker.resume()
            replies = await helpers.all_clients(
                [("collect", args.delay_ms / 1000 + 60 + n / 100)] * parts
            )
            observer.cancel()
            await pubsub.aclose()
            await redis.aclose()
            final_seq: list[int] = [max((s for _, s in published_at), default=0)] * n
            job_index = [0] * n
            publisher_cpu = achieved = None
        else:
            helpers.publisher.send(
                (
                    "publish",
                    setup.database_url,
                    setup.redis_url,
                    [str(r) for r in rows],
                    args.rate or n,
                    args.duration,
                )
            )
            replies = await helpers.all_clients([("collect", args.duration + 30 + n / 50)] * parts)
            result = await asyncio.get_running_loop().run_in_executor(None, helpers.publisher.recv)
            published_at, final_seq = result["stamps"], result["final_seq"]
            job_index = list(range(n))
            publisher_cpu, achieved = result["cpu"], result["sent"] / result["elapsed"]
        cpu4 = cpu()
        rss_after_events = rss()
        per_cpu_events = {p: cb._cpu(p, children=False) for p in pids}

        # Per subscriber (in job_ids' order: socket k of client p follows job p + k * parts).
        events: list[list[tuple[int, bool, float]]] = [[] for _ in range(n)]
        complete = [False] * n
        for part, reply in enumerate(replies):
            for k, (got, done) in enumerate(zip(reply["events"], reply["complete"], strict=True)):
                events[part + k * parts], complete[part + k * parts] = got, done
        errors += [e for r in replies for e in r["errors"]]
        failed = sum(not got for got in events)  # not connected, or no first event
        incomplete = sum(bool(got) and not done for got, done in zip(events, complete, strict=True))
        latencies, lost, reordered, catch_ups, undelivered = [], 0, 0, 0, 0
        for i, got in enumerate(events):
            if not got:
                continue
            faults = sequence_faults(got, final_seq[i], complete[i])
            lost, reordered = lost + faults[0], reordered + faults[1]
            catch_ups, undelivered = catch_ups + faults[2], undelivered + faults[3]
            for seq, _, at in got[1:]:
                if (stamp := published_at.get((job_index[i], seq))) is not None:
                    latencies.append(at - stamp)
        latencies.sort()
        deliveries = sum(max(0, len(got) - 1) for got in events)
        busy = fan_out_seconds(events, job_index, published_at)

        phase_starts["close"] = time.time()
        await helpers.all_clients([("close",)] * parts)
        await asyncio.sleep(2)  # the server's side of each close
        rss_closed = rss()
        helpers.healthz.send(("stop",))
        health = await asyncio.get_running_loop().run_in_executor(None, helpers.healthz.recv)
        client_cpu_end = [r["cpu"] for r in await helpers.all_clients([("cpu",)] * parts)]
        wall = time.time() - wall_start
        client_cpu = [b - a for a, b in zip(client_cpu_start, client_cpu_end, strict=True)]
        times = sorted(health["times"])
        subscribed = len(ready)
        return Figures(
            scenario=scenario, n=n, replicas=args.replicas, connected=connected,
            subscribed=subscribed, connect_s=connect_s,
            connect_api_cpu_ms=(cpu1 - cpu0) * 1000 / max(1, connected),
            subscribe_s=subscribe_s,
            subscribe_api_cpu_ms=(cpu3 - cpu2) * 1000 / max(1, subscribed),
            published=len(published_at), deliveries=deliveries,
            delivered_per_s=deliveries / max(1e-9, busy),
            p50_ms=cb.percentile(latencies, 50) * 1000,
            p99_ms=cb.percentile(latencies, 99) * 1000,
            max_ms=cb.percentile(latencies, 100) * 1000,
            lost=lost, reordered=reordered, catch_ups=catch_ups, failed=failed,
            incomplete=incomplete, undelivered=undelivered,
            delivery_api_cpu_s=cpu4 - cpu3,
            rss_before_mb=rss_before, rss_subscribed_mb=rss_subscribed,
            rss_after_events_mb=rss_after_events, rss_closed_mb=rss_closed,
            kb_per_subscriber=(rss_subscribed - rss_before) * 1024 / max(1, subscribed),
            healthz_worst_ms=cb.percentile(times, 100) * 1000,
            healthz_p99_ms=cb.percentile(times, 99) * 1000,
            healthz_failures=health["failures"],
            healthz_phases=worst_by_phase(health["starts"], health["times"], phase_starts),
            client_cpu_s=sum(client_cpu), client_busiest=max(client_cpu) / max(1e-9, wall),
            publisher_cpu_s=publisher_cpu, achieved_rate=achieved,
            replicas_detail=[
                {
                    "pid": p, "sockets": sockets.get(p, 0),
                    "subscribe_cpu_s": per_cpu_subscribed[p] - per_cpu_start[p],
                    "events_cpu_s": per_cpu_events[p] - per_cpu_subscribed[p],
                    "rss_subscribed_mb": rss_mb(p),
                }
                for p in pids
            ] if args.replicas > 1 else [],
            first_error=errors[0] if errors else None,
        )  # fmt: skip
    finally:
        if observer is not None:
            observer.cancel()
        worker.resume()


# --- Report --------------------------------------------------------------------------------


COLUMNS = [
    ("N", "n", "{:d}"),
    ("conn s", "connect_s", "{:.1f}"),
    ("conn ms", "connect_api_cpu_ms", "{:.2f}"),
    ("sub s", "subscribe_s", "{:.1f}"),
    ("sub ms", "subscribe_api_cpu_ms", "{:.2f}"),
    ("p50 ms", "p50_ms", "{:.0f}"),
    ("p99 ms", "p99_ms", "{:.0f}"),
    ("max ms", "max_ms", "{:.0f}"),
    ("deliv/s", "delivered_per_s", "{:.0f}"),
    ("lost", "lost", "{:d}"),
    ("reord", "reordered", "{:d}"),
    ("catchup", "catch_ups", "{:d}"),
    ("failed", "failed", "{:d}"),
    ("incompl", "incomplete", "{:d}"),
    ("undeliv", "undelivered", "{:d}"),
    ("healthz", "healthz_worst_ms", "{:.0f}"),
    ("RSS MB", "rss_before_mb", "{:.0f}"),
    ("+subs", "rss_subscribed_mb", "{:.0f}"),
    ("KB/sub", "kb_per_subscriber", "{:.0f}"),
    ("closed", "rss_closed_mb", "{:.0f}"),
    ("client", "client_busiest", "{:.0%}"),
]
WIDTH = 8


def table(figures: list[Figures]) -> None:
    print("".join(f"{title:>{WIDTH}}" for title, _, _ in [("run", "", ""), *COLUMNS]))
    for f in figures:
        name = f"{f.scenario} x{f.replicas}" if f.replicas > 1 else f.scenario
        values = asdict(f)
        cells = "".join(
            f"{'-' if values[key] != values[key] else fmt.format(values[key]):>{WIDTH}}"
            for _, key, fmt in COLUMNS
        )
        print(f"{name:>{WIDTH}}{cells}")
        if f.scenario == "B":
            rate, spent = f.achieved_rate, f.publisher_cpu_s
            print(f"{'':>{WIDTH}}  publisher: {rate:.0f} events/s published, {spent:.1f} s CPU")
        for r in f.replicas_detail:
            print(
                f"{'':>{WIDTH}}  replica pid {r['pid']}: {r['sockets']} sockets, CPU "
                f"{r['subscribe_cpu_s']:.1f} s to subscribe, {r['events_cpu_s']:.1f} s for the "
                f"events, RSS {r['rss_subscribed_mb']:.0f} MB"
            )
        phases = ", ".join(f"{name} {ms:.0f}" for name, ms in f.healthz_phases.items())
        print(f"{'':>{WIDTH}}  worst /healthz by phase (ms): {phases}")
        if f.first_error:
            print(f"{'':>{WIDTH}}  first error: {f.first_error}")
    print(
        "conn s / sub s: wall until every socket is acknowledged / has its first event; conn ms "
        "/ sub ms: API CPU per connection / per subscribe; p50/p99/max: publish to client; "
        "deliv/s: deliveries per second while events were on their way; lost: sequences "
        "skipped (or never reached by a finished subscription); reord: not increasing; "
        "catchup: catch-up events after the first; failed: subscriptions without a first "
        "event; incompl: subscribed, then not finished by the deadline or ended by an error; "
        "undeliv: events those had not received; healthz: worst /healthz response; RSS MB: "
        "API before, subscribed, per subscriber, after every socket closed; client: busiest "
        "client process's CPU share of the run"
    )


def verdicts(figures: list[Figures]) -> dict[str, dict[str, Any]]:
    values = [
        max((f.lost + f.reordered + f.failed + f.incomplete for f in figures), default=0),
        max((f.subscribe_api_cpu_ms for f in figures), default=float("nan")),
        max((f.p99_ms for f in figures if f.scenario == "A"), default=float("nan")),
        max((f.p99_ms for f in figures if f.scenario == "B"), default=float("nan")),
        max((f.healthz_worst_ms for f in figures), default=float("nan")),
    ]
    out = {}
    for (name, (op, limit)), value in zip(TARGETS.items(), values, strict=True):
        ran = value == value  # NaN: the scenario did not run
        met = not ran or (value == limit if op == "==" else value < limit)
        out[name] = {"value": value if ran else None, "target": f"{op} {limit:g}", "met": met}
    return out


# --- Set-up and main -----------------------------------------------------------------------


async def fresh_database(admin_url: str) -> str:
    conn = await asyncpg.connect(plain_pg_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    return with_database(admin_url, DATABASE)


async def drop_database(admin_url: str) -> None:
    conn = await asyncpg.connect(plain_pg_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    finally:
        await conn.close()


async def wait_ready(server: cb.ApiServer, tries: int = 3) -> None:
    """ApiServer.wait_ready, for up to `tries` of its 60 s while the process lives: on a
    loaded machine two API processes importing at once can take longer."""
    for attempt in range(tries):
        try:
            return await server.wait_ready()
        except SystemExit:
            if server.process.poll() is not None or attempt == tries - 1:
                raise


async def bench(helpers: Helpers, setup: Setup, args: argparse.Namespace) -> list[Figures]:
    """One worker for the whole bench; a new API (`--replicas` processes) per scenario, its
    runs (N ascending) one after the other with a pause between: a run's RSS before it is
    printed beside its figures."""
    # Ctrl-C / SIGTERM cancel the run, so that every `finally` below stops what it started
    # (a handler raising KeyboardInterrupt can be lost inside the event loop).
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    worker: Worker | None = None
    figures = []
    try:
        for scenario in args.scenarios:
            extra = {**setup.env, "API_WORKERS": str(args.replicas)}
            server = cb.ApiServer(setup.database_url, setup.redis_url, False, extra)
            try:
                await wait_ready(server)
                worker = worker or Worker(setup.env)  # once the API is up: not both at once
                if not setup.email:
                    setup.email, setup.workspace = await register(server.url)
                    setup.workspace_uuid = cb.node_uuid(setup.workspace)
                for n in sorted(args.subscribers):
                    started, load = time.monotonic(), os.getloadavg()[0]
                    print(
                        f"scenario {scenario}, N={n}, {args.replicas} API process(es)", flush=True
                    )
                    f = await one_run(helpers, setup, server, worker, scenario, n, args)
                    figures.append(f)
                    print(
                        f"  {time.monotonic() - started:.0f} s; subscribe {f.subscribe_s:.1f} s, "
                        f"p99 {f.p99_ms:.0f} ms, lost {f.lost}, healthz {f.healthz_worst_ms:.0f} "
                        f"ms (load average {load:.2f} before)",
                        flush=True,
                    )
                    await asyncio.sleep(SETTLE_SECONDS)
            finally:
                server.stop()
    finally:
        if worker is not None:
            worker.stop()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, nargs="+", help="N values (100 1000 3000)")
    parser.add_argument("--scenarios", nargs="+", choices=("A", "B"), default=["A", "B"])
    parser.add_argument("--replicas", type=int, default=1, help="API processes on one port (1)")
    parser.add_argument("--rate", type=float, help="B: events/s in total (default: N)")
    parser.add_argument("--duration", type=float, default=10, help="B: seconds of events (10)")
    parser.add_argument("--delay-ms", type=int, default=2000, help="A: ping's delayMs (2000)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (4)")
    parser.add_argument(
        "--subscribe-window",
        type=int,
        default=0,
        help="subscribes awaiting their first event, per client process (0: all at once)",
    )
    parser.add_argument("--quick", action="store_true", help="N=100,1000 and 5 s of events")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    if args.subscribers is None:
        args.subscribers = [100, 1000] if args.quick else [100, 1000, 3000]
    if args.quick:
        args.duration, args.delay_ms = min(args.duration, 5), min(args.delay_ms, 1000)
    if not 1 <= args.replicas <= 8 or args.clients < 1:
        parser.error("--replicas must be 1..8 and --clients at least 1")
    # Every socket is a descriptor, in the API and in the clients (who inherit this).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if max(args.subscribers) + 1000 > hard:
        parser.error(f"the descriptor limit ({hard}) is too low for {max(args.subscribers)}")
    helpers = Helpers(args.clients)  # forked first: no loop, thread or server to inherit
    configured = Settings()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, cb._interrupt)
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    admin_url = configured.database_url
    figures: list[Figures] = []
    loadavg_before = os.getloadavg()
    try:
        if not admin_url:
            pg = EmbeddedPostgres(DATA_DIR)
            admin_url = pg.start()
        database_url = asyncio.run(fresh_database(admin_url))
        redis_url = configured.redis_url
        if not redis_url:
            redis = EmbeddedRedis(DATA_DIR)
            redis_url = redis.start()
        upgrade_head(database_url)
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url, REDIS_URL=redis_url, ENVIRONMENT="development",
            LOG_LEVEL="WARNING", LOG_JSON="false", DATA_DIR=str(DATA_DIR),
            MEDIA_DIR=str(DATA_DIR / "media"), SECRET_KEY=secrets.token_urlsafe(48),
            # Thousands of handshakes at once: a slow connection_init is measured, not refused.
            WS_CONNECTION_INIT_TIMEOUT_SECONDS="60",
        )  # fmt: skip
        print(
            f"subscriptions bench  {datetime.date.today()}  {os.cpu_count()} CPUs; N="
            f"{','.join(map(str, args.subscribers))}, scenarios {' '.join(args.scenarios)}, "
            f"{args.replicas} API process(es), {args.clients} client processes; load average "
            f"{loadavg_before[0]:.2f}"
        )
        setup = Setup(str(database_url), str(redis_url), env, "", "", uuid.UUID(int=0))
        figures = uvloop.run(bench(helpers, setup, args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        helpers.stop()
        if admin_url:
            with contextlib.suppress(Exception):
                asyncio.run(drop_database(admin_url))
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
    loadavg_after = os.getloadavg()
    result = verdicts(figures)
    if args.json:
        print(json.dumps([asdict(f) for f in figures], indent=2, default=str))
    table(figures)
    print(f"load average before {loadavg_before[0]:.2f}, after {loadavg_after[0]:.2f} (1 min)")
    for name, verdict in result.items():
        value = "-" if verdict["value"] is None else f"{verdict['value']:.2f}"
        met = "met" if verdict["met"] else "not met"
        print(f"target {name}: {value} (target {verdict['target']}): {met}")
    return 0 if all(v["met"] for v in result.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
