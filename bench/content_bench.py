"""Benchmark the content library: a 50-item `contents` page with its relations, and
`searchContent` in KEYWORD and SEMANTIC modes, over 10,000 items in one workspace and
100,000 embeddings in the HNSW index.

Not a test: it prints figures. It creates a fresh database (`bench_content`) on the server
named by DATABASE_URL or an embedded one (data in /tmp/bench-content-smartcontent),
migrates it, starts `smartcontent serve` as a child process on a free loopback port,
registers a user and creates a workspace through the API, then seeds the rest with bulk
COPY: contents, variations, comments, embeddings, and 90,000 more items spread over other
workspaces. It drives each scenario with C concurrent httpx clients, runs the semantic and
keyword SQL alone through asyncpg (database time without GraphQL), prints p50/p95/p99
latency and requests/s with the targets, then stops everything it started.

    make bench-content
    .venv/bin/python bench/content_bench.py --requests 400 --concurrency 8
    .venv/bin/python bench/content_bench.py --keep     # then --reuse: skip seeding

Longer than 400 lines because it is one self-contained benchmark script (data generation,
servers, load clients, report) meant to be read and run alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import math
import multiprocessing
import os
import platform
import random
import secrets
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import httpx
import uvloop

from app.ai.embeddings import HashingEmbedder, content_text
from app.db import plain_pg_url
from app.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, with_database
from app.migrate import upgrade_head
from app.services.content import search
from app.settings import Settings, embedding_dimensions

BENCH_DATA_DIR = Path("/tmp/bench-content-smartcontent")
BENCH_DATABASE = "bench_content"
STATE_FILE = BENCH_DATA_DIR / "seeded.json"
DIMENSIONS = 384
PASSWORD = "bench password that is long enough 42"

CONTENTS_PAGE = """
query($ws: ID!, $after: String) {
  contents(workspaceId: $ws, first: 50, after: $after) {
    edges { node {
      id title status
      author { name }
      campaign { name }
      commentCount
      variations { platform characterCount withinLimits }
    } }
    pageInfo { endCursor hasNextPage }
  }
}
"""

SEARCH = """
query($ws: ID!, $q: String!, $mode: SearchMode!) {
  searchContent(workspaceId: $ws, query: $q, mode: $mode, first: 20) {
    score snippet content { id title }
  }
}
"""

# The cheapest operation there is (SELECT 1 and a Redis PING): the floor every request pays.
HEALTH = "{ health { database redis version } }"

# Realistic searches: each names words the generator writes (see TOPICS), some narrow, some broad.
QUERIES = [
    "email newsletter open rates",
    "product launch checklist",
    "customer retention churn",
    "holiday sale discount codes",
    "seo keyword research",
    "webinar registrations",
    "influencer partnerships",
    "brand storytelling",
    "sustainability report",
    "linkedin thought leadership",
    "onboarding emails for new users",
    "short video reels",
    "community events and meetups",
    "pricing page conversion",
    "podcast episode guests",
    "ai writing assistant",
]

TARGETS_MS = {"contents": 50.0, "semantic": 30.0}


# --- Text --------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    return text.split()


TOPICS: dict[str, list[str]] = {
    "email": words(
        "email newsletter subject line open rates click-through list segmentation "
        "drip sequence unsubscribe deliverability inbox preheader welcome series"
    ),
    "launch": words(
        "product launch checklist announcement beta waitlist release notes roadmap "
        "feature demo press kit early access teaser countdown"
    ),
    "retention": words(
        "customer retention churn loyalty program renewal lifetime value "
        "win-back survey feedback satisfaction upsell customer success"
    ),
    "holiday": words(
        "holiday sale discount codes black friday cyber monday gift guide "
        "limited offer free shipping bundle seasonal promotion"
    ),
    "seo": words(
        "seo keyword research backlinks search rankings organic traffic meta "
        "description pillar page featured snippet crawl site speed"
    ),
    "webinar": words(
        "webinar registrations live session speakers q&a replay slides "
        "attendees follow-up landing page reminder agenda"
    ),
    "influencer": words(
        "influencer partnerships creators sponsored posts affiliate "
        "ambassador program collaboration reach authenticity micro-influencers"
    ),
    "story": words(
        "brand storytelling narrative brand voice mission values origin story "
        "emotion audience hero tone consistency"
    ),
    "green": words(
        "sustainability report carbon footprint recycled packaging climate "
        "goals renewable energy impact transparency supply chain"
    ),
    "linkedin": words(
        "linkedin thought leadership executive posts professional network "
        "b2b insights industry trends comments carousel article"
    ),
    "onboarding": words(
        "onboarding emails new users activation tutorial first week "
        "checklist product tour aha moment in-app tips setup"
    ),
    "video": words(
        "short video reels tiktok shorts hooks captions vertical format "
        "editing thumbnails watch time trending audio"
    ),
    "community": words(
        "community events meetups ambassadors forum members discord "
        "user groups hackathon volunteers local chapters"
    ),
    "pricing": words(
        "pricing page conversion free trial plans annual billing "
        "testimonials comparison table call to action checkout friction"
    ),
    "podcast": words(
        "podcast episode guests interview show notes listeners audio "
        "sponsorship recording microphone subscribers series"
    ),
    "ai": words(
        "ai writing assistant prompts drafts automation machine learning "
        "personalisation chatbot workflow editing review"
    ),
    "analytics": words(
        "analytics dashboard attribution conversion funnel cohort "
        "metrics reporting kpis experiments a/b test"
    ),
    "hiring": words(
        "employer brand hiring culture careers page recruiting employee "
        "stories benefits interns remote team"
    ),
    "events": words(
        "trade show booth conference keynote sponsorship networking "
        "swag badge scanning lead capture follow-up"
    ),
    "fintech": words(
        "fintech payments banking compliance security fraud savings "
        "budgeting app transactions trust"
    ),
}
GENERAL = words(
    "campaign strategy audience content calendar engagement channel budget "
    "message headline story offer launch growth brand post blog guide plan "
    "template playbook insight result quarter team customer market goal"
)
AUDIENCES = words(
    "marketers founders small businesses startups agencies creators developers "
    "sales teams nonprofits retailers subscribers shoppers"
)
VERBS = words("grow boost double improve measure lift protect win simplify scale")
METRICS = words(
    "engagement conversions revenue signups open rates retention reach leads trust click-through"
)
ADJECTIVES = words(
    "practical complete simple proven modern honest quick data-driven "
    "creative step-by-step fresh bold"
)
SENTENCES = [
    "{J} {T} helps {A} {V} {M}.",
    "We tested {T} with {N} {A} and saw {M} improve by {N} percent.",
    "Start with {T}, then add {T2} once the {G} is ready.",
    "Most {A} ignore {T}, which is why the {G} matters more than ever.",
    "Our team shares {J} lessons on {T} and {G}.",
    "Pair {T} with {T2} to {V} {M} without extra {G}.",
    "Here is how {A} can {V} {M} using {T}.",
    "Track {M} every week and adjust your {T} accordingly.",
    "The {J} {G} for {T} is simpler than it looks.",
    "Avoid these {N} mistakes when planning {T}.",
    "A {J} {T} turns {A} into loyal fans.",
    "Ask your {A} what they expect from {T} before you {V} {M}.",
    "Measure {M} against last quarter to see whether {T} pays off.",
    "Repurpose each {G} into a {T} post for every channel.",
    "Good {T} starts with a clear {G} and a {J} {T2}.",
    "When {A} see {T}, they {V} their {M}.",
]
TITLES = [
    "{N} ways to {V} {M} with {T}",
    "How {A} use {T} to {V} {M}",
    "The {J} guide to {T}",
    "{T}: what {A} need to know this year",
    "Why {T} beats {T2} for {A}",
    "{T} checklist for {A}",
    "Case study: {J} {T} for {A}",
    "{T} ideas for your next {G}",
]
PLATFORMS = ["X", "LINKEDIN", "FACEBOOK", "INSTAGRAM", "THREADS", "MASTODON", "BLUESKY"]
CONTENT_TYPES = ["BLOG_POST"] * 3 + ["SOCIAL_POST"] * 4 + ["EMAIL"] * 2 + ["AD_COPY"]
STATUSES = ["DRAFT"] * 4 + ["IN_REVIEW", "APPROVED", "SCHEDULED"] + ["PUBLISHED"] * 3


@dataclass
class Item:
    title: str
    body: str
    topic: str
    tags: list[str]


def _fill(template: str, rng: random.Random, topic: str, second: str) -> str:
    def term(vocabulary: list[str]) -> str:
        # Two adjacent words of the topic read as a phrase ("open rates", "press kit").
        start = rng.randrange(len(vocabulary))
        return " ".join(vocabulary[start : start + rng.choice((1, 1, 2))])

    values = {
        "T": term(TOPICS[topic]),
        "T2": term(TOPICS[second]),
        "G": rng.choice(GENERAL),
        "A": rng.choice(AUDIENCES),
        "V": rng.choice(VERBS),
        "M": rng.choice(METRICS),
        "J": rng.choice(ADJECTIVES),
        "N": str(rng.choice((3, 5, 7, 10, 12, 20, 50, 100))),
    }
    text = template
    for key in ("T2", "T", "G", "A", "V", "M", "J", "N"):
        while "{" + key + "}" in text:
            text = text.replace("{" + key + "}", values[key], 1)
            if key == "N":
                values[key] = str(rng.choice((3, 5, 7, 10, 12, 20, 50, 100)))
    return text[0].upper() + text[1:]


def make_item(rng: random.Random) -> Item:
    names = list(TOPICS)
    topic = rng.choice(names)
    # A third of the pieces mix in a second subject.
    second = rng.choice(names) if rng.random() < 0.33 else topic
    title = _fill(rng.choice(TITLES), rng, topic, second)
    target = rng.randint(50, 300)
    paragraphs: list[str] = []
    sentences: list[str] = []
    written = 0
    while written < target:
        sentence = _fill(rng.choice(SENTENCES), rng, rng.choice((topic, topic, second)), second)
        sentences.append(sentence)
        written += len(sentence.split())
        if len(sentences) >= rng.randint(3, 6):
            paragraphs.append(" ".join(sentences))
            sentences = []
    if sentences:
        paragraphs.append(" ".join(sentences))
    tags = sorted({topic, second, rng.choice(GENERAL)})
    return Item(title=title, body="\n\n".join(paragraphs), topic=topic, tags=tags)


def _embed(texts: list[str]) -> list[bytes]:
    embedder = HashingEmbedder(DIMENSIONS)
    return [vector_bytes(embedder.embed_one(t)) for t in texts]


def embed_all(items: list[Item]) -> list[bytes]:
    """The offline embedder over every item, on every core."""
    texts = [content_text(i.title, i.body) for i in items]
    chunks = [texts[i : i + 250] for i in range(0, len(texts), 250)]
    pool = multiprocessing.get_context("fork").Pool(os.cpu_count() or 1, _quiet_child)
    try:
        vectors = [v for chunk in pool.map(_embed, chunks) for v in chunk]
    finally:
        pool.close()  # not terminate(): its SIGTERM would reach our event loop's wakeup fd
        pool.join()
    return vectors


def _quiet_child() -> None:
    """Forked workers must not write signals into the parent's asyncio wakeup fd."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def vector_bytes(vector: list[float]) -> bytes:
    """pgvector's binary format: dimensions (int16), unused (int16), float4s, big-endian."""
    return struct.pack(f">hh{len(vector)}f", len(vector), 0, *vector)


