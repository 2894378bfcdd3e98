"""SmartContent beside PostGraphile 4 on the same database: the content benchmark's 50-item
page and `{ __typename }`, one server loaded at a time (issue 13's standing benchmark).

It builds (or with --reuse, reuses) bench/content_bench.py's database through that script's
own functions, starts `smartcontent serve` and PostGraphile 4.14.1 (`npx`) as child
processes, checks that both answer the same 50 items with the same field values, then
loads each server in turn with the same number of keep-alive connections. The load client
is this script run again as a separate process (`--load-client`, content_bench's
LeanClient on uvloop), so its CPU is never the server's; its CPU per request is printed.
API CPU per request is the server process tree's CPU seconds from /proc (after - before)
over the requests answered; Postgres's separately (embedded server only). Prints a JSON
report and one line per target; exit code 0 only when every target is met. Without Node
(`npx`) it says so and exits 0.

    make bench-versus                                   # DURATION=5 for a short run
    .venv/bin/python bench/versus_postgraphile.py --duration 5 --keep   # then --reuse

Longer than 400 lines because it is one self-contained benchmark (two servers, the answers
compared, a separate load process, the report) meant to be read and run alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))

import content_bench as cb

from app.db import plain_pg_url
from app.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from app.migrate import upgrade_head
from app.settings import Settings

POSTGRAPHILE = "postgraphile@4.14.1"

SC_PAGE = """query($ws: ID!) { contents(workspaceId: $ws, first: 50, orderBy: CREATED_DESC) {
  edges { node { id title body status createdAt author { name } campaign { name }
    variations { platform body } commentCount } } } }"""

# The same page over PostGraphile's generated schema: the same filter (the workspace, not
# deleted) and order (created_at, id descending) as app/services/content/library.py.
PG_PAGE = """query($ws: UUID!) { allContents(first: 50, orderBy: [CREATED_AT_DESC, ID_DESC],
  condition: {workspaceId: $ws, deletedAt: null}) {
  nodes { id title body status createdAt userByCreatedById { name }
    campaignByCampaignId { name }
    contentVariationsByContentId(orderBy: [PLATFORM_ASC]) { nodes { platform body } }
    contentCommentsByContentId { totalCount } } } }"""

TYPENAME = "{ __typename }"
# Time for a load process to start (its imports) before the processes begin together.
STARTUP_SECONDS = 6.0

TARGETS = {
    "page API CPU per request, SmartContent/PostGraphile": ("<=", 2.0),
    "page requests/s, SmartContent/PostGraphile": (">=", 0.5),
    "{ __typename } API CPU per request, SmartContent (ms)": ("<", 0.5),
}


# --- Normalising the two answers -----------------------------------------------------------


def _when(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def sc_items(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": cb.node_uuid(n["id"]),
            "title": n["title"],
            "body": n["body"],
            "status": n["status"],
            "createdAt": _when(n["createdAt"]),
            "author": n["author"] and n["author"]["name"],
            "campaign": n["campaign"] and n["campaign"]["name"],
            "variations": sorted((v["platform"], v["body"]) for v in n["variations"]),
            "comments": n["commentCount"],
        }
        for n in (e["node"] for e in data["contents"]["edges"])
    ]


def pg_items(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.UUID(n["id"]),
            "title": n["title"],
            "body": n["body"],
            "status": n["status"],
            "createdAt": _when(n["createdAt"]),
            "author": n["userByCreatedById"] and n["userByCreatedById"]["name"],
            "campaign": n["campaignByCampaignId"] and n["campaignByCampaignId"]["name"],
            "variations": sorted(
                (v["platform"], v["body"]) for v in n["contentVariationsByContentId"]["nodes"]
            ),
            "comments": n["contentCommentsByContentId"]["totalCount"],
        }
        for n in data["allContents"]["nodes"]
    ]


def differences(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[str]:
    """What differs between the two pages, item by item and field by field (empty: same)."""
    if len(ours) != 50 or len(theirs) != 50:
        return [f"{len(ours)} items from SmartContent, {len(theirs)} from PostGraphile"]
    found = []
    for n, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        found += [f"item {n} {key}: {a[key]!r} != {b[key]!r}" for key in a if a[key] != b[key]]
    return found


# --- Servers -------------------------------------------------------------------------------


class PostGraphile:
    """PostGraphile 4 through `npx` (its CLI; query log off so it does no console work)."""

    def __init__(self, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        command = ["npx", "--yes", POSTGRAPHILE, "-c", plain_pg_url(database_url)]
        command += ["--schema", "public", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--disable-graphiql", "--no-setof-functions-contain-nulls"]
        command += ["--disable-query-log"]
        self.process = subprocess.Popen(
            command, start_new_session=True, stdout=subprocess.DEVNULL, cwd=cb.BENCH_DATA_DIR
        )

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 180  # the first run downloads the package
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit("PostGraphile exited; see its output above")
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.post(self.url, json={"query": TYPENAME})
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.5)
        raise SystemExit("PostGraphile was not ready within 180 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def descendants_cpu(root: int) -> float:
    """CPU seconds of a process and every live descendant (npx -> sh -> node, `serve` ->
    its workers), plus what they reaped."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := cb._stat(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cb._cpu(pid, children=True)
        todo += parents.get(pid, [])
    return total


