"""`smartcontent dev` on a machine with no servers: embedded Postgres and Redis, migrations,
API and worker; SIGTERM stops everything and leaves no server process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.embedded import free_port

pytestmark = pytest.mark.no_db
slow = pytest.mark.slow
# Limits on waits for conditions, for a broken run only: a busy 2-core machine may need
# tens of seconds to create a cluster, migrate and start the API and the worker.
START_SECONDS = 120


def _server_pids(data_dir: Path) -> list[int]:
    """PIDs of the embedded Postgres postmaster and redis-server, from their pid files."""
    pids = []
    for pidfile in (data_dir / "postgres" / "postmaster.pid", data_dir / "redis" / "redis.pid"):
        if pidfile.exists():
            pids.append(int(pidfile.read_text().splitlines()[0]))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@slow
def test_dev_serves_health_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), LOG_LEVEL="WARNING")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "dev"], env=env)
    try:
        body = None
        while time.monotonic() - started < START_SECONDS:
            assert proc.poll() is None, "dev exited early"
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": "{ health { database redis version } }"},
                    timeout=2,
                )
                body = response.json()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert body is not None, f"no answer within {START_SECONDS} s"
        assert body["data"]["health"]["database"] == "OK"
        assert body["data"]["health"]["redis"] == "OK"
        pids = _server_pids(data_dir)
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    assert [pid for pid in pids if _alive(pid)] == [], "no orphan postgres or redis-server"
    assert (data_dir / "postgres" / "PG_VERSION").exists(), "data is kept between runs"


def _gql(port: int, query: str, variables: dict[str, Any] | None = None, token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


HEALTH = "{ health { database redis } }"
PING = (
    'mutation($w: ID!, $d: Int!) { ping(workspaceId: $w, message: "m", delayMs: $d)'
    " { job { id status } errors { code } } }"
)
JOB = "query($id: ID!) { job(id: $id) { status attempts } }"


def _wait(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Wait on a condition; the timeout only bounds a broken run."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@slow
def test_dev_restarts_killed_servers_and_queued_jobs_complete(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    # One job at a time, so a job can wait in Redis's queue when Redis is killed.
    env.update(DATA_DIR=str(data_dir), PORT=str(port), LOG_LEVEL="WARNING", WORKER_CONCURRENCY="1")
    # The waits below poll through GraphQL, ten times a second while the restarts take
    # their time: rate limits are not what this test is about.
    env.update(RATE_LIMIT_ANONYMOUS="100000", RATE_LIMIT_FREE="100000")
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "dev"], env=env, stderr=log)
    try:
        _wait("the API", lambda: _answers(port, proc), timeout=START_SECONDS)
        email = f"dev-{os.getpid()}@example.com"
        token = _gql(
            port,
            "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            {"i": {"email": email, "password": "correct horse battery staple 42", "name": "D"}},
        )["register"]["accessToken"]
        workspace = _gql(
            port,
            'mutation { createWorkspace(input: {name: "Dev"}) { workspace { id } } }',
            token=token,
        )["createWorkspace"]["workspace"]["id"]

        def ping(delay_ms: int) -> str:
            job = _gql(port, PING, {"w": workspace, "d": delay_ms}, token)["ping"]["job"]
            return str(job["id"])

        def status(job_id: str) -> str:
            return str(_gql(port, JOB, {"id": job_id}, token)["job"]["status"])

        running = ping(3000)
        _wait("the first job to run", lambda: status(running) == "RUNNING")
        waiting = ping(0)  # queued behind it in Redis

        # Freeze the supervisor so the outage lasts while we look at it, then kill Redis.
        redis_pid = int((data_dir / "redis" / "redis.pid").read_text())
        proc.send_signal(signal.SIGSTOP)
        try:
            os.kill(redis_pid, signal.SIGKILL)
            _wait("redis to be gone", lambda: not _alive(redis_pid), timeout=10)
            assert _gql(port, HEALTH)["health"] == {"database": "OK", "redis": "UNAVAILABLE"}
            during = ping(0)  # the API still takes jobs: the row is stored, the sweeper sends it
            assert status(during) == "QUEUED"
        finally:
            proc.send_signal(signal.SIGCONT)

        _wait("redis to come back", lambda: _gql(port, HEALTH)["health"]["redis"] == "OK")
        for job_id in (running, waiting, during):
            _wait(f"job {job_id}", lambda job_id=job_id: status(job_id) == "SUCCEEDED")  # type: ignore[misc]
        assert _server_pids(data_dir)[1] != redis_pid, "a new redis-server"

        # The same for Postgres: its postmaster is killed, the supervisor starts it again.
        postmaster = _server_pids(data_dir)[0]
        proc.send_signal(signal.SIGSTOP)
        try:
            os.kill(postmaster, signal.SIGKILL)
            _wait("postgres to be gone", lambda: not _alive(postmaster), timeout=10)
            assert _gql(port, HEALTH)["health"] == {"database": "UNAVAILABLE", "redis": "OK"}
        finally:
            proc.send_signal(signal.SIGCONT)
        _wait("postgres to come back", lambda: _gql(port, HEALTH)["health"]["database"] == "OK")
        after = ping(0)
        _wait("a job after the restarts", lambda: status(after) == "SUCCEEDED")
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=START_SECONDS)
    output = log_path.read_text()
    assert "redis killed by SIGKILL; restarting in" in output
    assert "redis restarted (restart 1)" in output
    assert "postgres stopped (its postmaster is gone); restarting in" in output
    assert "postgres restarted (restart 1)" in output
    assert code == 0


def _answers(port: int, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "dev exited early"
    try:
        health = _gql(port, HEALTH)["health"]
    except httpx.HTTPError:
        return False
    return bool(health == {"database": "OK", "redis": "OK"})


class _FlakyChild:
    """A child that is down until started; `fail_starts` starts raise first."""

    def __init__(self, name: str, fail_starts: int = 0) -> None:
        self.name = name
        self.up = True
        self.starts = 0
        self.fail_starts = fail_starts

    def start(self) -> None:
        self.starts += 1
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("port busy")
        self.up = True

    def running(self) -> bool:
        return self.up

    def describe_exit(self) -> str:
        return "exited with code 1"


def test_supervisor_restarts_with_backoff_and_logs_it() -> None:
    from app.dev import Supervisor

    now = [0.0]
    said: list[str] = []
    api, worker = _FlakyChild("api"), _FlakyChild("worker", fail_starts=2)
    sup = Supervisor(
        [worker, api], base=1, ceiling=4, stable=30, say=said.append, clock=lambda: now[0]
    )

    def tick(seconds: float) -> None:
        now[0] += seconds
        sup.check()

    tick(1)
    assert said == [], "nothing to do while all run"
    worker.up = False
    tick(1)
    assert said == ["worker exited with code 1; restarting in 1.0 s"]
    tick(0.5)
    assert worker.starts == 0, "not before its backoff"
    tick(0.5)  # the start fails twice: 2 s, then 4 s (the ceiling)
    tick(2)
    tick(4)
    assert worker.starts == 3 and worker.up and api.up and api.starts == 0
    assert said[1:] == [
        "worker did not start (port busy); restarting in 2.0 s",
        "worker did not start (port busy); restarting in 4.0 s",
        "worker restarted (restart 3)",
    ]
    # Up for longer than `stable`: the next crash starts from the base delay again.
    tick(31)
    worker.up = False
    tick(1)
    assert said[-1] == "worker exited with code 1; restarting in 1.0 s"
