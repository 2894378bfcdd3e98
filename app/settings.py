"""Service settings, read from the environment and `.env`, validated once at start.

Longer than 400 lines because every knob of the service is a field of the one validated
`Settings` class (split by the comments that group them), and one class is what each
process validates once at start.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_PG_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg"}
_REDIS_SCHEMES = {"redis", "rediss", "unix"}


def _check_url(value: str | None, schemes: set[str], what: str) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise ValueError(f"must be a {what} URL with scheme {allowed}; got {parts.scheme!r}")
    if parts.scheme != "unix" and not (parts.hostname or "host=" in parts.query):
        raise ValueError(f"must name a host (e.g. {sorted(schemes)[0]}://user@localhost/db)")
    return value


class Settings(BaseSettings):
    """Every knob of the service. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_file_encoding="utf-8")

    environment: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # API processes `serve` starts (uvicorn workers): one per core the API may use. Each
    # has its own DB pool, so Postgres sees up to workers x (pool size + overflow).
    api_workers: int = Field(1, ge=1, le=64)
    data_dir: Path = Path(".smartcontent")

    database_url: str | None = None
    redis_url: str | None = None
    test_database_url: str | None = None
    test_redis_url: str | None = None
    # DataLoaders of one request query in parallel, each on its own connection.
    db_pool_size: int = Field(20, ge=1, le=200)
    db_max_overflow: int = Field(10, ge=0, le=200)
    # A pooled connection idle this long is pinged before use (a busy one is not).
    db_ping_idle_seconds: float = Field(10.0, ge=0)
    # A new connection must finish its handshake in this time (a black-holed host must not
    # hang a request), and a request waits at most this long for a free pooled connection.
    db_connect_timeout_seconds: float = Field(10.0, gt=0, le=300)
    db_pool_timeout_seconds: float = Field(10.0, gt=0, le=300)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    # GraphQL endpoint
    graphiql: bool = True
    # Where GraphiQL's page loads its scripts and styles from: "local" serves the pinned
    # copies shipped in the package (works offline); "cdn" loads the same files from unpkg.
    graphiql_assets: Literal["local", "cdn"] = "local"
    introspection: bool = True
    allow_get_queries: bool = False
    legacy_graphql_ws: bool = False
    # Comma-separated in the environment: CORS_ORIGINS=https://app.example.com,https://x.example
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000"]
    )
    max_query_depth: int = Field(15, ge=2, le=100)
    max_aliases: int = Field(30, ge=1, le=1000)
    max_selections: int = Field(2000, ge=10, le=100_000)
    max_tokens: int = Field(3000, ge=100, le=100_000)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_page_size: int = Field(100, ge=1, le=1000)
    max_errors: int = Field(20, ge=1, le=500)
    execution_timeout_seconds: float = Field(15.0, gt=0, le=600)
    ws_connection_init_timeout_seconds: float = Field(5.0, gt=0, le=120)
    ws_max_subscriptions: int = Field(20, ge=1, le=1000)
    # Off by default: a subscription message is a few hundred bytes, and compressing each
    # one again for every socket it fans out to was the largest single cost of a fan-out
    # (8 % of the API's CPU at 10,000 subscribers), with a compressor kept per socket.
    ws_per_message_deflate: bool = False
    graceful_shutdown_seconds: int = Field(20, ge=1, le=600)
    # Retry-After (seconds) sent with 503 SERVICE_UNAVAILABLE while the database is down.
    unavailable_retry_after_seconds: int = Field(5, ge=1, le=3600)

    # Identity and security
    secret_key: SecretStr | None = Field(
        None, description="Signs access tokens. Required in production; dev persists one."
    )
    # Fernet keys (urlsafe base64, 32 bytes), comma-separated, newest first: rotation.
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # The web app's address: base of the links people open in a browser (password resets,
    # invitations, review links). Not the API's: that is `api_url`.
    public_url: str = "http://localhost:3000"
    # The API's public address (media download URLs). Unset: the address `serve` listens on.
    api_public_url: str | None = None
    access_token_minutes: int = Field(15, ge=1, le=60)
    refresh_token_days: int = Field(30, ge=1, le=365)
    password_reset_minutes: int = Field(60, ge=5, le=1440)
    invitation_days: int = Field(7, ge=1, le=90)
    # smtp: send through SMTP_HOST (below); log: write mails to the log; memory: tests.
    mailer: Literal["log", "memory", "smtp"] = "log"
    login_max_failures: int = Field(5, ge=1, le=100)
    login_lock_seconds: int = Field(30, ge=1, le=3600)
    # Token-bucket rate limits: requests per minute per principal, by plan tier.
    rate_limit_anonymous: int = Field(60, ge=1)
    rate_limit_free: int = Field(120, ge=1)
    rate_limit_pro: int = Field(600, ge=1)
    rate_limit_enterprise: int = Field(3000, ge=1)
    # Rejected credentials (malformed or forged tokens, unknown API keys) one address may
    # present per minute; beyond it every request of that address carrying a credential gets
    # 429 until the bucket refills. Expired or revoked credentials do not count.
    rate_limit_rejected_credentials: int = Field(20, ge=1)
    # A credential seen lately is not looked up again for this long (0: every request);
    # changes to users, memberships, workspaces and API keys drop the entries at once in
    # every API process (Redis); while that channel is down, only for the offline bound.
    principal_cache_seconds: float = Field(5.0, ge=0, le=60)
    principal_cache_offline_seconds: float = Field(2.0, ge=0, le=60)

    # Content, search and media
    # Fixed when the database is migrated (vector columns); change needs a new migration.
    embedding_dimensions: int = Field(384, ge=8, le=4000)
    embedding_provider: Literal["offline", "openai", "minilm"] = "offline"
    embedding_model: str = "text-embedding-3-small"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    duplicate_similarity: float = Field(0.92, gt=0, le=1)
    # SEMANTIC and HYBRID search leave out items less similar than this (cosine, -1..1).
    # With the offline embedder unrelated texts score below ~0.12 and related ones above
    # ~0.2; model embeddings (OpenAI, MiniLM) sit higher for both: tune it per model.
    search_min_similarity: float = Field(0.2, ge=-1, le=1)
    media_storage: Literal["local", "s3"] = "local"
    media_dir: Path = Path(".smartcontent/media")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    max_image_bytes: int = Field(10_000_000, ge=1024)
    max_video_bytes: int = Field(200_000_000, ge=1024)
    # Images are measured from their header and refused above these before any decoding.
    # At most Pillow's own bomb threshold (80 MP), which stays as a second guard.
    max_image_pixels: int = Field(40_000_000, ge=1, le=80_000_000)
    max_image_side: int = Field(12_000, ge=1, le=65_535)
    # Images decoded / videos parsed at once per process, each in a thread off the event loop.
    media_decode_concurrency: int = Field(2, ge=1, le=64)

    # AI text generation (app/ai). AI_PROVIDER=auto: OpenAI if OPENAI_API_KEY is set, else
    # Anthropic if ANTHROPIC_API_KEY is set, else the offline draft writer (not an LLM).
    # A local OpenAI-compatible server (Ollama, llama.cpp, vLLM): AI_PROVIDER=openai and
    # OPENAI_BASE_URL=http://127.0.0.1:11434/v1 (no key needed). OPENAI_* are shared with
    # the embeddings above.
    ai_provider: Literal["auto", "offline", "openai", "anthropic"] = "auto"
    ai_fallback_provider: Literal["offline", "openai", "anthropic"] | None = None
    openai_model: str = "gpt-4o-mini"
    # A cheaper model for short transforms (repurposing); unset: OPENAI_MODEL.
    openai_fast_model: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-5"
    anthropic_fast_model: str | None = "claude-haiku-4-5"
    # Longest wait for the next bytes of a provider response (the SDK timeout).
    ai_timeout_seconds: float = Field(30.0, gt=0, le=600)
    # Calls per provider for one completion (first included), jittered exponential backoff.
    ai_max_attempts: int = Field(2, ge=1, le=10)
    ai_backoff_seconds: float = Field(0.5, ge=0, le=60)
    ai_backoff_max_seconds: float = Field(4.0, ge=0, le=300)
    # One completion, retries and fallback included; must fit in JOB_LEASE_SECONDS.
    # Unset: 80% of the lease, at most 240 s.
    ai_deadline_seconds: float | None = Field(None, gt=0)
    ai_max_output_tokens: int = Field(2048, ge=16, le=200_000)
    # Consecutive failures that open a provider's circuit, and how long it stays open.
    ai_breaker_failures: int = Field(3, ge=1, le=100)
    ai_breaker_cooldown_seconds: float = Field(60.0, gt=0)
    # The offline writer's pause between chunks, so clients see text arrive as from a model.
    ai_offline_delay_ms: int = Field(15, ge=0, le=5000)
    # How often the text streamed so far is stored for subscribers that arrive mid-stream.
    ai_progress_flush_seconds: float = Field(0.25, gt=0, le=60)
    # A generation publishes at most one text delta this often: chunks arriving sooner go
    # out together (the first of a stage at once). 0: one delta per chunk from the model.
    ai_delta_batch_seconds: float = Field(0.05, ge=0, le=2)
    # The same request by the same caller within this window returns the same job.
    ai_dedup_seconds: int = Field(30, ge=0, le=3600)
    # AI tokens (input + output, as providers report them) a workspace may use per calendar
    # month (UTC), by plan; 0: no limit. Checked before a generation is queued.
    ai_monthly_tokens_free: int = Field(200_000, ge=0)
    ai_monthly_tokens_pro: int = Field(5_000_000, ge=0)
    ai_monthly_tokens_enterprise: int = Field(0, ge=0)
    # How often a running generation checks whether it was cancelled (then stops its stream).
    ai_cancel_poll_seconds: float = Field(1.0, gt=0, le=60)
    # Times a platform variation that breaks the platform's rules beyond a harmless cut is
    # sent back to the model (naming the violations) before the deterministic repair; 0: never.
    ai_repair_reasks: int = Field(1, ge=0, le=5)

    # Jobs
    # A running attempt holds its job this long and renews it every third of it (heartbeat):
    # a killed worker's jobs are taken again within about lease + sweeper interval.
    job_lease_seconds: int = Field(15, ge=2, le=600)
    # The longest one attempt may run; then it is stopped and counted as a failed attempt.
    job_timeout_seconds: int = Field(300, ge=1, le=86_400)
    job_max_attempts: int = Field(3, ge=1, le=50)
    # The sweeper (a task in every worker, one at a time through a Postgres advisory lock)
    # runs this often; a queued job this overdue whose arq job is gone or stale is re-enqueued.
    sweeper_interval_seconds: int = Field(5, ge=1, le=3600)
    worker_concurrency: int = Field(10, ge=1, le=500)
    # A worker looks at its queue when a job is enqueued or one of its jobs ends, and
    # otherwise this often (deferred retries, a lost wake-up); arq's poll delay.
    worker_poll_seconds: float = Field(0.5, gt=0, le=5)
    # workspaceEvents: a job's progress-only changes reach a subscriber at most this often
    # (status changes at once); every resync period the stream re-reads the jobs it shows
    # active (pub/sub is at-most-once) and re-checks that the caller may still read.
    workspace_events_progress_seconds: float = Field(1.0, ge=0, le=60)
    workspace_events_resync_seconds: float = Field(30.0, gt=0, le=3600)

    # Publishing: platform APIs
    # Base URLs are settings so tests (and self-hosted gateways) can point adapters elsewhere.
    # OAuth client ids and secrets come from each platform's developer console; a platform
    # without them cannot be connected through OAuth (startAccountConnection refuses it).
    x_api_base_url: str = "https://api.x.com"
    x_authorize_url: str = "https://x.com/i/oauth2/authorize"
    x_token_url: str = "https://api.x.com/2/oauth2/token"  # noqa: S105 (a URL)
    x_client_id: str | None = None
    x_client_secret: SecretStr | None = None
    x_scopes: str = "tweet.read tweet.write users.read media.write offline.access"
    linkedin_api_base_url: str = "https://api.linkedin.com"
    # The Posts API is versioned by month (LinkedIn-Version: YYYYMM); versions sunset
    # after about a year, so keep this recent.
    linkedin_api_version: str = "202511"
    linkedin_authorize_url: str = "https://www.linkedin.com/oauth/v2/authorization"
    linkedin_token_url: str = "https://www.linkedin.com/oauth/v2/accessToken"  # noqa: S105
    linkedin_client_id: str | None = None
    linkedin_client_secret: SecretStr | None = None
    linkedin_scopes: str = "openid profile w_member_social"
    # Facebook Pages and Instagram (through Facebook Login) share one Meta app.
    meta_graph_base_url: str = "https://graph.facebook.com"
    meta_graph_version: str = "v23.0"
    facebook_authorize_url: str = "https://www.facebook.com/v23.0/dialog/oauth"
    facebook_client_id: str | None = None
    facebook_client_secret: SecretStr | None = None
    facebook_scopes: str = (
        "pages_show_list,pages_manage_posts,pages_read_engagement,read_insights,"
        "instagram_basic,instagram_content_publish,instagram_manage_comments,"
        "instagram_manage_insights"
    )
    threads_api_base_url: str = "https://graph.threads.net"
    threads_api_version: str = "v1.0"
    threads_authorize_url: str = "https://threads.net/oauth/authorize"
    threads_client_id: str | None = None
    threads_client_secret: SecretStr | None = None
    threads_scopes: str = (
        "threads_basic,threads_content_publish,threads_manage_replies,threads_manage_insights"
    )
    # Bluesky: the PDS used when an account names none (accounts on other PDSes store theirs).
    bluesky_pds_url: str = "https://bsky.social"
    bluesky_web_url: str = "https://bsky.app"
    # Media a platform processes before it can be posted (videos, carousels): how often and
    # how many times its status is asked before the attempt gives up (retryable).
    platform_media_poll_seconds: float = Field(3.0, ge=0, le=60)
    platform_media_poll_attempts: int = Field(40, ge=1, le=1000)
    # Token requests (code exchange, refresh) to the platforms' OAuth endpoints.
    oauth_timeout_seconds: float = Field(20.0, gt=0, le=300)
    # How long a begun OAuth connection waits for its callback (the state is single use).
    oauth_state_ttl_seconds: int = Field(600, ge=60, le=3600)
    # The token refresher: how often it looks, and how far ahead of expiry it renews.
    token_refresh_interval_seconds: float = Field(300.0, gt=0, le=86_400)
    token_refresh_window_seconds: int = Field(3600, ge=60, le=30 * 86_400)
    # Largest media file an adapter downloads to re-upload (X, LinkedIn, Mastodon, Bluesky).
    platform_media_max_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    # SMTP: the app's own mail (MAILER=smtp) and email accounts without their own server.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # STARTTLS on a plain connection (port 587); SMTP_TLS: TLS from the start (port 465).
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_from: str = "SmartContent <no-reply@localhost>"
    smtp_timeout_seconds: float = Field(30.0, gt=0, le=600)
    # Publishing: delivery
    # Outbound requests (webhooks, user-given hosts) refuse private, loopback and link-local
    # addresses, checked after DNS resolution on every connection (redirects included).
    # true only for development and tests, whose receivers listen on 127.0.0.1.
    outbound_allow_private_networks: bool = False
    # Attempts per target (the first included); retryable failures back off exponentially
    # from PUBLISH_BACKOFF_SECONDS, doubling, at most PUBLISH_BACKOFF_MAX_SECONDS (a
    # platform's retry-after is respected when longer).
    publish_max_attempts: int = Field(5, ge=1, le=50)
    publish_backoff_seconds: float = Field(30.0, ge=0, le=3600)
    publish_backoff_max_seconds: float = Field(3600.0, ge=0, le=86_400)
    # One HTTP request to a platform; one attempt (look-up and publish together) is bounded
    # by PUBLISH_ATTEMPT_TIMEOUT_SECONDS and must end well inside the lease, after which the
    # sweeper treats the target as abandoned (its outcome in doubt).
    publish_request_timeout_seconds: float = Field(20.0, gt=0, le=300)
    publish_attempt_timeout_seconds: float = Field(45.0, gt=0, le=600)
    publish_lease_seconds: int = Field(90, ge=2, le=3600)
    # HTTP connections one worker keeps open for publishing (requests beyond wait for one).
    # A few dozen serve hundreds of posts per second; more cost CPU in the pool's bookkeeping.
    publish_http_connections: int = Field(20, ge=1, le=1000)
    # Publishing attempts one worker runs at once (the publish queue's own arq max_jobs;
    # WORKER_CONCURRENCY is the jobs queue's). An attempt mostly waits on the platform.
    publish_worker_concurrency: int = Field(50, ge=1, le=1000)
    # Due targets the sweeper hands to arq per pass (it runs every SWEEPER_INTERVAL_SECONDS).
    publish_sweep_batch: int = Field(2000, ge=1, le=100_000)
    # Analytics: platform metrics of published targets (app/services/analytics/
    # metrics_collector.py), collected 1 h, 6 h, 24 h, 72 h and 7 d after publishing. A pass
    # every METRICS_INTERVAL_SECONDS claims up to METRICS_BATCH due targets (a lease of
    # METRICS_LEASE_SECONDS, inside which each fetch must end) and fetches
    # METRICS_CONCURRENCY at once; a failed fetch is retried within its step after
    # METRICS_BACKOFF_SECONDS, doubling up to METRICS_BACKOFF_MAX_SECONDS, at most
    # METRICS_MAX_ATTEMPTS times before the step is skipped.
    metrics_interval_seconds: float = Field(60.0, gt=0, le=86_400)
    metrics_batch: int = Field(100, ge=1, le=10_000)
    metrics_concurrency: int = Field(8, ge=1, le=200)
    metrics_request_timeout_seconds: float = Field(20.0, gt=0, le=300)
    metrics_lease_seconds: int = Field(300, ge=5, le=86_400)
    metrics_backoff_seconds: float = Field(60.0, ge=0, le=86_400)
    metrics_backoff_max_seconds: float = Field(3600.0, ge=0, le=86_400)
    metrics_max_attempts: int = Field(5, ge=1, le=100)

    # Analytics: first-party engagement events (POST /ingest/events, recordEngagementEvents).
    # The ingest body has its own bound (MAX_BODY_BYTES stays for GraphQL): 10,000 events
    # of a few hundred bytes each. Read while streaming; a longer body is refused with 413.
    ingest_max_body_bytes: int = Field(8_000_000, ge=1024, le=200_000_000)
    ingest_max_events: int = Field(10_000, ge=1, le=100_000)
    # Events may say they happened at most this far ahead of the server's clock (skew).
    ingest_max_future_seconds: int = Field(300, ge=0, le=86_400 * 7)
    # Rollups: one worker job per window after ingest (coalesced), and a sweep meanwhile.
    engagement_rollup_coalesce_seconds: float = Field(2.0, ge=0.1, le=60)
    engagement_rollup_sweep_seconds: int = Field(30, ge=1, le=3600)
    # Partitions (one per month) are kept this many months ahead of the current one.
    engagement_partition_months_ahead: int = Field(2, ge=0, le=24)
    # importSchedule: the CSV may have at most this many bytes and data rows (a larger file
    # is refused whole, before anything is scheduled: split it).
    schedule_import_max_bytes: int = Field(1_000_000, ge=1024, le=50_000_000)
    schedule_import_max_rows: int = Field(1000, ge=1, le=100_000)

    @field_validator("public_url", "api_public_url")
    @classmethod
    def _base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (value is None or value == "") and info.field_name == "api_public_url":
            return None  # unset: follow HOST and PORT
        value = value or ""
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query:
            raise ValueError(f"must look like https://app.example.com; got {value!r}")
        return value.rstrip("/")

    @field_validator("database_url", "test_database_url")
    @classmethod
    def _pg_url(cls, value: str | None) -> str | None:
        return _check_url(value, _PG_SCHEMES, "PostgreSQL")

    @field_validator("redis_url", "test_redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return _check_url(value, _REDIS_SCHEMES, "Redis")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in {"http", "https"} or not parts.netloc):
                raise ValueError(
                    f"each origin must look like https://app.example.com; got {origin!r}"
                )
        return value

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _fernet_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        import base64
        import binascii

        for key in value:
            try:
                raw = base64.urlsafe_b64decode(key.get_secret_value().encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ValueError("each key must be 32 url-safe base64-encoded bytes (Fernet)")
        return value

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if self.environment == "production":
            if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
                raise ValueError("SECRET_KEY of at least 32 characters is required in production")
            if not self.encryption_keys:
                raise ValueError("ENCRYPTION_KEYS is required in production")
        elif self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("SECRET_KEY must be at least 32 characters")
        return self

    @field_validator(
        "x_api_base_url",
        "x_authorize_url",
        "x_token_url",
        "linkedin_api_base_url",
        "linkedin_authorize_url",
        "linkedin_token_url",
        "meta_graph_base_url",
        "facebook_authorize_url",
        "threads_api_base_url",
        "threads_authorize_url",
        "bluesky_pds_url",
        "bluesky_web_url",
    )
    @classmethod
    def _platform_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"must look like https://api.example.com; got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _smtp(self) -> Settings:
        if self.mailer == "smtp" and not self.smtp_host:
            raise ValueError("MAILER=smtp needs SMTP_HOST")
        if self.smtp_tls and self.smtp_starttls and "smtp_starttls" in self.model_fields_set:
            raise ValueError("SMTP_TLS and SMTP_STARTTLS exclude each other; set one")
        return self

    @model_validator(mode="after")
    def _embedding_width(self) -> Settings:
        if self.embedding_provider == "minilm" and self.embedding_dimensions != 384:
            raise ValueError("EMBEDDING_PROVIDER=minilm needs EMBEDDING_DIMENSIONS=384")
        return self

    @model_validator(mode="after")
    def _ai_fits_in_lease(self) -> Settings:
        # One attempt must outlive the longest completion, or the job could be taken over
        # (or stopped) while it is still streaming.
        limit = self.attempt_limit_seconds
        if self.ai_deadline_seconds is not None and self.ai_deadline_seconds + 10 > limit:
            raise ValueError(
                "AI_DEADLINE_SECONDS must be at least 10 s below the job attempt limit "
                f"(JOB_TIMEOUT_SECONDS): "
                f"{self.ai_deadline_seconds} vs {limit}"
            )
        return self

    @model_validator(mode="after")
    def _publish_attempt_fits_in_lease(self) -> Settings:
        if self.publish_attempt_timeout_seconds + 5 > self.publish_lease_seconds:
            raise ValueError(
                "PUBLISH_ATTEMPT_TIMEOUT_SECONDS must be at least 5 s below "
                f"PUBLISH_LEASE_SECONDS: {self.publish_attempt_timeout_seconds} vs "
                f"{self.publish_lease_seconds}"
            )
        return self

    @property
    def attempt_limit_seconds(self) -> int:
        """How long one job attempt may run (the lease is short and renewed by a heartbeat)."""
        return self.job_timeout_seconds

    @property
    def ai_deadline(self) -> float:
        if self.ai_deadline_seconds is not None:
            return self.ai_deadline_seconds
        return min(240.0, self.attempt_limit_seconds * 0.8)

    @property
    def resolved_ai_provider(self) -> str:
        """The primary text provider, with `auto` decided from the keys present."""
        if self.ai_provider != "auto":
            return self.ai_provider
        if self.openai_api_key is not None:
            return "openai"
        if self.anthropic_api_key is not None:
            return "anthropic"
        return "offline"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def api_url(self) -> str:
        """The API's public base URL: API_PUBLIC_URL, else the address `serve` listens on
        (a wildcard host such as 0.0.0.0 is shown as localhost)."""
        if self.api_public_url:
            return self.api_public_url
        host = "localhost" if self.host in ("", "0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"  # an IPv6 literal
        return f"http://{host}:{self.port}"


def embedding_dimensions() -> int:
    """Vector width for model definitions, read before full settings validation."""
    raw = os.environ.get("EMBEDDING_DIMENSIONS", "384")
    return int(raw) if raw.isdigit() else 384


def load_settings_or_exit() -> Settings:
    """Validate settings; on a bad value print one line naming it and exit with code 2."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]).upper() or "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        print(f"smartcontent: invalid setting {name}: {message}", file=sys.stderr)
        raise SystemExit(2) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings_or_exit()