# --- Load ----------------------------------------------------------------------------------


def load_client(config: dict[str, Any]) -> None:
    """The separate load process: `connections` keep-alive connections, each sending the
    same body one request at a time for `duration` seconds; prints a JSON result."""

    async def run() -> dict[str, Any]:
        clients = [cb.LeanClient(config["url"]) for _ in range(config["connections"])]
        latencies: list[float] = []
        failures: list[str] = []
        # Every load process starts at the same moment, once its imports are done.
        await asyncio.sleep(max(0.0, config["start_at"] - time.time()))
        late = time.time() - config["start_at"]
        cpu_before = time.process_time()
        deadline = time.perf_counter() + config["duration"]

        async def worker(client: cb.LeanClient) -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    status, raw = await client.post(config["body"], config["token"])
                except Exception as exc:  # counted, and the connection opened again
                    failures.append(repr(exc)[:200])
                    client.writer = None
                    continue
                if status != 200 or b'"errors"' in raw:
                    failures.append(f"HTTP {status}: {raw[:200]!r}")
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        elapsed = time.perf_counter() - started
        for client in clients:
            await client.aclose()
        cpu = time.process_time() - cpu_before
        return {
            "latencies": latencies,
            "failures": failures,
            "elapsed": elapsed,
            "cpu": cpu,
            "late": late,
        }

    # To a file, not stdout: a long line on a pipe was seen interleaved with another write.
    Path(config["result_path"]).write_text(json.dumps(uvloop.run(run())))


@dataclass
class Figures:
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    api_cpu_ms: float
    pg_cpu_ms: float | None
    client_cpu_ms: float
    first_failure: str | None


def probe(server_pid: int, pg_pid: int | None) -> tuple[float, float | None]:
    """CPU seconds so far of the server's process tree and of Postgres (embedded only)."""
    return descendants_cpu(server_pid), cb._tree_cpu(pg_pid) if pg_pid else None


