"""The publishing tests' app (outbound guard open to 127.0.0.1, short back-off, 1 s sweeper)
and a local receiver of webhook events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.outgoing.event_receiver import EventReceiver, serve_events
from tests.publishing.conftest import (  # noqa: F401 - fixtures shared with publishing
    client,
    delivery,
    pub_app,
    pub_settings,
    receiver,
    state,
    team,
)


@pytest.fixture
async def events() -> AsyncIterator[EventReceiver]:
    async with serve_events() as fake:
        yield fake
