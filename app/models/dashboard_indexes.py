"""Covering indexes over the engagement rollups for range reads (declared beside the
tables' readers rather than in engagement.py: they serve only these queries).

analyticsDashboard and engagementTrends read a workspace's rollup rows whose bucket starts
in a time range. The primary key starts with (workspace_id, bucket_start) too, but a scan
of it visits the heap for every row, in the rollups' insertion order: random reads, ~25
µs a row on the bench (bench/README.md). These indexes carry every column those reads use,
so Postgres answers them with index-only scans over adjacent pages (~0.2 µs a row). The
price: a rollup upsert changes `events`, an included column, so those updates are no
longer HOT and write an entry in each index.
"""

from __future__ import annotations

from sqlalchemy import Index

from app.models.engagement import EngagementDaily, EngagementHourly

RANGE_COLUMNS = ("content_id", "platform", "event_type", "events", "value_sum")

hourly_range = Index(
    "ix_engagement_hourly_range",
    EngagementHourly.workspace_id,
    EngagementHourly.bucket_start,
    postgresql_include=list(RANGE_COLUMNS),
)
daily_range = Index(
    "ix_engagement_daily_range",
    EngagementDaily.workspace_id,
    EngagementDaily.bucket_start,
    postgresql_include=list(RANGE_COLUMNS),
)