def vector_floats(data: bytes) -> list[float]:
    dim = struct.unpack_from(">h", data)[0]
    return list(struct.unpack_from(f">{dim}f", data, 4))


def mixed_vector(rng: random.Random, pool: list[list[float]]) -> bytes:
    """A vector for the other workspaces' items: a blend of two real embeddings, so they
    crowd the same regions as the measured workspace and the filter has work to do."""
    a, b = rng.choice(pool), rng.choice(pool)
    w = rng.uniform(0.55, 0.9)
    v = [w * x + (1 - w) * y for x, y in zip(a, b, strict=True)]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return vector_bytes([x / norm for x in v])


# --- Seeding -----------------------------------------------------------------------------


@dataclass
class Seeded:
    """What a later --reuse run needs; also written to STATE_FILE."""

    database: str
    email: str
    workspace_id: str  # global ID
    items: int
    other_items: int
    other_workspaces: int
    seed: int


@dataclass
class Timings:
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        print(f"  {name} ...", end="", flush=True)
        yield
        elapsed = time.perf_counter() - started
        self.steps.append((name, elapsed))
        print(f" {elapsed:.1f} s", flush=True)


def node_uuid(global_id: str) -> uuid.UUID:
    _, _, node_id = base64.b64decode(global_id).decode().partition(":")
    return uuid.UUID(node_id)


