"""`smartcontent dev`: embedded servers, migrations, API and worker under one supervisor.

A child that dies (embedded Postgres, embedded Redis, the worker, the API) is restarted
with exponential backoff, and each exit and restart is logged; the others keep running
(the API answers what needs neither, and reports the missing one in `health`).
Ctrl-C or SIGTERM stops the API and worker first (they drain), then Redis, then Postgres,
so no server process outlives the command.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from app.embedded import EmbeddedPostgres, EmbeddedRedis, ensure_database
from app.settings import Settings

DEV_DATABASE = "smartcontent"
READY_TIMEOUT_SECONDS = 60
POLL_SECONDS = 0.5


def _say(message: str) -> None:
    print(f"smartcontent: {message}", file=sys.stderr, flush=True)


@contextmanager
def embedded_database_url(settings: Settings, name: str = DEV_DATABASE) -> Iterator[str]:
    """Start the embedded Postgres for the duration of the block."""
    pg = EmbeddedPostgres(settings.data_dir)
    try:
        admin = pg.start()
        yield asyncio.run(ensure_database(admin, name))
    finally:
        pg.stop()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


class Child(Protocol):
    """Something the supervisor keeps running."""

    name: str

    def start(self) -> None: ...
    def running(self) -> bool: ...
    def describe_exit(self) -> str: ...


def _exit_text(code: int | None) -> str:
    if code is None:
        return "stopped"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class ProcessChild:
    """A `smartcontent` subcommand in its own process group (a terminal Ctrl-C reaches only
    the supervisor, which stops children in order)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "app.cli", *self.args], env=self.env, start_new_session=True
        )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def describe_exit(self) -> str:
        return _exit_text(self.process.returncode if self.process else None)

    def terminate(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RedisChild:
    name = "redis"

    def __init__(self, server: EmbeddedRedis) -> None:
        self.server = server

    def start(self) -> None:
        self.server.start()  # same port and data (its append-only file) on a restart

    def running(self) -> bool:
        return self.server.running()

    def describe_exit(self) -> str:
        process = self.server.process
        return _exit_text(process.returncode if process else None)


class PostgresChild:
    name = "postgres"

    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server

    def start(self) -> None:
        self.server.restart()

    def running(self) -> bool:
        return self.server.running()

    def describe_exit(self) -> str:
        return "stopped (its postmaster is gone)"


@dataclass
class _Entry:
    child: Child
    started_at: float
    restarts: int = 0
    quick_failures: int = 0  # exits (or failed starts) in a row, each soon after a start
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Restarts children that died, with exponential backoff: `base`, 2x, 4x ... up to
    `ceiling` seconds while a child keeps dying within `stable` seconds of its start."""

    children: list[Child]
    base: float = 0.5
    ceiling: float = 30.0
    stable: float = 30.0
    say: Callable[[str], None] = _say
    clock: Callable[[], float] = time.monotonic
    _entries: list[_Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        now = self.clock()
        self._entries = [_Entry(child, started_at=now) for child in self.children]

    def restarts(self, name: str) -> int:
        return next(e.restarts for e in self._entries if e.child.name == name)

    def check(self) -> None:
        """Notice exits and perform due restarts; call it every POLL_SECONDS."""
        for entry in self._entries:
            now = self.clock()
            if entry.restart_at is None:
                if entry.child.running():
                    if now - entry.started_at >= self.stable:
                        entry.quick_failures = 0
                    continue
                self._schedule(entry, now, entry.child.describe_exit())
            elif now >= entry.restart_at:
                entry.restarts += 1
                try:
                    entry.child.start()
                except Exception as exc:
                    entry.started_at = self.clock()
                    self._schedule(entry, self.clock(), f"did not start ({exc})")
                    continue
                entry.started_at = self.clock()
                entry.restart_at = None
                self.say(f"{entry.child.name} restarted (restart {entry.restarts})")

    def _schedule(self, entry: _Entry, now: float, why: str) -> None:
        quick = now - entry.started_at < self.stable
        entry.quick_failures = entry.quick_failures + 1 if quick else 1
        delay = min(self.base * 2 ** (entry.quick_failures - 1), self.ceiling)
        entry.restart_at = now + delay
        self.say(f"{entry.child.name} {why}; restarting in {delay:.1f} s")


def _wait_ready(url: str, children: list[ProcessChild]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not all(child.running() for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def run_dev(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    host = host or settings.host
    port = port or settings.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)

    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    processes: list[ProcessChild] = []
    code = 0
    try:
        database_url = settings.database_url
        if not database_url:
            _say(f"starting embedded Postgres (data in {settings.data_dir / 'postgres'})")
            pg = EmbeddedPostgres(settings.data_dir)
            database_url = asyncio.run(ensure_database(pg.start(), DEV_DATABASE))
        redis_url = settings.redis_url
        if not redis_url:
            _say(f"starting embedded Redis (data in {settings.data_dir / 'redis'})")
            redis = EmbeddedRedis(settings.data_dir)
            redis_url = redis.start()

        from app.migrate import upgrade_head

        _say("applying migrations")
        upgrade_head(database_url)

        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        api = ProcessChild("api", ["serve", "--host", host, "--port", str(port)], env)
        worker = ProcessChild("worker", ["worker"], env)
        processes = [api, worker]
        for child in processes:
            child.start()

        shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        if not _wait_ready(
            f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/readyz", processes
        ):
            _say("the API did not become ready; see the log above")
            code = 1
        else:
            _say(f"ready: GraphiQL at http://{shown_host}:{port}/graphql  (Ctrl-C to stop)")
            # Servers first: when one comes back, the processes that need it follow.
            children: list[Child] = []
            if pg is not None:
                children.append(PostgresChild(pg))
            if redis is not None:
                children.append(RedisChild(redis))
            supervisor = Supervisor([*children, worker, api])
            while True:
                supervisor.check()
                time.sleep(POLL_SECONDS)
    except _Stop:
        _say("stopping")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in processes:
            child.terminate()
        deadline = time.monotonic() + settings.graceful_shutdown_seconds + 5
        for child in processes:
            child.wait(deadline)
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
        _say("stopped")
    return code
