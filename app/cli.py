"""`smartcontent` command line: dev, serve, worker, migrate, export-schema, rotate-keys."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from app.settings import Settings, load_settings_or_exit


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    # uvicorn drains, then re-raises the signal it caught under the handler installed
    # before it started. A no-op handler there turns a graceful stop into exit code 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    host, port = args.host or settings.host, args.port or settings.port
    # The app factory (in each worker process) reads settings from the environment: pass the
    # flags on, so that the API's own URLs (`Settings.api_url`) name the address it serves on.
    os.environ["HOST"], os.environ["PORT"] = host, str(port)
    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        workers=args.workers or settings.api_workers,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        # One websocket message may be as large as one HTTP body, no larger.
        ws_max_size=settings.max_body_bytes,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=20,
        ws_ping_timeout=20,
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from workers.settings import QUEUES, run

    run(settings, tuple(args.queue or QUEUES))
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from app.dev import embedded_database_url
    from app.migrate import upgrade_head

    if settings.database_url:
        upgrade_head(settings.database_url)
    else:
        with embedded_database_url(settings) as url:
            upgrade_head(url)
    print("smartcontent: database schema is up to date", file=sys.stderr)
    return 0


def _rotate_keys(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from app.db import create_engine, create_session_factory
    from app.security.keys import load_keys
    from app.services.ops.keys import RotationReport, rotate_all

    if not settings.database_url:
        print("smartcontent: DATABASE_URL must be set for rotate-keys", file=sys.stderr)
        return 2

    async def run() -> RotationReport:
        engine = create_engine(str(settings.database_url), settings)
        try:
            return await rotate_all(create_session_factory(engine), load_keys(settings).box)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    print(
        f"smartcontent: re-encrypted {report.credentials} account credentials and "
        f"{report.totp_secrets} TOTP secrets under the newest key",
        file=sys.stderr,
    )
    print(f"smartcontent: re-encrypted {report.webhook_secrets} webhook secrets", file=sys.stderr)
    if not report.complete:
        print(
            f"smartcontent: no configured key opens {len(report.unreadable_accounts)} account "
            f"credentials and {len(report.unreadable_users)} TOTP secrets (left unchanged): "
            "keep every old key in ENCRYPTION_KEYS until they are re-entered",
            file=sys.stderr,
        )
        if report.unreadable_webhooks:
            print(
                f"smartcontent: no configured key opens {len(report.unreadable_webhooks)} "
                "webhook secrets (left unchanged; rotateWebhookSecret replaces them)",
                file=sys.stderr,
            )
        return 1
    return 0


def _dev(settings: Settings, args: argparse.Namespace) -> int:
    from app.dev import run_dev

    return run_dev(settings, host=args.host, port=args.port)


def _export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from schema.schema import schema_sdl

    Path(args.path).write_text(schema_sdl())
    print(f"smartcontent: wrote {args.path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartcontent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("dev", "run API + worker, with embedded Postgres/Redis unless DATABASE_URL/REDIS_URL"),
        ("serve", "run the API server (uvicorn)"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--host", default=None)
        cmd.add_argument("--port", type=int, default=None)
    sub.choices["serve"].add_argument(
        "--workers", type=int, default=None, help="API processes (default: API_WORKERS, 1)"
    )
    worker = sub.add_parser("worker", help="run the arq workers (jobs and publish queues)")
    worker.add_argument(
        "--queue",
        action="append",
        choices=("jobs", "publish"),
        help="consume only this queue (repeatable; default: both, in one process)",
    )
    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    sub.add_parser(
        "rotate-keys",
        help="re-encrypt stored secrets under the first of ENCRYPTION_KEYS (after adding a key)",
    )
    export = sub.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("path", nargs="?", default="schema.graphql")
    args = parser.parse_args(argv)

    settings = load_settings_or_exit()
    handlers = {
        "dev": _dev,
        "serve": _serve,
        "worker": _worker,
        "migrate": _migrate,
        "export-schema": _export_schema,
        "rotate-keys": _rotate_keys,
    }
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