async def connect(database_url: str, *, binary_vectors: bool = False) -> asyncpg.Connection:
    """An asyncpg connection; with `binary_vectors`, vector values are pgvector's binary
    format (bytes) both ways, as COPY wants them. Without it they are text, as the app
    sends them."""
    conn = await asyncpg.connect(plain_pg_url(database_url))
    if binary_vectors:
        await conn.set_type_codec(
            "vector", schema="public", encoder=bytes, decoder=bytes, format="binary"
        )
    return conn


CONTENT_COLUMNS = [
    "id",
    "workspace_id",
    "title",
    "body",
    "content_type",
    "format",
    "status",
    "campaign_id",
    "tags",
    "created_by_id",
    "updated_by_id",
    "version",
    "created_at",
    "updated_at",
    "embedding",
    "embedding_model",
    "embedded_version",
]


async def seed(
    database_url: str,
    user_id: uuid.UUID,
    workspace_id: uuid.UUID,
    args: argparse.Namespace,
    timings: Timings,
) -> None:
    rng = random.Random(args.seed)
    with timings.step(f"generate {args.items + args.other_items:,} texts"):
        items = [make_item(rng) for _ in range(args.items)]
        others = [make_item(rng) for _ in range(args.other_items)]
    with timings.step(f"embed {args.items:,} items (HashingEmbedder, {os.cpu_count()} procs)"):
        vectors = embed_all(items)
    with timings.step(f"blend {args.other_items:,} vectors for the other workspaces"):
        pool = [vector_floats(v) for v in vectors[:2000]]
        other_vectors = [mixed_vector(rng, pool) for _ in range(args.other_items)]

    model = HashingEmbedder(DIMENSIONS).name
    now = datetime.datetime.now(datetime.UTC)
    conn = await connect(database_url, binary_vectors=True)
    try:
        # Secondary indexes are dropped for the load and rebuilt after it (far faster than
        # maintaining an HNSW graph row by row); the definitions come from the migrations.
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'contents' "
            "AND indexname NOT LIKE 'pk_%'"
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')

        campaign_id = uuid.uuid4()
        with timings.step("workspaces, campaign"):
            other_ws = [uuid.uuid4() for _ in range(args.other_workspaces)]
            await conn.copy_records_to_table(
                "workspaces",
                records=[(w, f"Bench workspace {i}") for i, w in enumerate(other_ws)],
                columns=["id", "name"],
            )
            await conn.execute(
                "INSERT INTO campaigns (id, workspace_id, name, objectives, status, "
                "created_by_id) VALUES ($1, $2, 'Spring launch', '{awareness,signups}', "
                "'ACTIVE', $3)",
                campaign_id,
                workspace_id,
                user_id,
            )

        def content_rows(
            batch: Iterable[tuple[int, Item, bytes]], ws: Callable[[int], uuid.UUID], mine: bool
        ) -> Iterator[tuple[Any, ...]]:
            for n, item, vector in batch:
                created = now - datetime.timedelta(minutes=7 * n + rng.randint(0, 6))
                yield (
                    ids[n] if mine else uuid.uuid4(),
                    ws(n),
                    item.title,
                    item.body,
                    rng.choice(CONTENT_TYPES),
                    "MARKDOWN",
                    rng.choice(STATUSES),
                    campaign_id if mine and rng.random() < 0.6 else None,
                    item.tags,
                    user_id if mine else None,
                    user_id if mine else None,
                    1,
                    created,
                    created,
                    vector,
                    model,
                    1,
                )

        ids = [uuid.uuid4() for _ in range(args.items)]
        with timings.step(f"COPY {args.items:,} contents into the measured workspace"):
            await conn.copy_records_to_table(
                "contents",
                records=content_rows(
                    zip(range(args.items), items, vectors, strict=True),
                    lambda n: workspace_id,
                    True,
                ),
                columns=CONTENT_COLUMNS,
            )
        with timings.step(f"COPY {args.other_items:,} contents into {len(other_ws)} workspaces"):
            for start in range(0, args.other_items, 10_000):
                chunk = zip(
                    range(start, min(start + 10_000, args.other_items)),
                    others[start : start + 10_000],
                    other_vectors[start : start + 10_000],
                    strict=False,
                )
                await conn.copy_records_to_table(
                    "contents",
                    records=content_rows(chunk, lambda n: other_ws[n % len(other_ws)], False),
                    columns=CONTENT_COLUMNS,
                )
        with timings.step("COPY versions, 2 variations and 1 comment per item"):
            await conn.copy_records_to_table(
                "content_versions",
                records=(
                    (uuid.uuid4(), cid, 1, it.title, it.body, "MARKDOWN", user_id)
                    for cid, it in zip(ids, items, strict=True)
                ),
                columns=["id", "content_id", "version", "title", "body", "format", "created_by_id"],
            )
            await conn.copy_records_to_table(
                "content_variations",
                records=variation_rows(rng, ids, items, workspace_id, user_id),
                columns=["id", "content_id", "workspace_id", "platform", "body", "created_by_id"],
            )
            await conn.copy_records_to_table(
                "content_comments",
                records=(
                    (uuid.uuid4(), cid, user_id, "Bench User", "COMMENT", comment(rng))
                    for cid in ids
                ),
                columns=["id", "content_id", "author_id", "author_name", "kind", "body"],
            )

        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(f"SET max_parallel_maintenance_workers = {(os.cpu_count() or 2) - 1}")
        for row in sorted(indexes, key=lambda r: "hnsw" in r["indexdef"]):
            with timings.step(f"CREATE INDEX {row['indexname']}"):
                await conn.execute(row["indexdef"])
        with timings.step("VACUUM ANALYZE"):
            for table in ("contents", "content_variations", "content_comments", "campaigns"):
                await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


