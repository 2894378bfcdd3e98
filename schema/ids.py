"""Global (Relay) IDs: `base64("Type:uuid")`, checked for the expected type."""

from __future__ import annotations

import uuid

from strawberry import relay

from app.errors import BadUserInput


def to_global_id(type_name: str, value: uuid.UUID | str) -> relay.GlobalID:
    return relay.GlobalID(type_name, str(value))


def parse_id(value: relay.GlobalID, type_name: str, field: str = "id") -> uuid.UUID:
    if value.type_name != type_name:
        raise BadUserInput(f"`{field}` must be a {type_name} id.", extra={"field": field})
    try:
        return uuid.UUID(value.node_id)
    except ValueError as exc:
        raise BadUserInput(
            f"`{field}` is not a valid {type_name} id.", extra={"field": field}
        ) from exc


def optional_id(value: relay.GlobalID | None, type_name: str, field: str) -> uuid.UUID | None:
    """`parse_id` for an optional argument: None stays None."""
    return None if value is None else parse_id(value, type_name, field)
