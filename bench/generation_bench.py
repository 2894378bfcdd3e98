"""Benchmark the AI pipeline: N concurrent `generateContent` jobs against a local streaming
provider, each followed by its own `generationProgress` subscriber.

Not a test: it prints figures. It starts (as child processes) a local OpenAI-compatible
server that streams tokens at a fixed rate (bench/streaming_llm.py), the API
(`smartcontent serve`) pointed at it through OPENAI_BASE_URL, and W arq workers
(`smartcontent worker`), on a fresh database (`bench_generation`) of the server named by
DATABASE_URL or an embedded one (data in /tmp/bench-generation-smartcontent). Then N
clients, each with a websocket already open (graphql-transport-ws, connection_init done),
send `generateContent` over HTTP at staggered start times and subscribe to
`generationProgress` on their websocket as soon as the mutation returns.

It prints what the pipeline adds to the provider's own timing: time to first token (first
text received by the subscriber - mutation sent - the provider's first-token time) and total
time (final event - mutation sent - the provider's whole stream), p50/p95/max; where that
time goes (mutation, until the provider is called, first-token delivery, the end); the lag
of every delta; delta events and tokens per second delivered; events lost or reordered
(sequence numbers, and the text rebuilt from the deltas against what the provider sent and
what was stored); CPU per process. Optionally it profiles the API and the workers (py-spy).

    make bench-generation
    .venv/bin/python bench/generation_bench.py --jobs 100 --workers 2 --token-ms 20
    .venv/bin/python bench/generation_bench.py --profile /tmp/gen-profile
    .venv/bin/python bench/generation_bench.py --server-env WORKER_POLL_SECONDS=0.5

Longer than 400 lines because it is one self-contained benchmark script (servers, clients,
checks, report) meant to be read and run alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import datetime
import itertools
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import httpx
import uvloop
from streaming_llm import job_text  # beside this script (its directory is on sys.path)
from websockets.asyncio.client import ClientConnection, connect

from app.db import plain_pg_url
from app.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, with_database
from app.migrate import upgrade_head
from app.settings import Settings

HERE = Path(__file__).resolve().parent
BENCH_DATA_DIR = Path("/tmp/bench-generation-smartcontent")
BENCH_DATABASE = "bench_generation"
PASSWORD = "bench password that is long enough 42"
TARGET_TTFT_P95_MS = 50.0
TOKEN = re.compile(r"w(\d+) ")

GENERATE = """mutation($input: GenerateContentInput!) {
  generateContent(input: $input) { job { id status } errors { code message } } }"""
PROGRESS = """subscription($id: ID!) { generationProgress(jobId: $id) {
  status attempt sequence stage variationIndex delta text catchUp error
  content { title body } } }"""
REGISTER = """mutation($i: RegisterInput!) { register(input: $i) {
  accessToken errors { code message } } }"""
CREATE_WORKSPACE = """mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) {
  workspace { id } errors { code message } } }"""


# --- Child processes ---------------------------------------------------------------------


class Child:
    """A child process in its own session (Ctrl-C reaches only us; we stop it in order)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.process = subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def check(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"{self.name} exited with {self.process.returncode}; see its log")

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def wait_http(url: str, child: Child, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            child.check()
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise SystemExit(f"{child.name} was not ready within {seconds:.0f} s")


def service_env(
    database_url: str, redis_url: str, llm_url: str, args: argparse.Namespace
) -> dict[str, str]:
    data_dir = BENCH_DATA_DIR / "app"
    data_dir.mkdir(parents=True, exist_ok=True)
    unlimited = str(10**9)  # a benchmark must not be refused; the limiter's calls still happen
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ENVIRONMENT="development",
        LOG_LEVEL="WARNING",
        LOG_JSON="false",
        DATA_DIR=str(data_dir),
        MEDIA_DIR=str(data_dir / "media"),
        SECRET_KEY=secrets.token_urlsafe(48),
        RATE_LIMIT_ANONYMOUS=unlimited,
        RATE_LIMIT_FREE=unlimited,
        RATE_LIMIT_PRO=unlimited,
        RATE_LIMIT_ENTERPRISE=unlimited,
        GRACEFUL_SHUTDOWN_SECONDS="5",
        AI_PROVIDER="openai",
        OPENAI_BASE_URL=llm_url,
        OPENAI_MODEL="bench-model",
        AI_MONTHLY_TOKENS_FREE="0",
        AI_DEDUP_SECONDS="0",
        WS_MAX_SUBSCRIPTIONS="1000",
    )
    env.update(args.server_env)
    return env