def variation_rows(
    rng: random.Random,
    ids: list[uuid.UUID],
    items: list[Item],
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
) -> Iterator[tuple[Any, ...]]:
    for cid, item in zip(ids, items, strict=True):
        for platform_name in rng.sample(PLATFORMS, 2):
            # Mostly short; a fifth carry the whole body (a draft not cut down yet), which
            # breaks the short platforms' limits and makes X split it into a thread.
            text = " ".join(item.body.split()[: rng.choice((20, 35, 45, 60, 400))])
            yield (uuid.uuid4(), cid, workspace_id, platform_name, text, user_id)


def comment(rng: random.Random) -> str:
    return rng.choice(
        (
            "Looks good to me.",
            "Can we tighten the intro?",
            "Please add the campaign link.",
            "Approved once the numbers are checked.",
            "Love the hook; shorten the last paragraph.",
        )
    )


# --- The API server ----------------------------------------------------------------------


class ApiServer:
    """`smartcontent serve` as a child process, so its event loop is not shared with the
    clients (which run in this process)."""

    def __init__(
        self, database_url: str, redis_url: str, log_json: bool, extra_env: dict[str, str]
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir = BENCH_DATA_DIR / "app"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        unlimited = str(10**9)  # rate limits would refuse a benchmark; their Redis call stays
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            ENVIRONMENT="development",
            LOG_LEVEL="WARNING",
            LOG_JSON="true" if log_json else "false",
            DATA_DIR=str(data_dir),
            MEDIA_DIR=str(data_dir / "media"),
            SECRET_KEY=secrets.token_urlsafe(48),
            RATE_LIMIT_ANONYMOUS=unlimited,
            RATE_LIMIT_FREE=unlimited,
            RATE_LIMIT_PRO=unlimited,
            RATE_LIMIT_ENTERPRISE=unlimited,
            GRACEFUL_SHUTDOWN_SECONDS="5",
            # Queries must be embedded the way the seeded items were.
            EMBEDDING_PROVIDER="offline",
            EMBEDDING_DIMENSIONS=str(DIMENSIONS),
        )
        env.update(extra_env)
        command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            env=env,
            cwd=data_dir,
            start_new_session=True,  # Ctrl-C reaches only us; we stop it in order
        )

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit("smartcontent serve exited; see its log above")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.url + "/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise SystemExit("smartcontent serve was not ready within 60 s")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def gql(
    http: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any], token: str = ""
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        url, json={"query": query, "variables": variables}, headers=headers, timeout=30
    )
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise SystemExit(f"set-up request failed: {response.status_code} {body}")
    data: dict[str, Any] = body["data"]
    return data


REGISTER = """mutation($i: RegisterInput!) { register(input: $i) {
  accessToken user { id } errors { code message } } }"""
LOGIN = """mutation($i: LoginInput!) { login(input: $i) { accessToken errors { code message } } }"""
CREATE_WORKSPACE = """mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) {
  workspace { id } errors { code message } } }"""


