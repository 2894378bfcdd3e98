"""Engagement events at the edge: decoding a batch body (a JSON array or NDJSON) and
checking every event, each on its own, so one bad event is refused with its reason while
the others go on.

Pure and CPU-bound: callers run `parse_body` / `check_events` in a thread for large
batches (app/services/analytics/ingest.py), never on the event loop.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from app.models.engagement import EVENT_ID_MAX_LENGTH, NO_VARIANT, VARIANT_MAX_LENGTH
from app.models.vocabulary import EngagementEventType

JSON_TYPE = "application/json"
NDJSON_TYPE = "application/x-ndjson"
MEDIA_TYPES = (JSON_TYPE, NDJSON_TYPE)

FIELDS = frozenset(
    ("id", "contentId", "targetId", "type", "occurredAt", "value", "properties", "variant")
)
TYPES = frozenset(t.value for t in EngagementEventType)
# Nothing happened before this; an older time is a client bug (epoch 0, year 1).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_VALUE = Decimal(10) ** 14  # numeric(20, 6): 14 digits before the point
MAX_ID_TEXT = 200  # a global ID or a UUID is far shorter
MAX_TIME_TEXT = 64
# properties: a small JSON object of attributes (utm source, device, ...).
MAX_PROPERTIES_BYTES = 4096
MAX_PROPERTIES_DEPTH = 4
MAX_PROPERTY_KEY = 128
# Which A/B arm the event belongs to: the variant's label ("A" is the content itself).
_VARIANT = re.compile(rf"[A-Z]{{1,{VARIANT_MAX_LENGTH}}}")
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)

# (type name, text) -> the id, or None when the text is not an id of that type.
IdDecoder = Callable[[str, str], uuid.UUID | None]


class BodyRefused(Exception):
    """The body as a whole cannot be read (not one of the two formats, too many events)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Refusal:
    index: int
    id: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "reason": self.reason}


class CheckedEvent(NamedTuple):
    """An event that passed every check that needs no database (a tuple: batches hold
    thousands, and a tuple is the cheapest record to build). Its fields are the staging
    table's columns in order (app/services/analytics/ingest.py), so an event whose
    content needs no change is COPYed as it is."""

    event_id: str
    # Ids as canonical UUID text: hashed and compared in C (uuid.UUID hashes in Python),
    # and asyncpg encodes the text straight into uuid columns.
    content_id: str | None
    target_id: str | None
    platform: str | None  # the target's, filled in by ingest; None here
    event_type: str
    occurred_at: datetime
    value: Decimal | None
    properties: str | None  # JSON text, for the jsonb column
    variant: str  # the A/B arm's label, NO_VARIANT when the event names none
    position: int  # in the batch


# NamedTuple's own __new__ is a Python function: building through tuple.__new__ skips it.
_new_event = tuple.__new__


class _Bad(Exception):
    pass


