"""`smartcontent dev`: embedded servers, migrations, API and worker under one supervisor.

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
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from app.embedded import EmbeddedPostgres, EmbeddedRedis, ensure_database
from app.settings import Settings

DEV_DATABASE = "smartcontent"
READY_TIMEOUT_SECONDS = 60


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


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _terminate(children: list[subprocess.Popen[bytes]], grace: float) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_dev(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    host = host or settings.host
    port = port or settings.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)

    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    children: list[subprocess.Popen[bytes]] = []
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
        command = [sys.executable, "-m", "app.cli"]
        # Own process groups: a terminal Ctrl-C reaches only us; we stop children in order.
        api = subprocess.Popen(  # noqa: S603
            [*command, "serve", "--host", host, "--port", str(port)],
            env=env,
            start_new_session=True,
        )
        worker = subprocess.Popen([*command, "worker"], env=env, start_new_session=True)  # noqa: S603
        children = [api, worker]

        shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        if not _wait_ready(
            f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}/readyz", children
        ):
            _say("the API did not become ready; see the log above")
            code = 1
        else:
            _say(f"ready: GraphiQL at http://{shown_host}:{port}/graphql  (Ctrl-C to stop)")
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            _say("a child process exited; stopping")
            code = 1
    except _Stop:
        _say("stopping")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _terminate(children, settings.graceful_shutdown_seconds + 5)
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
        _say("stopped")
    return code