# --- Driving -----------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    target_ms: float | None = None
    latencies: list[float] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)
    failures: int = 0
    first_failure: str | None = None
    elapsed: float = 0.0
    connections: int | None = None  # new Postgres connections during the measured requests
    api_cpu_ms: float | None = None  # API process CPU time per request
    pg_cpu_ms: float | None = None  # Postgres CPU time per request (embedded server only)
    client_cpu_ms: float | None = None  # CPU time per request of this process (the clients)

    def fail(self, why: str) -> None:
        self.failures += 1
        self.first_failure = self.first_failure or why


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


Request = Callable[[int], Awaitable[int]]  # request number -> hits; raises on failure
Scenario = tuple[str, float | None, list[Request]]  # name, p95 target in ms, one per client


async def drive(run: Run, requests: list[Request], count: int, stop: asyncio.Event) -> None:
    """`len(requests)` workers, each one request at a time, `count` requests in total."""
    counter = iter(range(count))

    async def worker(send: Request) -> None:
        for n in counter:
            if stop.is_set():
                return
            started = time.perf_counter()
            try:
                hits = await send(n)
            except Exception as exc:  # a failed request is counted, not fatal
                run.fail(repr(exc)[:300])
                continue
            run.latencies.append(time.perf_counter() - started)
            run.hits.append(hits)

    started = time.perf_counter()
    await asyncio.gather(*(worker(r) for r in requests))
    run.elapsed = time.perf_counter() - started


class LeanClient:
    """One keep-alive HTTP/1.1 connection that POSTs JSON, and little else.

    The clients share the machine's two cores with the server and Postgres: httpx spent
    about 1.3 ms of CPU per request here, which the server then waited for. This sends the
    request in one write and reads a Content-Length body (what uvicorn answers with).
    """

    def __init__(self, url: str) -> None:
        parts = httpx.URL(url)
        self.host, self.port, self.path = parts.host, parts.port or 80, parts.raw_path.decode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: dict[str, Any], token: str) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(head.encode() + payload)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"HTTP {status} without Content-Length")
        return status, await self.reader.readexactly(length)

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


def graphql_request(
    http: LeanClient,
    token: str,
    query: str,
    variables: Callable[[int], dict[str, Any]],
    check: Callable[[dict[str, Any]], int],
) -> Request:
    async def send(n: int) -> int:
        status, raw = await http.post({"query": query, "variables": variables(n)}, token)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {raw[:200]!r}")
        body = json.loads(raw)
        if body.get("errors"):
            raise RuntimeError(f"errors: {body['errors']}")
        return check(body["data"])

    return send


def check_health(data: dict[str, Any]) -> int:
    if data["health"]["database"] != "OK":
        raise RuntimeError(f"unhealthy: {data['health']}")
    return 0


def check_page(data: dict[str, Any]) -> int:
    edges = data["contents"]["edges"]
    if len(edges) != 50:
        raise RuntimeError(f"page has {len(edges)} items, not 50")
    for edge in edges:
        node = edge["node"]
        if node["author"] is None or node["commentCount"] != 1 or len(node["variations"]) != 2:
            raise RuntimeError(f"relations missing: {node}")
    return len(edges)


def check_search(data: dict[str, Any]) -> int:
    hits = data["searchContent"]
    if any(h["content"] is None for h in hits):
        raise RuntimeError("a hit without its content")
    return len(hits)


def sql_params(statement: str, names: list[str]) -> str:
    """`:name` placeholders (SQLAlchemy text) to asyncpg's `$n`."""
    for n, name in enumerate(names, 1):
        statement = statement.replace(f":{name}", f"${n}")
    return statement


SEMANTIC_SQL = sql_params(search._SEMANTIC.text, ["vector", "ws", "exclude", "limit"])
KEYWORD_SQL = sql_params(search._KEYWORD.text, ["query", "ws", "limit"])
# An exact scan for comparison. Its own text, so it is its own prepared statement: a plan
# cached with index scans off would otherwise serve the HNSW runs on the same connection.
EXACT_SQL = "/* exact */" + SEMANTIC_SQL
EXACT_SETTINGS = ["SET LOCAL enable_indexscan = off"]
# The same statement as the app sends, with session settings as search._tune_vector_scan.
VECTOR_SETTINGS = [
    "SELECT set_config('hnsw.ef_search', '100', true), "
    "set_config('hnsw.iterative_scan', 'relaxed_order', true)"
]


def semantic_sql_request(
    conn: asyncpg.Connection, ws: uuid.UUID, vectors: list[str], *, exact: bool = False
) -> Request:
    async def send(n: int) -> int:
        async with conn.transaction():
            for statement in EXACT_SETTINGS if exact else VECTOR_SETTINGS:
                await conn.execute(statement)
            sql = EXACT_SQL if exact else SEMANTIC_SQL
            rows = await conn.fetch(sql, vectors[n % len(vectors)], ws, None, 20)
        return len(rows)

    return send


def keyword_sql_request(conn: asyncpg.Connection, ws: uuid.UUID) -> Request:
    async def send(n: int) -> int:
        rows = await conn.fetch(KEYWORD_SQL, QUERIES[n % len(QUERIES)], ws, 20)
        return len(rows)

    return send


@dataclass
class Quality:
    recall: float  # mean share of the exact top 20 that the HNSW statement returned
    gap: float  # mean (exact 20th similarity - returned 20th similarity): what recall costs
    out_of_order: int  # queries whose hits did not come back by decreasing similarity
    fewest: int  # fewest hits returned for a query (iterative scans should always fill 20)


