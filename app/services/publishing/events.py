"""postStatusChanged: each target's state changes, on one Redis channel per workspace.

Events are a notification, not the record: Postgres holds the state and subscribers read
the target's row for each event (and catch up from `updated_at` after a gap).
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from app.logging import get_logger
from app.models import PostTarget

log = get_logger(__name__)


class EventPublisher(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...


def channel(workspace_id: uuid.UUID | str) -> str:
    return f"posts:{workspace_id}"


def message(target: PostTarget) -> dict[str, Any]:
    return {
        "target_id": str(target.id),
        "post_id": str(target.post_id),
        "workspace_id": str(target.workspace_id),
        "status": target.status,
        "seq": target.event_seq,
        "attempts": target.attempts,
    }


async def emit(publisher: EventPublisher | None, targets: list[PostTarget]) -> None:
    """Tell subscribers; a Redis failure is logged, never raised (state is already saved)."""
    if publisher is None:
        return
    for target in targets:
        try:
            await publisher.publish(channel(target.workspace_id), message(target))
        except Exception as exc:
            log.warning("post_event_publish_failed", target_id=str(target.id), error=repr(exc))