# --- CPU of the processes ----------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _cpu(pid: int, *, children: bool) -> float:
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_stall() -> float | None:
    """Seconds some runnable task waited for a CPU so far (Linux PSI), or None."""
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some "):
                return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return None
    return None


def tree_cpu(parent: int) -> float:
    """A process, its reaped children and its live children (Postgres and its backends)."""
    total = _cpu(parent, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                total += _cpu(int(entry.name), children=False)
    return total


# --- The clients -------------------------------------------------------------------------


@dataclass
class Received:
    at: float
    status: str
    attempt: int
    sequence: int
    stage: str | None
    variation_index: int | None
    delta: str | None
    text: str | None
    catch_up: bool


@dataclass
class JobRun:
    number: int
    sent: float = 0.0
    returned: float = 0.0
    job_id: str | None = None
    events: list[Received] = field(default_factory=list)
    content: dict[str, Any] | None = None
    final_at: float | None = None
    final_status: str | None = None
    error: str | None = None
    created: float | None = None  # the job row's created_at (the request's transaction)
    claimed: float | None = None  # its started_at (the worker's claim)

    @property
    def first_text_at(self) -> float | None:
        for event in self.events:
            if event.delta or (event.catch_up and event.text):
                return event.at
        return None


class Subscriber:
    """One client: a websocket opened and acknowledged before its job starts."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, token: str, compression: bool) -> Subscriber:
        ws = await connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            compression="deflate" if compression else None,
            max_queue=None,
            open_timeout=30,
        )
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await ws.recv())
        if ack.get("type") != "connection_ack":
            raise SystemExit(f"websocket refused: {ack}")
        return cls(ws)

    async def follow(self, run: JobRun, limit_seconds: float) -> None:
        await self.ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": PROGRESS, "variables": {"id": run.job_id}},
                }
            )
        )
        async with asyncio.timeout(limit_seconds):
            while True:
                raw = await self.ws.recv()
                at = time.monotonic()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                    continue
                if kind == "complete":
                    return
                if kind != "next" or "errors" in message["payload"]:
                    run.error = run.error or f"subscription: {message}"[:300]
                    return
                data = message["payload"]["data"]["generationProgress"]
                run.events.append(
                    Received(
                        at=at,
                        status=data["status"],
                        attempt=data["attempt"],
                        sequence=data["sequence"],
                        stage=data["stage"],
                        variation_index=data["variationIndex"],
                        delta=data["delta"],
                        text=data["text"],
                        catch_up=data["catchUp"],
                    )
                )
                if data["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    run.final_at, run.final_status = at, data["status"]
                    run.content = data["content"]


async def run_job(
    run: JobRun,
    subscriber: Subscriber,
    http: httpx.AsyncClient,
    api_url: str,
    token: str,
    workspace: str,
    start_at: float,
    limit_seconds: float,
) -> None:
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    variables = {
        "input": {
            "workspaceId": workspace,
            # The marker tells the provider which text to stream (and the bench what to expect).
            "brief": f"Write a short post, bench-job-{run.number}.",
            "contentType": "SOCIAL_POST",
            "length": "SHORT",
        }
    }
    run.sent = time.monotonic()
    try:
        response = await http.post(
            api_url,
            json={"query": GENERATE, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        run.returned = time.monotonic()
        body = response.json()
        payload = (body.get("data") or {}).get("generateContent") or {}
        if response.status_code != 200 or body.get("errors") or payload.get("errors"):
            run.error = f"mutation: {response.status_code} {body}"[:300]
            return
        run.job_id = payload["job"]["id"]
        await subscriber.follow(run, limit_seconds)
    except Exception as exc:  # one client's failure is counted, not fatal to the others
        run.error = run.error or f"{type(exc).__name__}: {exc}"[:300]


async def read_job_times(database_url: str, runs: list[JobRun]) -> None:
    """Each job's created_at and started_at (Postgres's clock, the same machine's), moved
    onto time.monotonic() so they line up with the client's and the provider's times."""
    offset = time.time() - time.monotonic()
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        rows = await conn.fetch(
            "SELECT id::text, extract(epoch FROM created_at), extract(epoch FROM started_at)"
            " FROM jobs WHERE kind = 'generate_content'"
        )
    finally:
        await conn.close()
    times = {row[0]: (float(row[1]), row[2]) for row in rows}
    for run in runs:
        if run.job_id is None:
            continue
        job_uuid = base64.b64decode(run.job_id).decode().split(":", 1)[1]
        created, started = times.get(job_uuid, (None, None))
        if created is not None and started is not None:
            run.created, run.claimed = created - offset, float(started) - offset


# --- Checks and figures ------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Check:
    lost: int = 0  # tokens the provider sent that no subscriber event carried
    reordered: int = 0  # events whose sequence went back, or tokens out of place / twice
    text_mismatch: int = 0  # jobs whose rebuilt text differs from what was sent or stored
    failed: int = 0  # jobs that did not end SUCCEEDED (or whose client failed)
    late: int = 0  # subscribers that joined after the draft was written: only its stored copy
    bad: list[int] = field(default_factory=list)  # job numbers with a problem (for --dump)


def rebuild(events: list[Received]) -> str:
    """The final attempt's draft text as a client rebuilds it: catch-up text, then deltas."""
    last_attempt = max((e.attempt for e in events), default=0)
    text = ""
    for event in events:
        if event.attempt != last_attempt or event.stage not in ("draft", None):
            continue
        if event.catch_up and event.text is not None and event.stage == "draft":
            text = event.text
        if event.delta is not None and event.stage == "draft":
            text += event.delta
    return text


def check_run(run: JobRun, tokens: int, check: Check) -> None:
    if run.error or run.final_status != "SUCCEEDED":
        check.failed += 1
        return
    sequences = [e.sequence for e in run.events]
    check.reordered += sum(1 for a, b in itertools.pairwise(sequences) if b < a)
    expected = job_text(run.number, tokens)
    title = expected[0].removeprefix("Title: ").strip()
    body = "".join(expected[1:]).strip()
    stored = run.content or {}
    stored_ok = stored.get("title") == title and stored.get("body") == body
    first = run.events[0] if run.events else None
    if first is not None and first.stage not in (None, "queued", "draft"):
        # The draft stage was over when the subscriber arrived: the API offers the text of
        # the current stage only, so only the stored copy can be checked.
        check.late += 1
        if not stored_ok:
            check.text_mismatch += 1
            check.bad.append(run.number)
        return
    text = rebuild(run.events)
    found = [int(m) for m in TOKEN.findall(text)]
    check.lost += len(set(range(1, tokens)) - set(found))
    check.reordered += sum(1 for a, b in itertools.pairwise(found) if b != a + 1)
    if text != "".join(expected) or not stored_ok:
        check.text_mismatch += 1
        check.bad.append(run.number)


@dataclass
class Figures:
    added_ttft: list[float] = field(default_factory=list)
    added_total: list[float] = field(default_factory=list)
    mutation: list[float] = field(default_factory=list)
    to_provider: list[float] = field(default_factory=list)  # mutation sent -> provider called
    to_row: list[float] = field(default_factory=list)  # mutation sent -> its transaction began
    to_claim: list[float] = field(default_factory=list)  # mutation returned -> worker's claim
    claim_to_call: list[float] = field(default_factory=list)  # claim -> provider called
    first_delivery: list[float] = field(default_factory=list)  # first token sent -> received
    final_delivery: list[float] = field(default_factory=list)  # last token sent -> final event
    delta_lag: list[float] = field(
        default_factory=list
    )  # each delta: its last token sent -> received
    provider_ttft: list[float] = field(default_factory=list)
    delta_events: int = 0
    tokens: int = 0
    first_delta: float = float("inf")
    last_delta: float = 0.0
    peak_running: int = 0
    joined_mid_stream: int = 0  # first event already carried text (the job was streaming)
    waited_for_flush: int = 0  # a later catch-up: live deltas were ahead of the stored text


def figures(runs: list[JobRun], stats: dict[str, list[dict[str, Any]]]) -> Figures:
    out = Figures()
    spans: list[tuple[float, float]] = []
    for run in runs:
        calls = stats.get(str(run.number)) or []
        if run.error or run.final_at is None or not calls:
            continue
        call = calls[-1]  # the last attempt's call is the one whose text was kept
        received, sent_times = call["received"], call["tokens"]
        first_text = run.first_text_at
        out.mutation.append(run.returned - run.sent)
        out.to_provider.append(calls[0]["received"] - run.sent)
        if run.created is not None and run.claimed is not None:
            out.to_row.append(run.created - run.sent)
            out.to_claim.append(run.claimed - run.returned)
            out.claim_to_call.append(calls[0]["received"] - run.claimed)
        out.provider_ttft.append(sent_times[0] - received)
        if first_text is not None:
            out.added_ttft.append(first_text - run.sent - (sent_times[0] - received))
            out.first_delivery.append(first_text - sent_times[0])
        out.added_total.append(run.final_at - run.sent - (sent_times[-1] - received))
        out.final_delivery.append(run.final_at - sent_times[-1])
        spans.append((received, sent_times[-1]))
        if run.events and run.events[0].text:
            out.joined_mid_stream += 1
        if any(e.catch_up for e in run.events[1:]):
            out.waited_for_flush += 1
        for event in run.events:
            if not event.delta:
                continue
            out.delta_events += 1
            numbers = [int(m) for m in TOKEN.findall(event.delta)]
            out.tokens += max(1, len(numbers))
            index = max(numbers) if numbers else 0  # token k is the (k+1)-th sent
            if index < len(sent_times):
                out.delta_lag.append(event.at - sent_times[index])
            out.first_delta = min(out.first_delta, event.at)
            out.last_delta = max(out.last_delta, event.at)
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = 0
    for _, step in edges:
        running += step
        out.peak_running = max(out.peak_running, running)
    return out


def report(
    fig: Figures, check: Check, cpu: dict[str, float], elapsed: float, args: argparse.Namespace
) -> None:
    def row(name: str, values: list[float], target: float | None = None) -> None:
        ms = [percentile(values, p) * 1000 for p in (50, 95)] + [
            max(values, default=float("nan")) * 1000
        ]
        verdict = ""
        if target is not None:
            verdict = f"  target p95 < {target:.0f} ms: {'PASS' if ms[1] < target else 'MISS'}"
        print(f"  {name:<44}{ms[0]:>9.1f}{ms[1]:>9.1f}{ms[2]:>9.1f}{verdict}")

    print(f"\n  {'ms':<44}{'p50':>9}{'p95':>9}{'max':>9}")
    row("added to first token", fig.added_ttft, TARGET_TTFT_P95_MS)
    row("added to total time", fig.added_total)
    print("  where it goes:")
    row("  mutation (HTTP round trip)", fig.mutation)
    row("  mutation sent -> provider called", fig.to_provider)
    if fig.to_claim:
        row("    mutation sent -> its transaction began", fig.to_row)
        row("    mutation returned -> worker claimed it", fig.to_claim)
        row("    claimed -> provider called", fig.claim_to_call)
    row("  provider's first token -> subscriber", fig.first_delivery)
    row("  provider's last token -> final event", fig.final_delivery)
    row("each delta: its token sent -> subscriber", fig.delta_lag)
    row("provider's own first-token time", fig.provider_ttft)
    span = fig.last_delta - fig.first_delta if fig.delta_events else 0.0
    rate = fig.delta_events / span if span > 0 else 0.0
    print(
        f"\n  delta events delivered: {fig.delta_events} ({rate:.0f}/s over {span:.1f} s), "
        f"carrying {fig.tokens} tokens ({fig.tokens / span if span > 0 else 0:.0f}/s); "
        f"peak concurrent provider streams: {fig.peak_running}"
    )
    print(
        f"  subscribers that joined mid-stream (their first event carried the text so far): "
        f"{fig.joined_mid_stream}; that caught up again from the stored text (live deltas "
        f"ahead of it): {fig.waited_for_flush}"
    )
    print(
        f"  lost: {check.lost}   reordered: {check.reordered}   text mismatches: "
        f"{check.text_mismatch}   failed jobs: {check.failed}   (all must be 0)"
    )
    if check.late:
        print(
            f"  {check.late} subscriber(s) joined after their draft was written (mutation "
            "slower than the stream): their text was checked in the stored item only"
        )
    used = ", ".join(
        f"{name} {seconds:.1f} s ({seconds / elapsed * 100:.0f}%)" for name, seconds in cpu.items()
    )
    print(f"  CPU during the run ({elapsed:.1f} s; 100% = one core): {used}")


# --- The run -----------------------------------------------------------------------------


async def setup_account(http: httpx.AsyncClient, api_url: str) -> tuple[str, str]:
    async def gql(query: str, variables: dict[str, Any], token: str = "") -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await http.post(
            api_url, json={"query": query, "variables": variables}, headers=headers
        )
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise SystemExit(f"set-up request failed: {response.status_code} {body}")
        return body["data"]  # type: ignore[no-any-return]

    email = f"bench-{secrets.token_hex(4)}@example.com"
    registered = await gql(REGISTER, {"i": {"email": email, "password": PASSWORD, "name": "Bench"}})
    token = registered["register"]["accessToken"]
    created = await gql(CREATE_WORKSPACE, {"i": {"name": "Bench"}}, token)
    return token, created["createWorkspace"]["workspace"]["id"]


class Profiler:
    """py-spy record on each process for the measured phase (SIGINT makes it write)."""

    def __init__(self, directory: Path | None, targets: dict[str, int], rate: int) -> None:
        self.spies: list[subprocess.Popen[bytes]] = []
        if directory is None:
            return
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        directory.mkdir(parents=True, exist_ok=True)
        for name, pid in targets.items():
            command = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
            command += ["--nonblocking", "--output", str(directory / f"{name}.txt")]
            self.spies.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    def stop(self) -> None:
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)
        for spy in self.spies:
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()


