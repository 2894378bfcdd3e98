"""One event, one selection, executed and encoded once for every subscriber who may see it
(schema.shared_events, app.http.websockets.SharedSender), over the real app, worker,
Redis and Postgres."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from graphql.execution import Executor
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import event as sa_event
from starlette.applications import Starlette
from strawberry.extensions.context import StreamResultContextManager

from app.settings import Settings
from schema.shared_events import (
    RESULTS,
    Stats,
)
from tests.conftest import Servers, make_settings, running_app, stop_worker
from tests.helpers import Account, create_workspace, ping, register
from tests.teams import join
from workers.settings import worker_settings

FOLLOW = """
subscription($id: ID!) {
  jobEvents(id: $id) {
    sequence catchUp attempt status progress message result error
    job { status progress message result }
  }
}
"""

TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"


@dataclass
class Subscriber:
    ws: Any
    protocol: str
    op_id: str = "1"

    async def start(self, query: str, variables: dict[str, Any]) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT else "start"
        payload = {"query": query, "variables": variables}
        await self.ws.send_json({"id": self.op_id, "type": kind, "payload": payload})

    async def next_text(self, timeout: float = 15) -> str | None:
        """The next result message of the operation as sent (None once it completed)."""
        while True:
            text: str = await self.ws.receive_text(timeout=timeout)
            message = json.loads(text)
            if message.get("id") != self.op_id:
                continue  # keep-alives
            if message["type"] in ("next", "data", "error"):
                return text
            assert message["type"] == "complete", message
            return None

    async def rest(self) -> list[str]:
        out = []
        while (text := await self.next_text()) is not None:
            out.append(text)
        return out


@asynccontextmanager
async def subscribers(
    app: Starlette,
    account: Account,
    count: int,
    query: str,
    variables: dict[str, Any],
    protocol: str = TRANSPORT,
) -> AsyncIterator[list[Subscriber]]:
    """`count` connections, one subscription each; yields once each got its first event."""
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t")
        )
        subs = []
        for _ in range(count):
            ws = await stack.enter_async_context(
                aconnect_ws("http://t/graphql", client, subprotocols=[protocol])
            )
            auth = {"authorization": f"Bearer {account.access_token}"}
            await ws.send_json({"type": "connection_init", "payload": auth})
            assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
            sub = Subscriber(ws, protocol)
            await sub.start(query, variables)
            subs.append(sub)
        yield subs


@asynccontextmanager
async def worker_running(settings: Settings) -> AsyncIterator[None]:
    kwargs = worker_settings(settings)
    kwargs.update(handle_signals=False, poll_delay=0.05)
    worker = Worker(**kwargs)
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        await stop_worker(worker, task)


@contextmanager
def job_reads(app: Starlette) -> Iterator[list[str]]:
    """Statements reading the jobs table on the API's engine (the probe for `job { }`)."""
    engine = app.state.smartcontent.engine.sync_engine
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM jobs" in statement:
            seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


@contextmanager
def sharing(enabled: bool) -> Iterator[Stats]:
    """Counts what `RESULTS` executed and shared meanwhile (sharing on or off)."""
    before, RESULTS.enabled = replace(RESULTS.stats), enabled
    counts = Stats()
    try:
        yield counts
    finally:
        RESULTS.enabled = True
        counts.executed = RESULTS.stats.executed - before.executed
        counts.shared = RESULTS.stats.shared - before.shared


async def queued_job(
    client: httpx.AsyncClient, message: str = "héllo ✓"
) -> tuple[str, Account, str]:
    """A ping job left QUEUED (no worker runs yet): subscribers all start from one state."""
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    payload = await ping(client, owner, workspace, message=message, delay_ms=50)
    return payload["job"]["id"], owner, workspace


def events_of(texts: list[str]) -> list[dict[str, Any]]:
    return [json.loads(t)["payload"]["data"]["jobEvents"] for t in texts]