def _read_result(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


async def load(
    url: str,
    body: dict[str, Any],
    token: str,
    seconds: float,
    args: argparse.Namespace,
    pids: tuple[int, int | None],
) -> dict[str, Any]:
    """`args.client_processes` load processes sharing `args.connections`, started together;
    their merged results, and the servers' CPU from that start to the processes' exit."""
    share = [args.connections // args.client_processes] * args.client_processes
    share[0] += args.connections % args.client_processes
    start_at = time.time() + STARTUP_SECONDS
    common = {"url": url, "body": body, "token": token, "duration": seconds, "start_at": start_at}
    with tempfile.TemporaryDirectory(prefix="versus-load-") as results:
        paths = [Path(results, f"{index}.json") for index in range(len(share))]
        procs = []
        for connections, path in zip(share, paths, strict=True):
            # The configuration (with the bearer token) on stdin, not in the command line.
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--load-client", "-",
                stdin=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stdin is not None
            config = {**common, "connections": connections, "result_path": str(path)}
            proc.stdin.write(json.dumps(config).encode())
            await proc.stdin.drain()
            proc.stdin.close()
            procs.append(proc)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        before = probe(*pids)  # not before: the load processes' start-up is not the server's
        codes = [await proc.wait() for proc in procs]
        after = probe(*pids)
        if any(codes):
            raise RuntimeError(f"a load process failed (exit codes {codes})")
        outputs = [_read_result(path) for path in paths]
    merged: dict[str, Any] = {"latencies": [], "failures": [], "elapsed": 0.0, "cpu": 0.0}
    for part in outputs:
        merged["latencies"] += part["latencies"]
        merged["failures"] += part["failures"]
        merged["elapsed"] = max(merged["elapsed"], part["elapsed"])
        merged["cpu"] += part["cpu"]
        if part["late"] > 0.1:  # it loaded alone for a while: say so
            print(f"  a load process started {part['late']:.1f} s late", file=sys.stderr)
    merged["api_cpu"] = after[0] - before[0]
    merged["pg_cpu"] = None if before[1] is None or after[1] is None else after[1] - before[1]
    return merged


async def measure(
    pids: tuple[int, int | None],
    url: str,
    body: dict[str, Any],
    token: str,
    args: argparse.Namespace,
) -> Figures:
    await load(url, body, token, args.warmup, args, pids)
    result = await load(url, body, token, args.duration, args, pids)
    done = sorted(result["latencies"])
    n = max(1, len(done))
    return Figures(
        requests=len(done),
        failures=len(result["failures"]),
        rps=len(done) / result["elapsed"],
        p50_ms=cb.percentile(done, 50) * 1000,
        p95_ms=cb.percentile(done, 95) * 1000,
        api_cpu_ms=result["api_cpu"] * 1000 / n,
        pg_cpu_ms=None if result["pg_cpu"] is None else result["pg_cpu"] * 1000 / n,
        client_cpu_ms=result["cpu"] * 1000 / n,
        first_failure=result["failures"][0] if result["failures"] else None,
    )


# --- The run -------------------------------------------------------------------------------


async def sign_in(url: str, database_url: str, args: argparse.Namespace) -> cb.Seeded:
    """The seeded database's state: seeds it first (content_bench's seed) when needed."""
    seeded = cb.reusable(args) if args.reused else None
    if seeded is not None:
        print(f"reusing the database seeded earlier ({cb.STATE_FILE})")
        return seeded
    async with httpx.AsyncClient() as http:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        account = {"email": email, "password": cb.PASSWORD, "name": "Bench User"}
        data = await cb.gql(http, url, cb.REGISTER, {"i": account})
        token = data["register"]["accessToken"]
        user_id = cb.node_uuid(data["register"]["user"]["id"])
        data = await cb.gql(http, url, cb.CREATE_WORKSPACE, {"i": {"name": "Acme"}}, token)
        workspace = data["createWorkspace"]["workspace"]["id"]
    print("seeding (content_bench.seed):")
    await cb.seed(database_url, user_id, cb.node_uuid(workspace), args, cb.Timings())
    seeded = cb.Seeded(
        cb.BENCH_DATABASE, email, workspace, args.items, args.other_items,
        args.other_workspaces, args.seed,
    )  # fmt: skip
    cb.STATE_FILE.write_text(json.dumps(asdict(seeded)))
    return seeded


async def run(
    database_url: str, redis_url: str, pg_pid: int | None, args: argparse.Namespace
) -> dict[str, Any]:
    ours = cb.ApiServer(database_url, redis_url, False, {})
    theirs: PostGraphile | None = None
    try:
        await ours.wait_ready()
        sc_url = ours.url + "/graphql"
        seeded = await sign_in(sc_url, database_url, args)
        async with httpx.AsyncClient(timeout=30) as http:
            login = {"email": seeded.email, "password": cb.PASSWORD}
            token = (await cb.gql(http, sc_url, cb.LOGIN, {"i": login}))["login"]["accessToken"]
            theirs = PostGraphile(database_url)
            await theirs.wait_ready()
            ws = seeded.workspace_id
            ours_page = sc_items(await cb.gql(http, sc_url, SC_PAGE, {"ws": ws}, token))
            pg_vars = {"ws": str(cb.node_uuid(ws))}
            theirs_page = pg_items(await cb.gql(http, theirs.url, PG_PAGE, pg_vars))
            ours_tn = await cb.gql(http, sc_url, TYPENAME, {}, token)
            theirs_tn = await cb.gql(http, theirs.url, TYPENAME, {})
        diff = differences(ours_page, theirs_page)
        if ours_tn != theirs_tn:
            diff.append(f"{{ __typename }}: {ours_tn} != {theirs_tn}")
        if diff:
            raise SystemExit("the servers disagree:\n  " + "\n  ".join(diff[:20]))
        print("same answers: 50 items, every field equal; { __typename } equal")
        scenarios: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
            "page": (
                {"query": SC_PAGE, "variables": {"ws": ws}},
                {"query": PG_PAGE, "variables": pg_vars},
            ),
            "typename": ({"query": TYPENAME}, {"query": TYPENAME}),
        }
        loadavg_before = os.getloadavg()
        figures: dict[str, dict[str, Figures]] = {"smartcontent": {}, "postgraphile": {}}
        for name, (sc_body, pg_body) in scenarios.items():
            print(f"loading SmartContent: {name} ...", flush=True)
            figures["smartcontent"][name] = await measure(
                (ours.process.pid, pg_pid), sc_url, sc_body, token, args
            )
            print(f"loading PostGraphile: {name} ...", flush=True)
            figures["postgraphile"][name] = await measure(
                (theirs.process.pid, pg_pid), theirs.url, pg_body, "", args
            )
        return {
            "figures": {s: {k: asdict(v) for k, v in f.items()} for s, f in figures.items()},
            "loadavg_before": loadavg_before,
            "loadavg_after": os.getloadavg(),
        }
    finally:
        if theirs is not None:
            theirs.stop()
        ours.stop()


def verdicts(result: dict[str, Any]) -> dict[str, Any]:
    sc, pg = result["figures"]["smartcontent"], result["figures"]["postgraphile"]
    ratios = {
        # Not of a near-zero figure (PostGraphile's Postgres CPU for `{ __typename }`).
        f"{name} {key}": sc[name][key] / pg[name][key] if pg[name][key] > 0.01 else None
        for name in ("page", "typename")
        for key in ("rps", "p50_ms", "p95_ms", "api_cpu_ms", "pg_cpu_ms")
        if sc[name][key] is not None and pg[name][key] is not None
    }
    values = [ratios["page api_cpu_ms"], ratios["page rps"], sc["typename"]["api_cpu_ms"]]
    targets = {}
    for (name, (op, limit)), value in zip(TARGETS.items(), values, strict=True):
        checks = {
            "<=": value is not None and value <= limit,
            "<": value is not None and value < limit,
        }
        met = checks.get(op, value is not None and value >= limit)
        targets[name] = {"value": value, "target": f"{op} {limit}", "met": met}
    return {"ratios": ratios, "targets": targets}


def table(result: dict[str, Any]) -> None:
    """The JSON's figures as a table: each scenario, both servers and their ratio."""
    keys = ("rps", "p50_ms", "p95_ms", "api_cpu_ms", "pg_cpu_ms", "client_cpu_ms")
    print(f"{'':<24}" + "".join(f"{k:>14}" for k in keys))
    for name in ("page", "typename"):
        rows = [(server, result["figures"][server][name]) for server in result["figures"]]
        for server, f in rows:
            cells = "".join(f"{'-' if f[k] is None else f'{f[k]:.2f}':>14}" for k in keys)
            print(f"{name + ' ' + server:<24}{cells}")
        ratio = [result["ratios"].get(f"{name} {k}") for k in keys]
        print(
            f"{name + ' ratio SC/PG':<24}"
            + "".join(f"{'-' if r is None else f'{r:.2f}x':>14}" for r in ratio)
        )
    before, after = result["loadavg_before"], result["loadavg_after"]
    print(f"load average before {before[0]:.2f}, after {after[0]:.2f} (1 min)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30, help="seconds per load (30)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds first (3)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent (8)")
    parser.add_argument("--client-processes", type=int, default=2, help="load processes (2)")
    parser.add_argument("--items", type=int, default=10_000, help="as content_bench")
    parser.add_argument("--other-items", type=int, default=90_000, help="as content_bench")
    parser.add_argument("--other-workspaces", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept one (implies --keep)")
    parser.add_argument("--load-client", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_client:
        load_client(json.loads(sys.stdin.read() if args.load_client == "-" else args.load_client))
        return 0
    if not 1 <= args.client_processes <= args.connections:
        parser.error("--client-processes must be 1..--connections")
    if shutil.which("npx") is None or shutil.which("node") is None:
        print("Node (node, npx) is not on PATH: PostGraphile cannot run, nothing measured")
        return 0
    args.keep = args.keep or args.reuse
    configured = Settings()
    cb.BENCH_DATA_DIR.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, cb._interrupt)
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    admin_url = configured.database_url
    try:
        if not admin_url:
            pg = EmbeddedPostgres(cb.BENCH_DATA_DIR)
            admin_url = pg.start()
        want = cb.reusable(args) is not None
        database_url, args.reused = asyncio.run(cb.fresh_database(admin_url, want))
        redis_url = configured.redis_url
        if not redis_url:
            redis = EmbeddedRedis(cb.BENCH_DATA_DIR)
            redis_url = redis.start()
        upgrade_head(database_url)
        pg_pid = int((pg.pgdata / "postmaster.pid").read_text().split()[0]) if pg else None
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
        print(
            f"SmartContent vs {POSTGRAPHILE} (Node {node.strip()})  {datetime.date.today()}  "
            f"{os.cpu_count()} CPUs; {args.connections} connections from "
            f"{args.client_processes} load processes (own asyncio client), "
            f"{args.duration:g} s per load after {args.warmup:g} s warm-up, one server at a time"
        )
        result = uvloop.run(run(database_url, redis_url, pg_pid, args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if admin_url and not args.keep:
            with contextlib.suppress(Exception):
                asyncio.run(cb.drop_database(admin_url))
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
    result.update(verdicts(result))
    print(json.dumps(result, indent=2, default=str))
    table(result)
    for name, verdict in result["targets"].items():
        value = "-" if verdict["value"] is None else f"{verdict['value']:.2f}"
        met = "met" if verdict["met"] else "not met"
        print(f"target {name}: {value} (target {verdict['target']}): {met}")
    failed = any(f["failures"] for s in result["figures"].values() for f in s.values())
    return 0 if not failed and all(v["met"] for v in result["targets"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
