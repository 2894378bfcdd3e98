"""Service health as seen through GraphQL."""

from __future__ import annotations

from enum import Enum

import strawberry

from app.services.ops.health import HealthReport


@strawberry.enum(description="Whether a dependency answered its check.")
class ServiceStatus(Enum):
    OK = strawberry.enum_value("ok", description="Answered within the check timeout.")
    UNAVAILABLE = strawberry.enum_value(
        "unavailable", description="Did not answer, or answered with an error."
    )

    @classmethod
    def of(cls, ok: bool) -> ServiceStatus:
        return cls.OK if ok else cls.UNAVAILABLE


@strawberry.type(description="Reachability of the service's dependencies and its version.")
class Health:
    database: ServiceStatus = strawberry.field(description="PostgreSQL.")
    redis: ServiceStatus = strawberry.field(description="Redis (jobs and realtime events).")
    version: str = strawberry.field(description="SmartContent server version.")

    @classmethod
    def from_report(cls, report: HealthReport) -> Health:
        return cls(
            database=ServiceStatus.of(report.database),
            redis=ServiceStatus.of(report.redis),
            version=report.version,
        )
