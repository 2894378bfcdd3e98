"""The fixed cost of one GraphQL request: `{ __typename }` through the real ASGI app.

An in-process loop (httpx ASGITransport, one request at a time) so that only this process's
CPU counts: process CPU seconds (`time.process_time`) per request, minus what the same
loop costs against a trivial ASGI app that answers a fixed JSON body (the client's own
share: httpx building and reading each request). Database statements per request are
counted on the engine. Runs anonymous, with an access token (JWT) and with an API key.

    source /work/tools/bench-servers.env   # optional: otherwise embedded servers in a temp dir
    .venv/bin/python bench/request_overhead.py -n 2000 [--profile jwt] [--rounds 3]

With DATABASE_URL set it uses (creates, migrates) its own database `request_overhead` there.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from app.asgi import create_app
from app.embedded import EmbeddedPostgres, EmbeddedRedis, ensure_database
from app.migrate import upgrade_head
from app.settings import Settings

TYPENAME = {"query": "{ __typename }"}
TARGET_MS = 0.5
DATABASE = "request_overhead"


async def _fixed_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The client's share: a response without any server work."""
    body = b'{"data":{"__typename":"Query"}}'
    while (await receive())["type"] != "http.request":
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _loop(client: httpx.AsyncClient, headers: dict[str, str], n: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for n requests."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        response = await client.post("/graphql", json=TYPENAME, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"unexpected answer {response.status_code}: {response.text}")
    return time.process_time() - cpu, time.perf_counter() - wall


async def _setup(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """Headers for each kind of caller: a registered user's JWT, an API key of theirs."""

    async def gql(query: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    data = await gql(
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken errors { code } } }",
        {"i": {"email": email, "password": "correct horse battery staple", "name": "Bench"}},
        {},
    )
    jwt = {"authorization": f"Bearer {data['register']['accessToken']}"}
    data = await gql(
        "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
        {"i": {"name": "Bench"}},
        jwt,
    )
    workspace = data["createWorkspace"]["workspace"]["id"]
    data = await gql(
        'mutation($w: ID!) { createApiKey(workspaceId: $w, name: "bench", role: VIEWER) '
        "{ secret } }",
        {"w": workspace},
        jwt,
    )
    api_key = {"authorization": f"Bearer {data['createApiKey']['secret']}"}
    return {"anonymous": {}, "jwt": jwt, "api_key": api_key}


def _count_statements(app: Starlette) -> Callable[[], int]:
    seen = [0]

    def record(*_args: Any) -> None:
        seen[0] += 1

    event.listen(app.state.smartcontent.engine.sync_engine, "before_cursor_execute", record)
    return lambda: seen[0]


async def run(settings: Settings, args: argparse.Namespace) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=_fixed_app), base_url="http://bench"
            ) as fixed,
        ):
            callers = await _setup(client)
            statements = _count_statements(app)
            await _loop(fixed, {}, 200)
            baseline = statistics.median([(await _loop(fixed, {}, args.n))[0] for _ in range(3)])
            print(f"client share: {baseline / args.n * 1000:.3f} ms CPU per request (subtracted)")
            for kind in args.kinds:
                headers = callers[kind]
                await _loop(client, headers, 200)  # warm: caches, pools, JIT-free but lazy paths
                before = statements()
                runs: list[float] = []
                walls: list[float] = []
                for _ in range(args.rounds):
                    cpu, wall = await _loop(client, headers, args.n)
                    runs.append(cpu)
                    walls.append(wall)
                per_statement = (statements() - before) / (args.n * args.rounds)
                api_ms = (statistics.median(runs) - baseline) / args.n * 1000
                best_ms = (min(runs) - baseline) / args.n * 1000  # least disturbed by others
                verdict = "met" if api_ms < TARGET_MS else "NOT met"
                per_round = [round(r / args.n * 1000, 3) for r in runs]
                print(
                    f"{kind:>9}: API CPU {api_ms:.3f} ms/request median, {best_ms:.3f} best "
                    f"(target < {TARGET_MS} ms: {verdict}), rounds {per_round} ms incl. "
                    f"client, {args.n / statistics.median(walls):.0f} req/s in-process, "
                    f"{per_statement:.2f} statements/request"
                )
            if args.profile:
                profiler = cProfile.Profile(time.process_time)  # CPU, not waits
                profiler.enable()
                await _loop(client, callers[args.profile], args.n)
                profiler.disable()
                if args.profile_file:
                    profiler.dump_stats(args.profile_file)
                stats = pstats.Stats(profiler).sort_stats("cumulative")
                stats.print_stats(45)
                stats.sort_stats("tottime").print_stats(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--kinds", nargs="+", default=["anonymous", "jwt", "api_key"], help="callers to run"
    )
    parser.add_argument("--profile", choices=["anonymous", "jwt", "api_key"], default=None)
    parser.add_argument("--profile-file", default=None, help="also write the profile there")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    configured = Settings()
    with tempfile.TemporaryDirectory(prefix="request-overhead-") as tmp:
        pg = redis = None
        try:
            database_url, redis_url = configured.database_url, configured.redis_url
            if not database_url:
                pg = EmbeddedPostgres(Path(tmp))
                database_url = pg.start()
            database_url = asyncio.run(ensure_database(database_url, DATABASE))
            if not redis_url:
                redis = EmbeddedRedis(Path(tmp))
                redis_url = redis.start()
            upgrade_head(database_url)
            settings = Settings(
                database_url=database_url,
                redis_url=redis_url,
                log_level="WARNING",
                data_dir=Path(tmp),
                media_dir=Path(tmp) / "media",
                secret_key="bench-secret-key-that-is-long-enough-0123456789",
                mailer="memory",
                # The loop measures the limiter's cost, never its refusals.
                rate_limit_anonymous=10**9,
                rate_limit_free=10**9,
            )
            asyncio.run(run(settings, args))
        finally:
            if redis is not None:
                redis.stop()
            if pg is not None:
                pg.stop()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