async def test_fifty_subscribers_get_one_execution_per_event(
    app: Starlette,
    client: httpx.AsyncClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooked: list[object] = []
    gather_hooks = StreamResultContextManager.__init__

    def counted(self: StreamResultContextManager, *args: Any) -> None:
        hooked.append(args[-1])
        gather_hooks(self, *args)

    monkeypatch.setattr(StreamResultContextManager, "__init__", counted)
    job_id, owner, _ = await queued_job(client)
    async with subscribers(app, owner, 50, FOLLOW, {"id": job_id}) as subs:
        firsts = [await s.next_text() for s in subs]
        with job_reads(app) as reads, sharing(True) as counts:
            async with worker_running(settings):
                streams = await asyncio.gather(*(s.rest() for s in subs))
    # Results without errors skip the extensions' per-result hooks (schema.extension_hooks).
    assert hooked == [], f"{len(hooked)} results went through the stream hooks"
    assert len(set(firsts)) == 1, "the same stored state, byte for byte"
    assert all(stream == streams[0] for stream in streams), "identical messages"
    events = events_of(streams[0])
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status"] == "SUCCEEDED"
    assert events[-1]["job"]["result"]["pong"] == "héllo ✓"
    # The selection ran once per event, and `job { }` was read once per event, not 50 times.
    assert counts.executed == len(events)
    assert counts.shared == 49 * len(events)
    assert len(reads) <= 2 * len(events), reads


async def test_shared_messages_are_byte_for_byte_the_unshared_ones(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    runs: list[list[str]] = []
    for enabled, count in ((False, 1), (True, 3)):
        job_id, owner, _ = await queued_job(client)
        with sharing(enabled) as counts:
            async with subscribers(app, owner, count, FOLLOW, {"id": job_id}) as subs:
                firsts = [await s.next_text() for s in subs]
                async with worker_running(settings):
                    streams = await asyncio.gather(*(s.rest() for s in subs))
        assert (counts.shared > 0) is enabled
        for first, stream in zip(firsts, streams, strict=True):
            assert first is not None
            runs.append([first, *stream])
    unshared, *shared = runs
    assert all(run == unshared for run in shared)
    text = unshared[-1]
    assert "h\\u00e9llo \\u2713" in text, "ASCII-only JSON, as json.dumps sends it"
    assert '"progress":1.0' in text and json.dumps(json.loads(text), separators=(",", ":")) == text


async def test_selections_and_variables_are_not_mixed(
    app: Starlette,
    client: httpx.AsyncClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copies: list[object] = []
    per_event = Executor.build_per_event_executor

    def counted(self: Executor[Any], payload: Any) -> Executor[Any]:
        copies.append(payload)
        return per_event(self, payload)

    monkeypatch.setattr(Executor, "build_per_event_executor", counted)
    job_id, owner, _ = await queued_job(client)
    short = "subscription($id: ID!) { jobEvents(id: $id) { sequence status } }"
    optional = (
        "subscription($id: ID!, $m: Boolean!) {"
        " jobEvents(id: $id) { sequence message @include(if: $m) } }"
    )
    groups = {
        "full": (FOLLOW, {"id": job_id}),
        "short": (short, {"id": job_id}),
        "with message": (optional, {"id": job_id, "m": True}),
        "without": (optional, {"id": job_id, "m": False}),
    }
    async with AsyncExitStack() as stack:
        subs = {
            name: await stack.enter_async_context(subscribers(app, owner, 3, query, variables))
            for name, (query, variables) in groups.items()
        }
        for group in subs.values():
            for sub in group:
                await sub.next_text()
        copies.clear()
        with sharing(True) as counts:
            async with worker_running(settings):
                streams = {
                    name: await asyncio.gather(*(s.rest() for s in group))
                    for name, group in subs.items()
                }
    keys = {name: {k for e in events_of(s[0]) for k in e} for name, s in streams.items()}
    assert keys["full"] == {
        "sequence", "catchUp", "attempt", "status", "progress", "message", "result", "error", "job",
    }  # fmt: skip
    assert keys["short"] == {"sequence", "status"}
    assert keys["with message"] == {"sequence", "message"}
    assert keys["without"] == {"sequence"}
    for group in streams.values():
        assert all(stream == group[0] for stream in group)
    events = len(streams["full"][0])
    assert counts.executed == 4 * events and counts.shared == 4 * 2 * events
    # A result shared already is answered without a per-event copy of the executor: the
    # plain selections' (ready at once) once per event; `job { }` may still be running.
    assert len(copies) <= (3 + 3) * events, f"{len(copies)} executor copies"


async def test_principals_are_not_mixed(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    job_id, owner, workspace = await queued_job(client)
    viewer = await join(client, owner, workspace, "VIEWER")
    stranger = await register(client)
    async with (
        subscribers(app, owner, 2, FOLLOW, {"id": job_id}) as owners,
        subscribers(app, viewer, 2, FOLLOW, {"id": job_id}) as viewers,
        subscribers(app, stranger, 2, FOLLOW, {"id": job_id}) as strangers,
    ):
        for sub in [*owners, *viewers]:
            await sub.next_text()
        refused = [json.loads(await s.next_text() or "{}") for s in strangers]
        async with worker_running(settings):
            streams = await asyncio.gather(*(s.rest() for s in [*owners, *viewers]))
    for message in refused:  # a stranger learns nothing, not even that the job exists
        assert message["payload"]["data"] is None
        assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert all(stream == streams[0] for stream in streams), "readers of the job share"
    assert events_of(streams[0])[-1]["status"] == "SUCCEEDED"


async def test_the_legacy_protocol_shares_too(servers: Servers) -> None:
    settings = make_settings(servers, legacy_graphql_ws=True)
    async with running_app(settings) as app:
        local = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with local:
            job_id, owner, _ = await queued_job(local)
            async with (
                subscribers(app, owner, 3, FOLLOW, {"id": job_id}, LEGACY) as legacy,
                subscribers(app, owner, 3, FOLLOW, {"id": job_id}) as transport,
            ):
                for sub in [*legacy, *transport]:
                    await sub.next_text()
                with sharing(True) as counts:
                    async with worker_running(settings):
                        old = await asyncio.gather(*(s.rest() for s in legacy))
                        new = await asyncio.gather(*(s.rest() for s in transport))
    assert all(stream == old[0] for stream in old)
    assert [json.loads(t)["type"] for t in old[0]] == ["data"] * len(old[0])
    for text in old[0]:
        assert json.dumps(json.loads(text), separators=(",", ":")) == text
    assert [json.loads(t)["payload"] for t in old[0]] == [json.loads(t)["payload"] for t in new[0]]
    assert counts.executed == len(old[0]) and counts.shared == 5 * len(old[0])