async def quality(conn: asyncpg.Connection, ws: uuid.UUID, vectors: list[str]) -> Quality:
    """The app's HNSW statement against an exact scan, for each benchmark query."""
    recall, gap, out_of_order, fewest = 0.0, 0.0, 0, 20
    for vector in vectors:
        async with conn.transaction():
            for statement in VECTOR_SETTINGS:
                await conn.execute(statement)
            approx = await conn.fetch(SEMANTIC_SQL, vector, ws, None, 20)
        async with conn.transaction():
            for statement in EXACT_SETTINGS:
                await conn.execute(statement)
            exact = await conn.fetch(EXACT_SQL, vector, ws, None, 20)
        # Similarity, not ids: equal scores (ties) may be returned in either order.
        floor = exact[-1]["similarity"] - 1e-9
        recall += sum(r["similarity"] >= floor for r in approx) / len(exact)
        gap += exact[-1]["similarity"] - (approx[-1]["similarity"] if approx else 0.0)
        similarities = [r["similarity"] for r in approx]
        out_of_order += similarities != sorted(similarities, reverse=True)
        fewest = min(fewest, len(approx))
    n = len(vectors)
    return Quality(recall / n, gap / n, out_of_order, fewest)


async def bench(
    database_url: str,
    redis_url: str,
    configured: Settings,
    args: argparse.Namespace,
    seeded: Seeded | None,
    pg_pid: int | None,
) -> tuple[list[Run], bool]:
    stop = asyncio.Event()
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)

    # Several API processes on their own ports, each client connected to one in turn: what
    # a load balancer in front of N processes does (uvicorn's --workers share one socket,
    # which spreads 8 keep-alive connections unevenly).
    # One signing key for all of them: a token from one is valid at the others.
    server_env = {"SECRET_KEY": secrets.token_urlsafe(48), **args.server_env}
    servers = [
        ApiServer(database_url, redis_url, configured.log_json, server_env)
        for _ in range(args.api_processes)
    ]
    runs: list[Run] = []
    try:
        for server in servers:
            await server.wait_ready()
        url = servers[0].url + "/graphql"
        async with httpx.AsyncClient() as http:
            if seeded is None:
                timings = Timings()
                email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
                data = await gql(
                    http,
                    url,
                    REGISTER,
                    {"i": {"email": email, "password": PASSWORD, "name": "Bench User"}},
                )
                token = data["register"]["accessToken"]
                user_id = node_uuid(data["register"]["user"]["id"])
                data = await gql(http, url, CREATE_WORKSPACE, {"i": {"name": "Acme"}}, token)
                workspace = data["createWorkspace"]["workspace"]["id"]
                print("seeding:")
                started = time.perf_counter()
                await seed(database_url, user_id, node_uuid(workspace), args, timings)
                print(f"  seeding took {time.perf_counter() - started:.1f} s in all")
                seeded = Seeded(
                    BENCH_DATABASE,
                    email,
                    workspace,
                    args.items,
                    args.other_items,
                    args.other_workspaces,
                    args.seed,
                )
                STATE_FILE.write_text(json.dumps(asdict(seeded)))
            else:
                print(f"reusing the database seeded earlier ({STATE_FILE})")
            data = await gql(http, url, LOGIN, {"i": {"email": seeded.email, "password": PASSWORD}})
            token = data["login"]["accessToken"]
        ws_global = seeded.workspace_id
        ws = node_uuid(ws_global)

        conn = await connect(database_url)
        try:
            counts = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE workspace_id = $1) AS mine, count(*) AS all, "
                "count(embedding) AS vectors FROM contents",
                ws,
            )
            print(
                f"data: {counts['mine']:,} items in the measured workspace, {counts['all']:,} "
                f"in all, {counts['vectors']:,} embeddings in the HNSW index"
            )
            embedder = HashingEmbedder(DIMENSIONS)
            vectors = [search._vector_literal(embedder.embed_one(q)) for q in QUERIES]
            q = await quality(conn, ws, vectors)
            print(
                f"semantic search vs an exact scan, over {len(vectors)} queries: recall@20 "
                f"{q.recall:.3f}, 20th hit {q.gap:.4f} less similar on average, "
                f"{q.out_of_order} out of order, fewest hits {q.fewest} of 20"
            )
        except BaseException:
            await conn.close()
            raise

        async with contextlib.AsyncExitStack() as stack, httpx.AsyncClient(timeout=30) as http:
            clients = [
                LeanClient(servers[i % len(servers)].url + "/graphql")
                for i in range(args.concurrency)
            ]
            for client in clients:
                stack.push_async_callback(client.aclose)
            # Page cursors (pages 1..10), so the clients read different pages, as users do.
            cursors: list[str | None] = [None]
            while len(cursors) < 10:
                data = await gql(
                    http, url, CONTENTS_PAGE, {"ws": ws_global, "after": cursors[-1]}, token
                )
                cursors.append(data["contents"]["pageInfo"]["endCursor"])

            def page_vars(n: int) -> dict[str, Any]:
                return {"ws": ws_global, "after": cursors[n % len(cursors)]}

            def search_vars(mode: str) -> Callable[[int], dict[str, Any]]:
                return lambda n: {"ws": ws_global, "q": QUERIES[n % len(QUERIES)], "mode": mode}

            scenarios: list[Scenario] = [
                (
                    "health (floor of the stack)",
                    None,
                    [
                        graphql_request(c, token, HEALTH, lambda n: {}, check_health)
                        for c in clients
                    ],
                ),
                (
                    "contents page (50, relations)",
                    TARGETS_MS["contents"],
                    [
                        graphql_request(c, token, CONTENTS_PAGE, page_vars, check_page)
                        for c in clients
                    ],
                ),
                (
                    "searchContent KEYWORD",
                    None,
                    [
                        graphql_request(c, token, SEARCH, search_vars("KEYWORD"), check_search)
                        for c in clients
                    ],
                ),
                (
                    "searchContent SEMANTIC",
                    TARGETS_MS["semantic"],
                    [
                        graphql_request(c, token, SEARCH, search_vars("SEMANTIC"), check_search)
                        for c in clients
                    ],
                ),
            ]
            try:
                probes = Probes(conn, [s.process.pid for s in servers], pg_pid)
                runs += await measure_all(chosen(scenarios, args.only), args, stop, probes)
            finally:
                await conn.close()

        pool = [await connect(database_url) for _ in range(args.concurrency)]
        try:
            sql_scenarios: list[Scenario] = [
                (
                    "SQL semantic (HNSW, asyncpg)",
                    None,
                    [semantic_sql_request(c, ws, vectors) for c in pool],
                ),
                (
                    "SQL semantic exact (no HNSW)",
                    None,
                    [semantic_sql_request(c, ws, vectors, exact=True) for c in pool],
                ),
                ("SQL keyword (asyncpg)", None, [keyword_sql_request(c, ws) for c in pool]),
            ]
            if not stop.is_set():
                runs += await measure_all(
                    chosen(sql_scenarios, args.only), args, stop, Probes(None, [], pg_pid)
                )
        finally:
            for c in pool:
                await c.close()
    finally:
        for server in servers:
            server.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return runs, interrupted


