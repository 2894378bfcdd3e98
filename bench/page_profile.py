"""The versus benchmark's 50-item content page, in process: CPU ms per request, profilable.

It uses the database content_bench.py seeded and kept (`bench_content`, its state file for
the bench user and workspace), builds the real ASGI app with its lifespan, signs the bench
user in and sends versus_postgraphile.py's page query through the whole HTTP stack
(httpx's ASGITransport: middleware, the GraphQL view, the schema, the database) N times,
one request at a time or `--concurrency` at once. Prints process CPU ms per request (the
client's share included: httpx's ASGITransport is cheap beside the server's work): the
mean, and the median and 10th percentile of the requests' own CPU, steadier on a loaded
machine; and the load average, so figures from a shared machine can be read with care.

    source /work/tools/bench-servers.env   # DATABASE_URL (admin) and REDIS_URL
    .venv/bin/python bench/page_profile.py --requests 200
    .venv/bin/python bench/page_profile.py --profile --requests 300     # cProfile top 40
    .venv/bin/py-spy record -o page.svg -- .venv/bin/python bench/page_profile.py -n 2000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvloop
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))

import content_bench as cb
from versus_postgraphile import SC_PAGE

from app.asgi import create_app
from app.db import plain_pg_url
from app.embedded import with_database
from app.settings import Settings
from schema.ids import to_global_id


def settings_for_bench() -> Settings:
    """The environment's servers, the bench database, rate limits out of the way."""
    admin = Settings()
    if not admin.database_url or not admin.redis_url:
        raise SystemExit("set DATABASE_URL and REDIS_URL (source /work/tools/bench-servers.env)")
    unlimited = 10**9
    return Settings(
        database_url=with_database(admin.database_url, cb.BENCH_DATABASE),
        redis_url=admin.redis_url,
        log_level="WARNING",
        rate_limit_anonymous=unlimited,
        rate_limit_free=unlimited,
        rate_limit_pro=unlimited,
        rate_limit_enterprise=unlimited,
        embedding_provider="offline",
        embedding_dimensions=cb.DIMENSIONS,
    )


async def bench_user(database_url: str) -> tuple[str, str]:
    """(email, workspace global id): content_bench's state file, else the database itself
    (a seed that stopped after its rows, before the file: its one user, its largest
    workspace)."""
    if cb.STATE_FILE.exists():
        state = json.loads(cb.STATE_FILE.read_text())
        return state["email"], state["workspace_id"]
    conn = await asyncpg.connect(plain_pg_url(database_url))
    try:
        email = await conn.fetchval("SELECT email FROM users WHERE email LIKE 'bench-%'")
        workspace = await conn.fetchval(
            "SELECT workspace_id FROM contents GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
    finally:
        await conn.close()
    if email is None or workspace is None:
        raise SystemExit("bench_content is not seeded (content_bench.py --keep)")
    return email, str(to_global_id("Workspace", workspace))


async def run(args: argparse.Namespace) -> None:
    settings = settings_for_bench()
    assert settings.database_url is not None
    email, workspace = await bench_user(settings.database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            login = {"email": email, "password": cb.PASSWORD}
            data = await cb.gql(http, "http://bench/graphql", cb.LOGIN, {"i": login})
            headers = {"Authorization": f"Bearer {data['login']['accessToken']}"}
            body = {"query": SC_PAGE, "variables": {"ws": workspace}}

            async def one() -> None:
                response = await http.post("/graphql", json=body, headers=headers)
                answer: dict[str, Any] = response.json()
                if response.status_code != 200 or "errors" in answer:
                    raise SystemExit(f"HTTP {response.status_code}: {response.text[:300]}")
                if len(answer["data"]["contents"]["edges"]) != 50:
                    raise SystemExit("the page did not answer 50 items")

            async def batch(count: int) -> None:
                for _ in range(count // args.concurrency):
                    started = time.process_time()
                    await asyncio.gather(*(one() for _ in range(args.concurrency)))
                    each.append((time.process_time() - started) / args.concurrency)

            each: list[float] = []
            await batch(args.warmup)
            each.clear()
            statements: list[str] = []

            def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                statements.append(" ".join(statement.split())[:110])

            engine = app.state.smartcontent.engine.sync_engine
            event.listen(engine, "before_cursor_execute", record)
            await one()
            event.remove(engine, "before_cursor_execute", record)
            print(f"{len(statements)} statements per page:", *statements, sep="\n  ")
            profiler = cProfile.Profile() if args.profile else None
            wall, cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            await batch(args.requests)
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = args.requests // args.concurrency * args.concurrency
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    # The median and the 10th percentile of each request's (or batch's) CPU: other
    # processes on the machine inflate some requests (caches, migrations), not all.
    each.sort()
    median, p10 = each[len(each) // 2] * 1000, each[len(each) // 10] * 1000
    print(
        f"page: {done} requests, concurrency {args.concurrency}: "
        f"{cpu / done * 1000:.2f} ms CPU/request (median {median:.2f}, p10 {p10:.2f}), "
        f"{wall / done * 1000:.2f} ms wall/request "
        f"(load average {load}{', under cProfile' if profiler else ''})"
    )
    if profiler:
        stats = pstats.Stats(profiler).strip_dirs().sort_stats(args.sort)
        stats.print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=200, help="measured (200)")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests first (30)")
    parser.add_argument("-c", "--concurrency", type=int, default=1, help="at once (1)")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured requests")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime)")
    parser.add_argument("--top", type=int, default=40, help="cProfile rows shown (40)")
    args = parser.parse_args()
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