class _ParseError:
    """An NDJSON line that is not JSON: refused as that event."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def uuid_of(type_name: str, text: str) -> uuid.UUID | None:
    """The default decoder: plain UUIDs only."""
    if _UUID.fullmatch(text) is None:
        return None
    return uuid.UUID(text)


def parse_body(body: bytes, media_type: str, max_events: int) -> list[Any]:
    """The items of a batch: a JSON array's elements or NDJSON's lines (an unreadable line
    is kept as a parse error, so it is refused as that one event)."""
    if media_type == JSON_TYPE:
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BodyRefused(f"The body is not valid JSON: {exc}.") from None
        if not isinstance(items, list):
            raise BodyRefused(
                "A JSON body must be an array of events; send one JSON object per line "
                f"with Content-Type: {NDJSON_TYPE} instead."
            )
    elif media_type == NDJSON_TYPE:
        # Blank lines (and the final newline) separate nothing.
        lines = [line for line in body.split(b"\n") if line.strip()]
        if len(lines) > max_events:
            raise BodyRefused(f"A batch holds at most {max_events} events.", status=413)
        items = []
        for line in lines:
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                items.append(_ParseError(f"not valid JSON: {exc}"))
    else:
        raise BodyRefused(f"Content-Type must be {JSON_TYPE} or {NDJSON_TYPE}.", status=415)
    if len(items) > max_events:
        raise BodyRefused(f"A batch holds at most {max_events} events.", status=413)
    if not items:
        raise BodyRefused("The batch holds no events.")
    return items


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{name} must be a string")
    if not value:
        raise _Bad(f"{name} must not be empty")
    if len(value) > limit:
        raise _Bad(f"{name} must be at most {limit} characters")
    # NUL, control characters and lone surrogates are all unprintable.
    if not value.isprintable():
        raise _Bad(f"{name} must not hold control characters, NUL or lone surrogates")
    return value


def _id(
    value: Any, name: str, type_name: str, decode: IdDecoder, seen: dict[str, str]
) -> str | None:
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        known = seen.get(value)  # a batch names the same few items again and again
        if known is not None:
            return known
    decoded = decode(type_name, _text(value, name, MAX_ID_TEXT))
    if decoded is None:
        raise _Bad(f"{name} is not a {type_name} id")
    seen[value] = canonical = str(decoded)
    return canonical


def _time(value: Any, latest: datetime) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        text = _text(value, "occurredAt", MAX_TIME_TEXT)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _Bad("occurredAt must be an ISO 8601 date-time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _Bad("occurredAt must include a timezone (Z or +hh:mm)")
    if moment > latest:
        raise _Bad("occurredAt is in the future")
    if moment < EARLIEST:
        raise _Bad("occurredAt is before 2000-01-01")
    return moment


def _value(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad("value must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad("value must be finite")
    # repr: the shortest text that reads back as the same float (what the client sent).
    number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if abs(number) >= MAX_VALUE:
        raise _Bad("value is out of range (|value| < 1e14)")
    return number


def _variant(value: Any) -> str:
    if value is None:
        return NO_VARIANT
    if not isinstance(value, str) or _VARIANT.fullmatch(value) is None:
        raise _Bad('variant must be a variant\'s label: 1-3 capital letters ("A" is the control)')
    return value


def _walk(node: Any, depth: int) -> None:
    if depth > MAX_PROPERTIES_DEPTH:
        raise _Bad(f"properties nest deeper than {MAX_PROPERTIES_DEPTH} levels")
    if isinstance(node, dict):
        for key, item in node.items():
            if len(key) > MAX_PROPERTY_KEY:
                raise _Bad(f"a properties key is longer than {MAX_PROPERTY_KEY} characters")
            if "\x00" in key:
                raise _Bad("properties must not hold NUL characters")
            _walk(item, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _walk(item, depth + 1)
    elif isinstance(node, str) and "\x00" in node:
        raise _Bad("properties must not hold NUL characters")


def _properties(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad("properties must be a JSON object")
    if not value:
        return None
    try:
        text = orjson.dumps(value)  # refuses lone surrogates and non-JSON values
    except TypeError:
        raise _Bad("properties must be JSON with valid Unicode text") from None
    if len(text) > MAX_PROPERTIES_BYTES:
        raise _Bad(f"properties must be at most {MAX_PROPERTIES_BYTES} bytes as JSON")
    _walk(value, 1)
    return text.decode()


def check_event(
    index: int,
    item: Any,
    latest: datetime,
    decode: IdDecoder,
    seen: dict[str, str],
) -> CheckedEvent | Refusal:
    """One event: `latest` is the latest acceptable time, `seen` caches decoded ids.

    Every check runs in this order, the first failing one is the reason; the common case
    (a known id, plain text, an ISO time) is tested inline, and anything else goes through
    the helpers that name what is wrong: ~2x quicker per event than the helpers alone
    (bench/README.md)."""
    if type(item) is not dict:
        if isinstance(item, _ParseError):
            return Refusal(index, None, item.reason)
        if not isinstance(item, dict):
            return Refusal(index, None, "an event must be a JSON object")
    raw_id = item.get("id")
    try:
        if not item.keys() <= FIELDS:  # compares without building a set
            raise _Bad(f"unknown field {sorted(item.keys() - FIELDS)[0]!r}")
        event_type = item.get("type")
        if event_type not in TYPES:
            raise _Bad(f"type must be one of {', '.join(sorted(TYPES))}")
        content = item.get("contentId")
        content_id = (
            None
            if content is None
            else (type(content) is str and seen.get(content))
            or _id(content, "contentId", "Content", decode, seen)
        )
        target = item.get("targetId")
        target_id = (
            None
            if target is None
            else (type(target) is str and seen.get(target))
            or _id(target, "targetId", "PostTarget", decode, seen)
        )
        if content_id is None and target_id is None:
            raise _Bad("contentId or targetId is required")
        if not (
            type(raw_id) is str and 0 < len(raw_id) <= EVENT_ID_MAX_LENGTH and raw_id.isprintable()
        ):
            raw_id = _text(raw_id, "id", EVENT_ID_MAX_LENGTH)
        when = item.get("occurredAt")
        moment = _iso_time(when) if type(when) is str else None
        if moment is None or moment.tzinfo is None or not EARLIEST <= moment <= latest:
            moment = _time(when, latest)  # refuses with the reason, or takes a datetime
        value = item.get("value")
        properties = item.get("properties")
        variant = item.get("variant")
        return _new_event(
            CheckedEvent,
            (
                raw_id,
                content_id,
                target_id,
                None,
                event_type,
                moment,
                None if value is None else _value(value),
                None if properties is None else _properties(properties),
                NO_VARIANT if variant is None else _variant(variant),
                index,
            ),
        )
    except _Bad as exc:
        shown = raw_id if isinstance(raw_id, str) and len(raw_id) <= EVENT_ID_MAX_LENGTH else None
        return Refusal(index, shown, str(exc))
    except RecursionError:
        shown = raw_id if isinstance(raw_id, str) and len(raw_id) <= EVENT_ID_MAX_LENGTH else None
        return Refusal(index, shown, "the event nests too deeply")


def _iso_time(text: str) -> datetime | None:
    """`text` as a date-time when it is plain ISO 8601 text (else None: `_time` says why)."""
    if not (0 < len(text) <= MAX_TIME_TEXT and text.isprintable()):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def check_events(
    items: Iterable[Any],
    *,
    max_future: timedelta,
    decode: IdDecoder = uuid_of,
    now: datetime | None = None,
) -> tuple[list[CheckedEvent], list[Refusal]]:
    latest = (now or datetime.now(UTC)) + max_future
    seen: dict[str, str] = {}
    good: list[CheckedEvent] = []
    bad: list[Refusal] = []
    for index, item in enumerate(items):
        checked = check_event(index, item, latest, decode, seen)
        if type(checked) is CheckedEvent:
            good.append(checked)
        else:
            bad.append(checked)  # type: ignore[arg-type]
    return good, bad
