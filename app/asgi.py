"""ASGI application factory: `uvicorn --factory app.asgi:create_app`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from app import __version__
from app.db import create_engine, create_read_session_factory, create_session_factory
from app.http import analytics_export as export_routes
from app.http import ingest as ingest_routes
from app.http import oauth as oauth_routes
from app.http import ops
from app.http.graphiql import AssetFiles
from app.http.graphql_view import GraphQLView
from app.http.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from app.http.protocol import PREFLIGHT_HEADERS
from app.infra.mailer import build_mailer
from app.infra.queue import JobQueue
from app.infra.ratelimit import RateLimiter
from app.infra.realtime import EventHub
from app.infra.storage import build_storage
from app.infra.throttle import LoginThrottle
from app.logging import configure_logging, get_logger
from app.metrics import Metrics
from app.security.keys import load_keys
from app.services.outgoing import mail as outgoing_mail
from app.settings import Settings, get_settings
from app.state import AppState
from schema.schema import build_schema

log = get_logger(__name__)


def _require(url: str | None, name: str) -> str:
    if not url:
        raise SystemExit(
            f"smartcontent: {name} is not set (`smartcontent dev` starts embedded servers)"
        )
    return url


# Young collections every 700 allocations (CPython's default) run hundreds of times a
# second when one event is sent to thousands of subscribers, and every tenth of a tenth of
# them may become a full pass over every live object (seconds with 10,000 subscriptions).
# A larger first threshold makes all of them rarer; what start-up allocated is frozen out
# of every scan. Measured with bench/job_follow.py (bench/README.md).
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Once start-up is done: everything allocated so far lives forever."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    database_url = _require(settings.database_url, "DATABASE_URL")
    redis_url = _require(settings.redis_url, "REDIS_URL")

    engine = create_engine(database_url, settings, application_name="smartcontent-api")
    metrics = Metrics()
    metrics.add_pool_collector(engine)
    redis = Redis.from_url(redis_url)
    keys = load_keys(settings)
    session_factory = create_session_factory(engine)
    arq = JobQueue(redis_url)
    state = AppState(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        read_session_factory=create_read_session_factory(engine),
        redis=redis,
        hub=EventHub(redis_url),
        arq=arq,
        metrics=metrics,
        keys=keys,
        mailer=build_mailer(
            settings.mailer,
            settings,
            durable=outgoing_mail.queue_with(session_factory, arq, keys.box),
        ),
        login_throttle=LoginThrottle(
            redis, settings.login_max_failures, settings.login_lock_seconds
        ),
        rate_limiter=RateLimiter(redis, settings),
        storage=build_storage(settings, keys.signing_secret),
    )
    schema = build_schema(settings)
    view = GraphQLView(schema, state)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.hub.start()
        await view.principals.start(engine.sync_engine)
        # Everything allocated at start-up lives forever: keep it out of GC scans, which
        # otherwise show up as ~100 ms pauses at p99 (measured with bench/graphql_health.py).
        tune_gc()
        log.info("api_started", version=__version__, environment=settings.environment)
        try:
            yield
        finally:
            await view.principals.stop()
            await state.hub.stop()
            await state.mailer.aclose()
            await state.arq.aclose()
            await state.rate_limiter.aclose()
            await state.redis.aclose()
            await engine.dispose()
            log.info("api_stopped")

    routes = [
        Route("/healthz", ops.healthz, methods=["GET"]),
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/media/{key:path}", ops.media, methods=["GET"]),
        Route("/oauth/{platform}/callback", oauth_routes.callback, methods=["GET"]),
        Route(ingest_routes.PATH, ingest_routes.ingest_events, methods=["POST"]),
        Route(export_routes.PATH, export_routes.download, methods=["GET"]),
        # Every method reaches the view, which answers 405 with a GraphQL error and `Allow`.
        Route("/graphql", view),
        WebSocketRoute("/graphql", view),
    ]
    if settings.graphiql and settings.graphiql_assets == "local":
        routes.append(Route("/graphql/assets/{name}", AssetFiles().serve, methods=["GET"]))

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["authorization", "content-type", "x-request-id", *PREFLIGHT_HEADERS],
                expose_headers=[
                    "x-request-id",
                    "x-ratelimit-limit",
                    "x-ratelimit-remaining",
                    "x-ratelimit-reset",
                ],
                allow_credentials=False,
                max_age=600,
            ),
            Middleware(
                BodySizeLimitMiddleware,
                max_bytes=settings.max_body_bytes,
                # Uploads (GraphQL multipart requests) may be as large as the largest medium.
                max_upload_bytes=max(settings.max_image_bytes, settings.max_video_bytes)
                + 1_000_000,
                own_limits=frozenset({ingest_routes.PATH}),
            ),
        ],
        lifespan=lifespan,
    )
    app.state.smartcontent = state
    app.state.schema = schema
    return app
