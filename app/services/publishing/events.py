"""postStatusChanged: each target's state changes, on one Redis channel per workspace.

Events are a notification, not the record: Postgres holds the state and subscribers read
the target's row for each event (and catch up from `updated_at` after a gap).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from app.logging import get_logger

log = get_logger(__name__)


class TargetState(Protocol):
    """What an event says of a target: a PostTarget, or a row of transitions.Target."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def post_id(self) -> uuid.UUID: ...
    @property
    def workspace_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def event_seq(self) -> int: ...
    @property
    def attempts(self) -> int: ...


class EventPublisher(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...


def channel(workspace_id: uuid.UUID | str) -> str:
    return f"posts:{workspace_id}"


def message(target: TargetState) -> dict[str, Any]:
    return {
        "target_id": str(target.id),
        "post_id": str(target.post_id),
        "workspace_id": str(target.workspace_id),
        "status": target.status,
        "seq": target.event_seq,
        "attempts": target.attempts,
    }


async def emit(publisher: EventPublisher | None, targets: Sequence[TargetState]) -> None:
    """Tell subscribers; a Redis failure is logged, never raised (state is already saved)."""
    if publisher is None:
        return
    for target in targets:
        try:
            await publisher.publish(channel(target.workspace_id), message(target))
        except Exception as exc:
            log.warning("post_event_publish_failed", target_id=str(target.id), error=repr(exc))
