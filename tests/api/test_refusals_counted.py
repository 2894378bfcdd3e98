"""Answers refused before the schema runs (rate limits, rejected credentials) are counted in
the error metrics and name the limit that refused them."""

from __future__ import annotations

import httpx

from tests.conftest import Servers, make_settings, running_app

HEALTH = {"query": "{ health { version } }"}


def _count(text: str, code: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'smartcontent_graphql_errors_total{{code="{code}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_six_rate_limited_answers_count_six(servers: Servers) -> None:
    settings = make_settings(servers, rate_limit_anonymous=2)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        before = _count((await client.get("/metrics")).text, "RATE_LIMITED")
        statuses = [(await client.post("/graphql", json=HEALTH)).status_code for _ in range(8)]
        assert statuses.count(429) == 6
        after = _count((await client.get("/metrics")).text, "RATE_LIMITED")
        assert after - before == 6


async def test_rejected_credentials_refusal_names_its_own_limit(servers: Servers) -> None:
    settings = make_settings(servers, rate_limit_rejected_credentials=2)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        forged = {"Authorization": "Bearer not-a-token"}
        responses = [await client.post("/graphql", json=HEALTH, headers=forged) for _ in range(4)]
        limited = [r for r in responses if r.status_code == 429]
        assert limited, [r.status_code for r in responses]
        message = limited[0].json()["errors"][0]["message"]
        assert "invalid credentials" in message and "limit 2" in message, message
