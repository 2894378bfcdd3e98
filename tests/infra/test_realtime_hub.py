"""The realtime hub over real Redis: fan-out, bounded queues, reconnect with GAP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.infra.realtime import GAP, EventHub
from tests.conftest import Servers


@pytest.fixture
async def hub(servers: Servers) -> AsyncIterator[EventHub]:
    hub = EventHub(servers.redis_url, queue_size=4)
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 5)
    yield hub
    await hub.stop()


async def test_messages_fan_out_to_every_subscriber(hub: EventHub) -> None:
    async with (
        hub.subscribe("room:1") as a,
        hub.subscribe("room:1") as b,
        hub.subscribe("room:2") as c,
    ):
        await hub.publish("room:1", {"n": 1})
        assert await a.get(wait=5) == {"n": 1}
        assert await b.get(wait=5) == {"n": 1}
        with pytest.raises(TimeoutError):
            await c.get(wait=0.3)


async def test_a_slow_subscriber_gets_a_gap_not_unbounded_memory(hub: EventHub) -> None:
    async with hub.subscribe("busy") as slow:
        for n in range(10):
            await hub.publish("busy", {"n": n})
        await asyncio.sleep(0.3)
        first = await slow.get(wait=5)
        assert first is GAP, "overflow is reported so the consumer re-reads stored state"
        await hub.publish("busy", {"n": 99})
        assert await slow.get(wait=5) == {"n": 99}


async def test_reconnects_after_redis_drops_the_connection(hub: EventHub, servers: Servers) -> None:
    async with hub.subscribe("survivor") as sub:
        admin = Redis.from_url(servers.redis_url)
        try:
            killed = await admin.client_kill_filter(_type="pubsub")
            assert killed >= 1
            assert await sub.get(wait=5) is GAP
            await asyncio.wait_for(hub.connected.wait(), 10)
            for _ in range(50):  # resubscribed once the supervisor reconnected
                if await admin.publish("survivor", '{"after": true}'):
                    break
                await asyncio.sleep(0.1)
            assert await sub.get(wait=5) == {"after": True}
        finally:
            await admin.aclose()
