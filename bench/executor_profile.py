"""CPU per request of the content page and of `{ __typename }`, in process (no sockets).

Runs the versus bench's page query against the content benchmark's database (as seeded by
bench/versus_postgraphile.py; only read here) through the ASGI app, signed in as the bench
user, on Strawberry's own execution context (graphql-core's executor) and on the plan
(schema.execution) in alternating rounds in the one process (the machine's load drifts),
and prints the median process CPU ms per request of each with the load average.
`--profile PREFIX` also writes a cProfile of the page per executor (PREFIX-stock.prof,
PREFIX-plan.prof) and prints its self time by package. `--baseline FILE` adds a third
executor, the `PlannedExecutor` of another version of schema/execution/executor.py (e.g.
`git show main:schema/execution/executor.py > /tmp/main_executor.py`), to compare a change
with main in the same rounds.

    source /work/tools/bench-servers.env
    .venv/bin/python bench/executor_profile.py -n 50 --rounds 7 --profile /tmp/page
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import content_bench as cb
from page_profile import bench_user, settings_for_bench
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from versus_postgraphile import SC_PAGE, TYPENAME

from schema.execution.executor import PlannedExecutor
from schema.schema import SmartContentSchema

EXECUTORS: dict[str, type[Any]] = {
    "stock": StrawberryGraphQLCoreExecutionContext,
    "plan": PlannedExecutor,
}


# Where a function's self time goes, by the first of these its file path contains.
PACKAGES = {
    "graphql-core": "/graphql/",
    "strawberry": "/strawberry/",
    "plan (schema/execution)": "/schema/execution/",
    "sqlalchemy": "/sqlalchemy/",
    "asyncpg": "/asyncpg/",
    "asyncio": "/asyncio/",
}


def by_package(stats: pstats.Stats, n: int) -> str:
    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    for (path, _line, _name), row in stats.stats.items():  # type: ignore[attr-defined]
        package = next((name for name, part in PACKAGES.items() if part in path), "other")
        totals[package] = totals.get(package, 0.0) + row[2]
        calls[package] = calls.get(package, 0) + row[1]
    everything = sum(totals.values())
    lines = [
        f"  {name:24} {seconds / n * 1000:7.3f}  {seconds / everything:6.1%}"
        f"  {calls[name] / n:9.0f} calls"
        for name, seconds in sorted(totals.items(), key=lambda item: -item[1])
    ]
    executor = sum(totals.get(name, 0.0) for name in list(PACKAGES)[:3])
    executor_calls = sum(calls.get(name, 0) for name in list(PACKAGES)[:3])
    lines.append(
        f"  {'executor (first three)':24} {executor / n * 1000:7.3f}  {executor / everything:6.1%}"
        f"  {executor_calls / n:9.0f} calls"
    )
    return "\n".join(lines)


def baseline_executor(path: str) -> type[Any]:
    """The PlannedExecutor of another copy of schema/execution/executor.py (its own plan
    cache; it imports this checkout's schema.execution.plan)."""
    spec = importlib.util.spec_from_file_location("baseline_executor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    executor: type[Any] = module.PlannedExecutor
    return executor


def schema_of(app: Starlette) -> SmartContentSchema:
    for route in app.routes:
        if isinstance(route, Route) and route.path == "/graphql":
            schema = route.endpoint.schema  # type: ignore[attr-defined]
            assert isinstance(schema, SmartContentSchema)
            return schema
    raise LookupError("no /graphql route")


async def run(args: argparse.Namespace) -> None:
    from app.asgi import create_app

    # The page harness's settings and bench user (rate limits out of the way).
    settings = settings_for_bench()
    assert settings.database_url is not None
    email, workspace = await bench_user(settings.database_url)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            login = {"email": email, "password": cb.PASSWORD}
            token = (await cb.gql(http, "/graphql", cb.LOGIN, {"i": login}))["login"]["accessToken"]
            headers = {"Authorization": f"Bearer {token}"}
            page = {"query": SC_PAGE, "variables": {"ws": workspace}}
            typename = {"query": TYPENAME}

            async def once(body: dict[str, Any]) -> None:
                response = await http.post("/graphql", json=body, headers=headers)
                assert response.status_code == 200 and "errors" not in response.json(), (
                    response.text
                )

            schema = schema_of(app)

            if args.baseline:
                EXECUTORS["baseline"] = baseline_executor(args.baseline)

            async def rounds(body: dict[str, Any], n: int) -> dict[str, list[float]]:
                """CPU ms per request by executor, alternating rounds of `n` requests
                (the machine's load drifts; alternating puts both under the same)."""
                cpu: dict[str, list[float]] = {mode: [] for mode in EXECUTORS}
                for _ in range(args.rounds):
                    for mode, executor in EXECUTORS.items():
                        schema.execution_context_class = executor
                        for _ in range(args.warmup):
                            await once(body)
                        started = time.process_time()
                        for _ in range(n):
                            await once(body)
                        cpu[mode].append((time.process_time() - started) / n * 1000)
                return cpu

            for name, body, n in (("page", page, args.n), ("typename", typename, args.n * 5)):
                cpu = await rounds(body, n)
                load = os.getloadavg()
                medians = {mode: statistics.median(values) for mode, values in cpu.items()}
                figures = "  ".join(f"{mode} {ms:7.3f}" for mode, ms in medians.items())
                ratios = "  ".join(
                    f"plan/{mode} {medians['plan'] / medians[mode]:.3f}"
                    for mode in medians
                    if mode != "plan"
                )
                print(
                    f"{name:9} CPU ms/request (median of {args.rounds} rounds of {n}): "
                    f"{figures}  {ratios}  load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
                )
            if args.profile:
                for mode, executor in EXECUTORS.items():
                    schema.execution_context_class = executor
                    profiler = cProfile.Profile(time.process_time)  # CPU, not wall time
                    profiler.enable()
                    for _ in range(args.n):
                        await once(page)
                    profiler.disable()
                    profiler.dump_stats(f"{args.profile}-{mode}.prof")
                    print(f"page self time by package, {mode} (cProfile, ms/request):")
                    print(by_package(pstats.Stats(profiler), args.n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile", default="")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", default="", help="another executor.py to compare")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
