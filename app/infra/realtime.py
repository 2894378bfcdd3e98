"""Redis pub/sub fan-out to in-process subscribers, supervised and bounded.

Why not `broadcaster` directly: its 0.3 listener dies for good when Redis drops the
connection and its subscriber queues are unbounded, so one slow websocket grows memory
without limit. This hub reconnects with backoff, re-subscribes, and tells subscribers when
they may have missed events (`GAP`) so they catch up from Postgres, the source of truth.

While it is healthy nothing is missed: `subscribe()` returns once Redis has confirmed the
channel (so a caller that subscribes, then reads stored state, then listens, sees every
later message), and after a reconnect the GAP comes once the channels are live again.
`fence()` waits until everything Redis published before it was handed out, so a note
queued after it (`Signal`) reaches a subscriber behind those messages.

One message to 10,000 subscribers of a channel is decoded once and costs each of them a
deque append and, when it waits, one future set: no asyncio.Queue, no task or timer per
`get()` unless it is given a timeout. The wake-ups are handed out `WAKE_SLICE` at a time,
the hub yielding to the event loop between slices: every woken subscriber runs in the next
loop iteration, so without slices the loop would poll no socket (no /healthz, no other
client) until all 10,000 had run. Each subscriber still sees its messages in order: the
hub offers one message to all its subscribers before it reads the next (`WakeSlicer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from app.logging import get_logger

log = get_logger(__name__)


class _Gap:
    """Marker: events may have been lost (overflow or reconnect); re-read stored state."""

    def __repr__(self) -> str:
        return "GAP"


GAP: Final = _Gap()


class Signal:
    """Base of in-process notes for one subscriber, queued in order with its messages."""

    __slots__ = ()


Message = dict[str, Any] | _Gap | Signal

SUBSCRIBE_TIMEOUT_SECONDS = 5.0
# Wake-ups handed out per event-loop iteration (see the module docstring): small enough
# that a slice of subscribers runs in well under 100 ms, large enough that the yields
# between slices cost nothing measurable.
WAKE_SLICE = 100
_READY = b"hub-ready"
_FENCE = b"hub-fence:"


class Subscription:
    """One subscriber's bounded queue (one consumer); iterate it to receive messages or GAP."""

    __slots__ = ("_items", "_lagging", "_size", "_waiter", "channel")

    def __init__(self, channel: str, size: int) -> None:
        self.channel = channel
        self._size = size
        self._items: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._lagging = False

    def offer(self, message: Message) -> None:
        if self._lagging:
            return
        if len(self._items) >= self._size:
            # Drop what is queued and ask the consumer to resynchronise from the database.
            self._items.clear()
            message = GAP
            self._lagging = True
        self._items.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self, wait: float | None = None) -> Message:
        """Next message or GAP; raises TimeoutError after `wait` seconds without one."""
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                if wait is None:
                    await waiter
                else:
                    async with asyncio.timeout(wait):
                        await waiter
            finally:
                self._waiter = None
        return self._take()

    def get_nowait(self) -> Message | None:
        """The next message already queued, or None: lets a consumer batch a burst."""
        return self._take() if self._items else None

    def _take(self) -> Message:
        item = self._items.popleft()
        if item is GAP:
            self._lagging = False
        return item

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            yield await self.get()


class WakeSlicer:
    """Yields to the event loop after every `per_iteration` wake-ups it is told about, so
    the loop polls its sockets between slices of a fan-out. One per producer: its count
    runs on across messages, so many small fan-outs in a burst are paced too, and one
    subscriber each costs no extra yield."""

    __slots__ = ("_left", "per_iteration", "yields")

    def __init__(self, per_iteration: int = WAKE_SLICE) -> None:
        self.per_iteration = per_iteration
        self._left = per_iteration
        self.yields = 0

    async def woke(self) -> None:
        """One more wake-up handed out (a future set, a message offered)."""
        self._left -= 1
        if self._left <= 0:
            await self._yield()

    async def offer(self, subscriptions: Iterable[Subscription], message: Message) -> None:
        """`message` to each of `subscriptions` (a snapshot: the set may change while
        this yields), in slices."""
        for sub in subscriptions:
            sub.offer(message)
            self._left -= 1
            if self._left <= 0:
                await self._yield()

    async def _yield(self) -> None:
        self._left = self.per_iteration
        self.yields += 1
        await asyncio.sleep(0)


