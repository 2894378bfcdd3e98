"""Metrics series that must exist and counts that must add up."""

from __future__ import annotations

import httpx
import pytest
from graphql import GraphQLError
from starlette.applications import Starlette

from app.metrics import Metrics


async def test_every_job_state_has_a_series_even_at_zero(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    text = (await client.get("/metrics")).text  # no job at all in a clean database
    for state in ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED"):
        assert f'smartcontent_jobs{{state="{state}"}} 0.0' in text


@pytest.mark.no_db
def test_nothing_is_reported_before_the_jobs_were_read() -> None:
    metrics = Metrics()
    assert metrics.registry.get_sample_value("smartcontent_jobs", {"state": "FAILED"}) is None
    metrics.job_counts = {"QUEUED": 2}
    assert metrics.registry.get_sample_value("smartcontent_jobs", {"state": "QUEUED"}) == 2
    assert metrics.registry.get_sample_value("smartcontent_jobs", {"state": "FAILED"}) == 0


@pytest.mark.no_db
def test_count_errors_counts_each_error_by_code() -> None:
    metrics = Metrics()
    limited = GraphQLError("slow down", extensions={"code": "RATE_LIMITED"})
    metrics.count_errors([limited] * 6 + [GraphQLError("no code")])
    sample = metrics.registry.get_sample_value
    assert sample("smartcontent_graphql_errors_total", {"code": "RATE_LIMITED"}) == 6
    assert sample("smartcontent_graphql_errors_total", {"code": "UNKNOWN"}) == 1
