"""Real processes: `smartcontent serve` and `smartcontent worker` as separate OS processes.

Shows an event raised in the worker process reaching a websocket client of the API
process, and graceful shutdown of both on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from app.embedded import free_port
from tests.conftest import Servers

pytestmark = pytest.mark.slow

FOLLOW = "subscription($id: ID!) { jobEvents(id: $id) { sequence status message result } }"


def _env(servers: Servers, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env.update(
        DATABASE_URL=servers.database_url,
        REDIS_URL=servers.redis_url,
        LOG_LEVEL="WARNING",
        CORS_ORIGINS="http://localhost:3000",
        SECRET_KEY="process-test-secret-key-0123456789-abcdef",
    )
    env.update(extra)
    return env


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env)


# Waits below are on conditions; their time limits only bound a broken run, and are wide
# because a busy 2-core machine can take many seconds to start a Python process.
WAIT_SECONDS = 90


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.fixture
def api(servers: Servers) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = _spawn(["serve", "--port", str(port)], _env(servers, GRACEFUL_SHUTDOWN_SECONDS="5"))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base, proc
    finally:
        _stop(proc)


def _post(
    base: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _account(base: str) -> tuple[str, str]:
    """Register a user with a workspace; returns (access token, workspace id)."""
    email = f"proc-{uuid.uuid4().hex[:8]}@example.com"
    registered = _post(
        base,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken errors { code } } }",
        {"i": {"email": email, "password": "correct horse battery staple 42", "name": "P"}},
    )
    token = registered["data"]["register"]["accessToken"]
    created = _post(
        base,
        'mutation { createWorkspace(input: {name: "Proc"}) { workspace { id } errors { code } } }',
        token=token,
    )
    return token, created["data"]["createWorkspace"]["workspace"]["id"]


TOKENS: dict[str, str] = {}


def _ping(base: str, delay_ms: int = 0) -> str:
    token, workspace_id = _account(base)
    body = _post(
        base,
        "mutation($w: ID!, $d: Int!) {"
        ' ping(workspaceId: $w, message: "across processes", delayMs: $d) {'
        " job { id } errors { code } } }",
        {"w": workspace_id, "d": delay_ms},
        token=token,
    )
    job_id = str(body["data"]["ping"]["job"]["id"])
    TOKENS[job_id] = token
    return job_id


async def _follow(base: str, job_id: str, timeout: float = WAIT_SECONDS) -> list[dict[str, Any]]:
    url = base.replace("http://", "ws://") + "/graphql"
    events: list[dict[str, Any]] = []
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"authorization": f"Bearer {TOKENS[job_id]}"},
                }
            )
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": FOLLOW, "variables": {"id": job_id}},
                }
            )
        )
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "next":
                    events.append(message["payload"]["data"]["jobEvents"])
                elif message["type"] == "complete":
                    return events
                else:
                    raise AssertionError(message)


async def test_worker_process_event_reaches_api_websocket_client(
    servers: Servers, api: tuple[str, subprocess.Popen[bytes]]
) -> None:
    base, _ = api
    worker = _spawn(["worker"], _env(servers))
    try:
        job_id = _ping(base, delay_ms=500)
        events = await _follow(base, job_id)
    finally:
        assert _stop(worker) == 0
    final = events[-1]
    assert final["status"] == "SUCCEEDED"
    assert final["result"]["pong"] == "across processes"
    # Produced by the worker process, not the API process.
    assert final["result"]["worker"].endswith(f":{worker.pid}")


async def test_sigterm_closes_websockets_cleanly_and_exits_zero(
    servers: Servers, api: tuple[str, subprocess.Popen[bytes]]
) -> None:
    base, proc = api
    job_id = _ping(base)  # no worker running: the subscription stays open
    url = base.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"authorization": f"Bearer {TOKENS[job_id]}"},
                }
            )
        )
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": FOLLOW, "variables": {"id": job_id}},
                }
            )
        )
        assert json.loads(await ws.recv())["type"] == "next"
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(WAIT_SECONDS):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code in (1001, 1012)  # going away / service restart
    assert await asyncio.to_thread(proc.wait, WAIT_SECONDS) == 0


async def test_worker_finishes_its_running_job_on_sigterm(
    servers: Servers, api: tuple[str, subprocess.Popen[bytes]]
) -> None:
    base, _ = api
    worker = _spawn(["worker"], _env(servers, GRACEFUL_SHUTDOWN_SECONDS="10"))
    job_id = _ping(base, delay_ms=2000)
    follow = asyncio.create_task(_follow(base, job_id))
    await _wait_status(base, job_id, "RUNNING")
    worker.send_signal(signal.SIGTERM)
    events = await follow
    assert events[-1]["status"] == "SUCCEEDED"
    assert await asyncio.to_thread(worker.wait, WAIT_SECONDS) == 0


async def test_worker_past_its_grace_hands_the_job_to_the_next_worker(
    servers: Servers, api: tuple[str, subprocess.Popen[bytes]]
) -> None:
    base, _ = api
    first = _spawn(["worker"], _env(servers, GRACEFUL_SHUTDOWN_SECONDS="1"))
    # The longest ping there is: it must still be running when the 1 s grace ends.
    job_id = _ping(base, delay_ms=10_000)
    await _wait_status(base, job_id, "RUNNING")
    first.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(first.wait, WAIT_SECONDS) == 0
    job = await _wait_status(base, job_id, "QUEUED")
    assert job["attempts"] == 0, "the interrupted attempt was handed back, not counted"
    second = _spawn(["worker"], _env(servers))
    try:
        job = await _wait_status(base, job_id, "SUCCEEDED")
        assert job["result"]["worker"].endswith(f":{second.pid}")
    finally:
        assert _stop(second) == 0


async def _wait_status(
    base: str, job_id: str, status: str, timeout: float = WAIT_SECONDS
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    query = "query($id: ID!) { job(id: $id) { status attempts result } }"
    while time.monotonic() < deadline:
        body = await asyncio.to_thread(_post, base, query, {"id": job_id}, TOKENS[job_id])
        job: dict[str, Any] = body["data"]["job"]
        if job["status"] == status:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job never reached {status}")


def test_logs_are_json_lines_carrying_the_request_id(servers: Servers, tmp_path: Any) -> None:
    port = free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=_env(servers, LOG_LEVEL="INFO"),
            stderr=log_file,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, proc)
            httpx.post(
                f"{base}/graphql",
                json={"query": "{ health { version } }"},
                headers={"X-Request-ID": "trace-abc-123"},
                timeout=5,
            )
        finally:
            assert _stop(proc) == 0
    records = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    assert records, "logs are JSON"
    assert all({"event", "level", "timestamp"} <= set(r) for r in records)
    assert any(r.get("request_id") == "trace-abc-123" for r in records)


async def test_a_websocket_message_over_the_body_limit_closes_the_connection(
    api: tuple[str, subprocess.Popen[bytes]],
) -> None:
    # The same bound as an HTTP body (MAX_BODY_BYTES, 1 MB), not uvicorn's 16 MiB default.
    base, _proc = api
    url = base.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_size=None,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"x": "a" * 2_000_000}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(WAIT_SECONDS):
                await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # message too big


@pytest.mark.parametrize("enabled", [False, True])
async def test_websocket_compression_is_negotiated_only_when_configured(
    servers: Servers, enabled: bool
) -> None:
    # The client offers permessage-deflate, as browsers do; by default the server declines.
    port = free_port()
    env = _env(servers, WS_PER_MESSAGE_DEFLATE=str(enabled).lower())
    proc = _spawn(["serve", "--port", str(port)], env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            compression="deflate",
        ) as ws:
            offered = ws.request.headers.get("Sec-WebSocket-Extensions", "")
            accepted = ws.response.headers.get("Sec-WebSocket-Extensions")
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            async with asyncio.timeout(WAIT_SECONDS):
                assert json.loads(await ws.recv())["type"] == "connection_ack"
        assert "permessage-deflate" in offered
        if enabled:
            assert accepted is not None and "permessage-deflate" in accepted
        else:
            assert accepted is None
    finally:
        _stop(proc)