class EventHub:
    def __init__(self, redis_url: str, *, queue_size: int = 256) -> None:
        self._url = redis_url
        self._queue_size = queue_size
        self._publisher = aioredis.Redis.from_url(redis_url)
        self._subscribers: dict[str, set[Subscription]] = {}
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        # Channels whose SUBSCRIBE Redis has not confirmed yet on the current connection.
        self._confirming: dict[str, asyncio.Future[None]] = {}
        # PING tokens sent by fence(), answered in order after every message before them.
        self._fences: dict[bytes, asyncio.Future[bool]] = {}
        self._fence_ids = itertools.count()
        self._slicer = WakeSlicer()
        self.connected = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="event-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_pubsub()
        await self._publisher.aclose()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._publisher.publish(channel, json.dumps(message, default=str))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        sub = Subscription(channel, self._queue_size)
        first = channel not in self._subscribers
        self._subscribers.setdefault(channel, set()).add(sub)
        try:
            if first:
                await self._subscribe_remote(channel)
            else:
                await self._confirmed(channel)
            yield sub
        finally:
            subs = self._subscribers.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[channel]
                    await self._unsubscribe_remote(channel)

    async def fence(self, within: float = SUBSCRIBE_TIMEOUT_SECONDS) -> bool:
        """Wait until every message Redis published before this call has been offered to
        its subscribers (Redis answers a PING on the subscribed connection after the
        messages already sent on it). False: not connected or no answer in time; the GAP
        that follows a reconnect then covers whatever was in flight."""
        pubsub = self._pubsub
        if pubsub is None or not self.connected.is_set():
            return False
        token = _FENCE + str(next(self._fence_ids)).encode()
        answered = asyncio.get_running_loop().create_future()
        self._fences[token] = answered
        try:
            await pubsub.ping(token)
            return await asyncio.wait_for(asyncio.shield(answered), within)
        except (RedisError, OSError, TimeoutError):
            return False
        finally:
            self._fences.pop(token, None)

    async def _subscribe_remote(self, channel: str) -> None:
        if self._pubsub is None:
            return  # the supervisor subscribes every channel when it connects, then sends GAP
        self._confirming[channel] = asyncio.get_running_loop().create_future()
        try:
            await self._pubsub.subscribe(channel)
        except (RedisError, OSError):
            log.warning("hub_subscribe_failed", channel=channel)  # the supervisor retries
            return
        await self._confirmed(channel)

    async def _confirmed(self, channel: str) -> None:
        """Wait until Redis confirmed the channel's SUBSCRIBE. Bounded: if the connection
        is failing, the supervisor's GAP after reconnecting covers what this one misses."""
        pending = self._confirming.get(channel)
        if pending is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(pending), SUBSCRIBE_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("hub_subscribe_unconfirmed", channel=channel)

    async def _unsubscribe_remote(self, channel: str) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _supervise(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected.is_set():
                    backoff = 0.1  # it was up: retry soon, back off only while it stays down
                log.warning("hub_connection_lost", error=repr(exc), retry_in=backoff)
            self.connected.clear()
            for pending in self._confirming.values():
                if not pending.done():
                    pending.set_result(None)  # the GAP after reconnecting covers it
            self._confirming.clear()
            for answered in self._fences.values():
                if not answered.done():
                    answered.set_result(False)
            await self._close_pubsub()
            await self._broadcast_gap()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _listen(self) -> None:
        client = aioredis.Redis.from_url(self._url)
        pubsub = client.pubsub(ignore_subscribe_messages=False)
        # A channel to keep the connection in subscribed mode even with no subscribers.
        channels = set(self._subscribers)
        await pubsub.subscribe("hub:keepalive", *channels)
        self._pubsub = pubsub
        if missing := set(self._subscribers) - channels:  # arrived while we connected
            await pubsub.subscribe(*missing)
        # Replies come in order on this connection: once this PING is answered, every
        # SUBSCRIBE above is in effect.
        await pubsub.ping(_READY)
        while True:
            message = await self._pubsub.get_message(timeout=5.0)
            if message is None:
                await self._pubsub.ping()  # detect a dead connection while idle
                continue
            kind = message.get("type")
            if kind == "subscribe":
                pending = self._confirming.pop(message["channel"].decode(), None)
                if pending is not None and not pending.done():
                    pending.set_result(None)
                continue
            if kind == "pong":
                data = message.get("data")
                if data == _READY:
                    await self._ready()
                elif (answered := self._fences.get(data)) is not None and not answered.done():
                    answered.set_result(True)
                continue
            if kind != "message":
                continue
            channel = message["channel"].decode()
            try:
                payload = json.loads(message["data"])
            except (ValueError, TypeError):
                log.warning("hub_bad_message", channel=channel)
                continue
            subs = self._subscribers.get(channel)
            if subs:
                # Every offer of this message before the next is read: order per subscriber.
                await self._slicer.offer(tuple(subs), payload)

    async def _ready(self) -> None:
        self.connected.set()
        log.info("hub_connected", channels=len(self._subscribers))
        # Whoever subscribed while we were away (or before the first connection) may have
        # read stored state before its channel was live: have them read it again now.
        await self._broadcast_gap()

    async def _broadcast_gap(self) -> None:
        everyone = [sub for subs in self._subscribers.values() for sub in subs]
        await self._slicer.offer(everyone, GAP)
