"""`smartcontent dev` on a machine with no servers: embedded Postgres and Redis, migrations,
API and worker; SIGTERM stops everything and leaves no server process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.embedded import free_port

pytestmark = [pytest.mark.slow, pytest.mark.no_db]


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


def test_dev_serves_health_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), LOG_LEVEL="WARNING")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "dev"], env=env)
    try:
        body = None
        while time.monotonic() - started < 60:
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
        assert body is not None, "no answer within 60 s"
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