def summarise_profiles(directory: Path, top: int = 12) -> None:
    """The leaf functions that took the most samples in each profile (collapsed stacks)."""
    for path in sorted(directory.glob("*.txt")):
        leaves: dict[str, int] = {}
        total = 0
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            leaf = stack.split(";")[-1]
            leaves[leaf] = leaves.get(leaf, 0) + int(count)
        print(f"\n  profile {path.name}: {total} samples; top self time:")
        for leaf, count in sorted(leaves.items(), key=lambda item: -item[1])[:top]:
            print(f"    {count / max(1, total) * 100:5.1f}%  {leaf[:110]}")


async def bench(
    database_url: str,
    redis_url: str,
    redis_pid: int | None,
    pg_pid: int | None,
    args: argparse.Namespace,
) -> int:
    llm_port, api_port = free_port(), free_port()
    llm_url = f"http://127.0.0.1:{llm_port}"
    api_url = f"http://127.0.0.1:{api_port}/graphql"
    env = service_env(database_url, redis_url, llm_url + "/v1", args)
    cwd = BENCH_DATA_DIR / "app"
    children: list[Child] = []
    try:
        llm = Child(
            "streaming LLM server",
            [
                sys.executable,
                str(HERE / "streaming_llm.py"),
                "--port",
                str(llm_port),
                "--token-ms",
                str(args.token_ms),
                "--first-token-ms",
                str(args.first_token_ms),
                "--tokens",
                str(args.tokens),
            ],
            dict(os.environ),
            cwd,
        )
        children.append(llm)
        api = Child(
            "smartcontent serve",
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
            ],
            env,
            cwd,
        )
        children.append(api)
        workers = [
            Child(f"worker {i + 1}", [sys.executable, "-m", "app.cli", "worker"], env, cwd)
            for i in range(args.workers)
        ]
        children += workers
        await wait_http(llm_url + "/stats", llm)
        await wait_http(f"http://127.0.0.1:{api_port}/readyz", api)
        limits = httpx.Limits(
            max_connections=args.jobs + 10, max_keepalive_connections=args.jobs + 10
        )
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            token, workspace = await setup_account(http, api_url)
            ws_url = f"ws://127.0.0.1:{api_port}/graphql"
            subscribers = await asyncio.gather(
                *(Subscriber.open(ws_url, token, args.ws_compression) for _ in range(args.jobs))
            )
            # Warm-up: a few jobs first (connections, caches, JIT-less first calls), unmeasured.
            warm = [JobRun(number=10_000 + i) for i in range(min(args.warmup, args.jobs))]
            now = time.monotonic()
            await asyncio.gather(
                *(
                    run_job(run, subscribers[i], http, api_url, token, workspace, now, args.timeout)
                    for i, run in enumerate(warm)
                )
            )
            if any(run.error for run in warm):
                raise SystemExit(f"warm-up failed: {next(run.error for run in warm if run.error)}")
            await http.post(llm_url + "/reset")
            for child in children:
                child.check()

            processes = {"api": api.pid, **{f"worker{i + 1}": w.pid for i, w in enumerate(workers)}}
            profiler = Profiler(args.profile, processes, args.profile_rate)
            watched = {**processes, "llm server": llm.pid}
            if pg_pid:
                watched["postgres"] = pg_pid
            if redis_pid:
                watched["redis"] = redis_pid
            before = {name: tree_cpu(pid) for name, pid in watched.items()}
            own_before = time.process_time()  # this process only (its children are above)
            stall_before = cpu_stall()
            started = time.monotonic()
            runs = [JobRun(number=i + 1) for i in range(args.jobs)]
            step = args.ramp_seconds / max(1, args.jobs - 1) if args.jobs > 1 else 0.0
            await asyncio.gather(
                *(
                    run_job(
                        run,
                        subscribers[i],
                        http,
                        api_url,
                        token,
                        workspace,
                        started + 0.2 + i * step,
                        args.timeout,
                    )
                    for i, run in enumerate(runs)
                )
            )
            elapsed = time.monotonic() - started
            cpu = {name: tree_cpu(pid) - before[name] for name, pid in watched.items()}
            cpu["bench clients"] = time.process_time() - own_before
            stall_after = cpu_stall()
            stall = (
                stall_after - stall_before
                if stall_after is not None and stall_before is not None
                else None
            )
            profiler.stop()
            stats = (await http.get(llm_url + "/stats")).json()
            await read_job_times(database_url, runs)
            for subscriber in subscribers:
                with contextlib.suppress(Exception):
                    await subscriber.ws.close()
        check = Check()
        for run in runs:
            check_run(run, args.tokens, check)
        fig = figures(runs, stats)
        report(fig, check, cpu, elapsed, args)
        service = sum(v for k, v in cpu.items() if k not in ("llm server", "bench clients"))
        print(
            f"  service CPU (API, workers, Postgres, Redis): {service / args.jobs * 1000:.1f} ms "
            f"per job, {service / max(1, fig.delta_events) * 1000:.2f} ms per delta event"
        )
        if stall is not None:
            print(
                f"  CPU pressure: some task waited for a CPU {stall / elapsed * 100:.0f}% of the "
                f"run (PSI; above ~20% the machine was shared or overloaded: latencies inflate)"
            )
        if args.dump is not None:
            bad = [run for run in runs if run.number in check.bad or run.error]
            args.dump.write_text(
                json.dumps([dataclasses.asdict(run) for run in bad], indent=1, default=str)
            )
            print(f"  {len(bad)} problem job(s) written to {args.dump}")
        errors = [run.error for run in runs if run.error]
        if errors:
            print(f"  first client error: {errors[0]}", file=sys.stderr)
        if args.profile is not None:
            summarise_profiles(args.profile)
        bad = check.lost or check.reordered or check.text_mismatch or check.failed
        return 1 if bad else 0
    finally:
        for child in reversed(children):
            child.stop()


