"""First-party engagement events recorded through GraphQL (`recordEngagementEvents`):
the same checks and report as `POST /ingest/events`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.services.analytics.ingest import IngestReport
from schema.types.errors import UserError
from schema.types.vocabulary import EngagementEventType


def _id_of(value: relay.GlobalID | None, type_name: str) -> uuid.UUID | str | None:
    """The id when it is one of `type_name`; otherwise its text, which the event check
    refuses for that one event (the rest of the batch goes on)."""
    if value is None:
        return None
    if value.type_name == type_name:
        try:
            return uuid.UUID(value.node_id)
        except ValueError:
            pass
    return str(value)


@strawberry.input(description="One engagement event (a view, a click, a conversion...).")
class EngagementEventInput:
    id: str = strawberry.field(
        description="Your id for the event (1-128 characters): an event sent again with "
        "the same id is counted once (`duplicate`)."
    )
    content_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The content item it is about (this or `targetId`)."
    )
    target_id: relay.GlobalID | None = strawberry.field(
        default=None,
        description="The published post (PostTarget) it is about; its content and platform "
        "are taken from it.",
    )
    type: EngagementEventType = strawberry.field(description="What happened.")
    occurred_at: datetime = strawberry.field(
        description="When it happened, with a timezone; late events are welcome, future ones "
        "(beyond a few minutes of clock skew) are refused."
    )
    value: float | None = strawberry.field(
        default=None, description="A number that goes with it (e.g. a conversion's amount)."
    )
    properties: JSON | None = strawberry.field(
        default=None,
        description="A small JSON object of attributes (at most 4 KB, 4 levels deep).",
    )
    variant: str | None = strawberry.field(
        default=None,
        description='The A/B arm the event belongs to: the variant\'s label ("A" is the '
        'content item itself, the control; "B", "C"... its variants), as '
        "`abTestAssignment` gave it. 1-3 capital letters.",
    )

    def to_fields(self) -> dict[str, Any]:
        """The event as the ingest checks it (the shape `POST /ingest/events` reads)."""
        return {
            "id": self.id,
            "contentId": _id_of(self.content_id, "Content"),
            "targetId": _id_of(self.target_id, "PostTarget"),
            "type": self.type.value,
            "occurredAt": self.occurred_at,
            "value": self.value,
            "properties": self.properties,
            "variant": self.variant,
        }


@strawberry.type(description="An event that was not recorded, and why.")
class EngagementEventRefusal:
    index: int = strawberry.field(description="Its position in `events` (from 0).")
    id: str | None = strawberry.field(description="Its id, when it had a readable one.")
    reason: str = strawberry.field(description="What is wrong with it.")


@strawberry.type(description="Result of `recordEngagementEvents`.")
class RecordEngagementEventsPayload:
    accepted: int = strawberry.field(description="Events recorded now.")
    duplicate: int = strawberry.field(
        description="Events whose id was recorded before (or earlier in this batch)."
    )
    refused: int = strawberry.field(description="Events refused; see `refusals`.")
    refusals: list[EngagementEventRefusal] = strawberry.field(
        description="Each refused event with its reason, in order."
    )
    errors: list[UserError] = strawberry.field(
        description="Why the batch as a whole was refused (too many events), if it was."
    )

    @classmethod
    def of(
        cls, report: IngestReport | None, errors: list[UserError]
    ) -> RecordEngagementEventsPayload:
        report = report or IngestReport()
        return cls(
            accepted=report.accepted,
            duplicate=report.duplicate,
            refused=report.refused,
            refusals=[
                EngagementEventRefusal(index=r.index, id=r.id, reason=r.reason)
                for r in report.errors
            ],
            errors=errors,
        )