def chosen(scenarios: list[Scenario], only: list[str]) -> list[Scenario]:
    """The scenarios whose name contains one of `only` (all when it is empty)."""
    if not only:
        return scenarios
    return [s for s in scenarios if any(word.lower() in s[0].lower() for word in only)]


@dataclass
class Sample:
    sessions: int | None
    api_cpu: float | None
    pg_cpu: float | None
    client_cpu: float


class Probes:
    """What the measured requests cost beyond wall time: CPU seconds of the API process and
    of the Postgres cluster (embedded only: its processes are ours to read in /proc), and
    how many connections Postgres accepted. CPU time is what a busy, shared machine does
    not distort much, unlike latency."""

    def __init__(
        self, stats: asyncpg.Connection | None, api_pids: list[int], pg_pid: int | None
    ) -> None:
        self.stats = stats
        self.api_pids = api_pids
        self.pg_pid = pg_pid

    async def sample(self) -> Sample:
        sessions = None
        if self.stats is not None:
            # A backend reports its connection when it first goes idle or exits: let the
            # last ones do so.
            await asyncio.sleep(1.2)
            await self.stats.execute("SELECT pg_stat_clear_snapshot()")
            sessions = await self.stats.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
        api = sum(_tree_cpu(pid) for pid in self.api_pids) if self.api_pids else None
        pg = _tree_cpu(self.pg_pid) if self.pg_pid else None
        return Sample(sessions, api, pg, time.process_time())


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def _cpu(pid: int, *, children: bool) -> float:
    """utime + stime (+ cutime + cstime: reaped children) of one process, in seconds."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_cpu(parent: int) -> float:
    """A process, the children it has reaped and the live ones: the Postgres postmaster and
    its backends, or `serve` and its uvicorn workers."""
    total = _cpu(parent, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                total += _cpu(int(entry.name), children=False)
    return total


async def measure_all(
    scenarios: list[tuple[str, float | None, list[Request]]],
    args: argparse.Namespace,
    stop: asyncio.Event,
    probes: Probes,
) -> list[Run]:
    runs = []
    for name, target, requests in scenarios:
        if stop.is_set():
            break
        warm = Run(name)
        await drive(warm, requests, args.warmup, stop)
        if warm.failures:
            raise SystemExit(f"warm-up of {name} failed: {warm.first_failure}")
        run = Run(name, target)
        before = await probes.sample()
        await drive(run, requests, args.requests, stop)
        after = await probes.sample()
        done = max(1, len(run.latencies))
        if before.sessions is not None and after.sessions is not None:
            run.connections = after.sessions - before.sessions
        if before.api_cpu is not None and after.api_cpu is not None:
            run.api_cpu_ms = (after.api_cpu - before.api_cpu) * 1000 / done
        if before.pg_cpu is not None and after.pg_cpu is not None:
            run.pg_cpu_ms = (after.pg_cpu - before.pg_cpu) * 1000 / done
        run.client_cpu_ms = (after.client_cpu - before.client_cpu) * 1000 / done
        runs.append(run)
    return runs


def report(runs: list[Run]) -> None:
    header = f"{'scenario':<30}{'requests':>9}{'failed':>7}{'req/s':>7}"
    header += f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'hits':>6}"
    header += f"{'api cpu':>8}{'pg cpu':>7}{'client':>7}{'conns':>6}  target p95"
    print(header)

    def opt(value: float | None, width: int, digits: int = 1) -> str:
        return f"{'-' if value is None else f'{value:.{digits}f}':>{width}}"

    for run in runs:
        done = sorted(run.latencies)
        ms = [percentile(done, p) * 1000 for p in (50, 95, 99, 100)]
        rate = len(done) / run.elapsed if run.elapsed else 0.0
        hits = sum(run.hits) / len(run.hits) if run.hits else 0.0
        verdict = ""
        if run.target_ms is not None:
            ok = ms[1] < run.target_ms and not run.failures
            verdict = f"< {run.target_ms:.0f} ms {'PASS' if ok else 'MISS'}"
        print(
            f"{run.name:<30}{len(done):>9}{run.failures:>7}{rate:>7.0f}"
            + "".join(f"{value:>8.1f}" for value in ms)
            + f"{hits:>6.1f}"
            + opt(run.api_cpu_ms, 8)
            + opt(run.pg_cpu_ms, 7)
            + opt(run.client_cpu_ms, 7)
            + opt(run.connections, 6, 0)
            + f"  {verdict}"
        )
    print(
        "api cpu / pg cpu / client: CPU ms per request of the API processes / of Postgres"
        " (embedded only) / of this benchmark's clients; conns: connections Postgres accepted"
        " during the scenario"
    )
    for run in runs:
        if run.first_failure:
            print(f"first failure in {run.name}: {run.first_failure}", file=sys.stderr)


# --- Set-up and tear-down ----------------------------------------------------------------


def reusable(args: argparse.Namespace) -> Seeded | None:
    if not args.reuse or not STATE_FILE.exists():
        return None
    seeded = Seeded(**json.loads(STATE_FILE.read_text()))
    wanted = (args.items, args.other_items, args.other_workspaces, args.seed)
    have = (seeded.items, seeded.other_items, seeded.other_workspaces, seeded.seed)
    return seeded if have == wanted else None


async def fresh_database(admin_url: str, reuse: bool) -> tuple[str, bool]:
    """Drop and create the benchmark database, unless `reuse` and it exists: (URL, reused)."""
    conn = await asyncpg.connect(plain_pg_url(admin_url))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DATABASE)
        reuse = bool(reuse and exists)
        if not reuse:
            STATE_FILE.unlink(missing_ok=True)
            await conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    finally:
        await conn.close()
    return with_database(admin_url, BENCH_DATABASE), reuse


async def drop_database(admin_url: str) -> None:
    conn = await asyncpg.connect(plain_pg_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
    finally:
        await conn.close()
    STATE_FILE.unlink(missing_ok=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="per scenario (default 400)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients (default 8)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests first")
    parser.add_argument("--items", type=int, default=10_000, help="in the measured workspace")
    parser.add_argument("--other-items", type=int, default=90_000, help="in other workspaces")
    parser.add_argument("--other-workspaces", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7, help="of the text generator")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="use the database a --keep run left (implies --keep)"
    )
    parser.add_argument(
        "--api-processes",
        type=int,
        default=1,
        metavar="N",
        help="API processes (`smartcontent serve`), the clients spread over them (default 1)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORD",
        help="run only the scenarios whose name contains WORD (repeatable), e.g. --only page",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the API server, e.g. DB_POOL_SIZE=30 (repeatable; experiments)",
    )
    args = parser.parse_args()
    try:
        args.server_env = dict(item.split("=", 1) for item in args.server_env)
    except ValueError:
        parser.error("--server-env takes NAME=VALUE")
    if args.items < 500 or args.other_items < 0 or args.other_workspaces < 1:
        parser.error("--items must be at least 500 (ten pages), the others not negative")
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests must be 1..100000 and --concurrency 1..64")
    args.keep = args.keep or args.reuse
    if embedding_dimensions() != DIMENSIONS:
        parser.error(
            f"the benchmark seeds {DIMENSIONS}-dimension vectors: unset EMBEDDING_DIMENSIONS"
        )

    configured = Settings()
    signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: run the `finally` below
    BENCH_DATA_DIR.mkdir(parents=True, exist_ok=True)
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    admin_url: str | None = None
    try:
        admin_url = configured.database_url
        if not admin_url:
            pg = EmbeddedPostgres(BENCH_DATA_DIR)
            admin_url = pg.start()
        seeded = reusable(args)
        database_url, reused = asyncio.run(fresh_database(admin_url, seeded is not None))
        seeded = seeded if reused else None
        redis_url = configured.redis_url
        if not redis_url:
            redis = EmbeddedRedis(BENCH_DATA_DIR)
            redis_url = redis.start()
        upgrade_head(database_url)
        servers = "Postgres " + ("embedded" if pg else "from DATABASE_URL")
        servers += ", Redis " + ("embedded" if redis else "from REDIS_URL")
        print(
            f"SmartContent content benchmark  {datetime.date.today()}  {platform.system()} "
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(
            f"{servers}; API: {args.api_processes} x `smartcontent serve` (child processes); "
            f"{args.requests} requests "
            f"per scenario, {args.concurrency} clients, {args.warmup} warm-up requests"
            + "".join(f", {k}={v}" for k, v in args.server_env.items())
        )
        pg_pid = int((pg.pgdata / "postmaster.pid").read_text().split()[0]) if pg else None
        # uvloop, as uvicorn uses for the server: the clients' own CPU competes with it.
        runs, interrupted = uvloop.run(
            bench(database_url, redis_url, configured, args, seeded, pg_pid)
        )
        report(runs)
        if interrupted:
            print("interrupted: figures cover the requests done so far", file=sys.stderr)
            return 130
        return 1 if any(run.failures for run in runs) else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if admin_url and not args.keep:
            with contextlib.suppress(Exception):
                asyncio.run(drop_database(admin_url))
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    raise SystemExit(main())