async def fresh_database(admin_url: str) -> str:
    conn = await asyncpg.connect(plain_pg_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    finally:
        await conn.close()
    return with_database(admin_url, BENCH_DATABASE)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs", type=int, default=100, help="concurrent generations (default 100)"
    )
    parser.add_argument("--workers", type=int, default=2, help="arq worker processes (default 2)")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per answer (default 100)")
    parser.add_argument("--token-ms", type=float, default=20.0, help="between tokens (default 20)")
    parser.add_argument(
        "--first-token-ms",
        type=float,
        default=0.0,
        help="the provider's own wait before its first token",
    )
    parser.add_argument(
        "--ramp-seconds",
        type=float,
        default=1.0,
        help="start the jobs evenly over this long (default 1.0; 0: all at once)",
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="unmeasured jobs first (default 4 per worker)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per job, seconds")
    parser.add_argument("--ws-compression", action="store_true", help="permessage-deflate (off)")
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy the API and workers"
    )
    parser.add_argument(
        "--dump", type=Path, default=None, metavar="FILE", help="write the events of bad jobs"
    )
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples/s (200)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the API and workers, e.g. WORKER_CONCURRENCY=50 (repeatable)",
    )
    args = parser.parse_args()
    try:
        args.server_env = dict(item.split("=", 1) for item in args.server_env)
    except ValueError:
        parser.error("--server-env takes NAME=VALUE")
    if args.warmup is None:
        args.warmup = 4 * args.workers
    if not 1 <= args.jobs <= 1000 or not 1 <= args.workers <= 16 or args.tokens < 2:
        parser.error("--jobs 1..1000, --workers 1..16, --tokens at least 2")

    configured = Settings()
    signal.signal(signal.SIGTERM, _interrupt)
    BENCH_DATA_DIR.mkdir(parents=True, exist_ok=True)
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    try:
        admin_url = configured.database_url
        if not admin_url:
            pg = EmbeddedPostgres(BENCH_DATA_DIR)
            admin_url = pg.start()
        database_url = asyncio.run(fresh_database(admin_url))
        redis_url = configured.redis_url
        if not redis_url:
            redis = EmbeddedRedis(BENCH_DATA_DIR)
            redis_url = redis.start()
        upgrade_head(database_url)
        pg_pid = int((pg.pgdata / "postmaster.pid").read_text().split()[0]) if pg else None
        redis_pid = redis.process.pid if redis is not None and redis.process else None
        print(
            f"SmartContent generation benchmark  {datetime.date.today()}  {platform.system()} "
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(
            f"{args.jobs} generateContent jobs started over {args.ramp_seconds:g} s, one "
            f"generationProgress subscriber each; provider: {args.tokens} tokens, one every "
            f"{args.token_ms:g} ms, first after {args.first_token_ms:g} ms; "
            f"{args.workers} worker process(es); Postgres "
            + ("embedded" if pg else "from DATABASE_URL")
            + ", Redis "
            + ("embedded" if redis else "from REDIS_URL")
            + "".join(f", {k}={v}" for k, v in args.server_env.items())
        )
        return uvloop.run(bench(database_url, redis_url, redis_pid, pg_pid, args))
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
