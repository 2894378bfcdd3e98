"""The realtime hub over real Redis: fan-out, bounded queues, reconnect with GAP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.infra.realtime import GAP, WAKE_SLICE, EventHub, Subscription
from tests.conftest import Servers
from tests.loop_probe import LoopTicks


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
    async with hub.subscribe("busy") as slow, hub.subscribe("marker") as marker:
        for n in range(10):
            await hub.publish("busy", {"n": n})
        # One connection delivers in order: once the marker is here, all ten were offered.
        await hub.publish("marker", {"done": True})
        assert await marker.get(wait=10) == {"done": True}
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
            assert await sub.get(wait=10) is GAP, "at disconnect"
            # Again once re-subscribed: what was published in between is lost, and a
            # subscriber that re-read stored state at the first GAP may have read too early.
            assert await sub.get(wait=30) is GAP, "after the channels are live again"
            assert await admin.publish("survivor", '{"after": true}') == 1
            assert await sub.get(wait=10) == {"after": True}
        finally:
            await admin.aclose()


async def test_one_message_wakes_its_subscribers_a_slice_per_loop_iteration(
    hub: EventHub,
) -> None:
    """1,000 subscribers of one channel: the loop polls its sockets between slices of
    them (at most WAKE_SLICE woken per iteration), each gets both messages in order, and
    a fence answers only once every subscriber has been offered what came before it."""
    count = 1000
    async with contextlib.AsyncExitStack() as stack:
        subs = [await stack.enter_async_context(hub.subscribe("crowd")) for _ in range(count)]
        with LoopTicks() as ticks:

            async def consume(sub: Subscription) -> list[object]:
                got = [await sub.get(wait=10)]
                ticks.mark()
                got.append(await sub.get(wait=10))
                return got

            consumers = [asyncio.create_task(consume(sub)) for sub in subs]
            await asyncio.sleep(0)  # every consumer is waiting
            await hub.publish("crowd", {"n": 1})
            await hub.publish("crowd", {"n": 2})
            received = await asyncio.gather(*consumers)
        assert all(got == [{"n": 1}, {"n": 2}] for got in received)
        assert ticks.busiest <= WAKE_SLICE, f"{ticks.busiest} woken in one loop iteration"
        assert len(ticks.seen) >= count // WAKE_SLICE

        await hub.publish("crowd", {"n": 3})
        assert await hub.fence()
        assert all(sub.get_nowait() == {"n": 3} for sub in subs), "offered before the fence"
