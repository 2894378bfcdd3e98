"""Prometheus metrics: one registry per app instance (tests build many apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from graphql import GraphQLError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.models.job import JobStatus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# Operation names are chosen by clients; cap the label set so they cannot explode it.
MAX_OPERATION_LABELS = 200
OTHER = "__other__"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._operations: set[str] = set()
        self.requests = Counter(
            "smartcontent_graphql_requests",
            "GraphQL operations executed, by operation name and type.",
            ["operation", "type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "smartcontent_graphql_request_duration_seconds",
            "GraphQL operation latency, by operation name.",
            ["operation"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.errors = Counter(
            "smartcontent_graphql_errors",
            "GraphQL errors returned, by extensions.code.",
            ["code"],
            registry=self.registry,
        )
        # Refreshed from Postgres by the /metrics handler just before rendering (None until
        # it has been read once: then there is nothing to report, not zero).
        self.job_counts: dict[str, int] | None = None
        self.registry.register(_JobsCollector(lambda: self.job_counts))
        self.websockets = Gauge(
            "smartcontent_websocket_connections",
            "Open GraphQL websocket connections.",
            registry=self.registry,
        )

    def count_errors(self, errors: Iterable[GraphQLError]) -> None:
        """Count each error returned, by its `extensions.code`: the one place every answer's
        errors go through, whether the operation ran (schema extension) or was refused
        before it could (rate limits and rejected credentials in the view)."""
        for error in errors:
            self.errors.labels((error.extensions or {}).get("code", "UNKNOWN")).inc()

    def operation_label(self, name: str | None) -> str:
        name = (name or "anonymous")[:64]
        if name in self._operations:
            return name
        if len(self._operations) >= MAX_OPERATION_LABELS:
            return OTHER
        self._operations.add(name)
        return name

    def add_pool_collector(self, engine: AsyncEngine) -> None:
        self.registry.register(_PoolCollector(engine))


class _PoolCollector(Collector):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def collect(self) -> Iterable[Metric]:
        pool = self._engine.sync_engine.pool
        family = GaugeMetricFamily(
            "smartcontent_db_pool_connections",
            "Database pool connections by state.",
            labels=["state"],
        )
        for state, attr in (
            ("checked_out", "checkedout"),
            ("idle", "checkedin"),
            ("overflow", "overflow"),
        ):
            getter = getattr(pool, attr, None)
            if getter is not None:
                family.add_metric([state], float(max(0, getter())))
        size = getattr(pool, "size", None)
        if size is not None:
            family.add_metric(["size"], float(size()))
        yield family


class _JobsCollector(Collector):
    """One series per job state, 0 included: a state without jobs must read 0, not vanish
    (a vanished series breaks `rate()`, alerts on FAILED and dashboards)."""

    def __init__(self, snapshot: Callable[[], dict[str, int] | None]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "smartcontent_jobs", "Background jobs by state.", labels=["state"]
        )
        counts = self._snapshot()
        if counts is not None:
            for state in sorted({s.value for s in JobStatus} | set(counts)):
                family.add_metric([state], float(counts.get(state, 0)))
        yield family
