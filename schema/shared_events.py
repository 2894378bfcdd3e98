"""One subscription event, one selection, executed once: the result is shared by every
subscriber whose stream yields an equal event for the same operation and variables.

Sharing is sound only where the result is a pure function of the event, the document and
the variables. So an event type takes part by defining `shared_key()` (a cheap hashable
digest of its identity; equality of the whole event is checked on every hit), and only
when every field reachable from it is a plain attribute or a resolver audited below as
independent of the caller (`AUDITED`). A result with errors is never shared: each
subscriber then runs the selection itself, as without sharing.

A result lives for the fan-out of its event only: `SHARE_SECONDS` after it was computed,
and at most `MAX_ENTRIES` of them.

Longer than 400 lines because the audit of event types, the cache (with its waiters woken
in slices) and the executor that consults it are one mechanism: each piece's soundness
depends on the others' rules, which read best side by side.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeGuard, cast, runtime_checkable

from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema
from graphql.execution import Executor
from graphql.language import OperationDefinitionNode
from graphql.pyutils import AwaitableOrValue
from strawberry.types.base import (
    StrawberryList,
    StrawberryObjectDefinition,
    StrawberryOptional,
    get_object_definition,
)
from strawberry.types.private import is_private
from strawberry.types.union import StrawberryUnion
from strawberry.utils.str_converters import to_camel_case

from app.infra.realtime import WakeSlicer

SHARE_SECONDS = 1.0
MAX_ENTRIES = 256

# Resolvers (type, GraphQL field) whose value is the same for every caller allowed to see
# the event they hang from. Review this list when a field is added to a shared type: the
# test `test_audited_fields_are_exactly_those_reachable` fails until you do.
AUDITED: dict[tuple[str, str], str] = {
    ("Job", "id"): "the row id as a global id",
    ("JobEvent", "job"): "the job row by id, no visibility check: the subscriber's own "
    "stream checked it may read this job before yielding the event",
    # postStatusChanged, performanceUpdated, socialAccountStatusChanged, generationProgress:
    # each stream checked its caller may read the one workspace all of this belongs to
    # (CONTENT_READ or WORKSPACE_READ: both VIEWER, same two-factor rule) and its principal
    # stays the same. Below: rows by id through loaders not scoped by caller, or pure.
    ("PostStatusChange", "post"): "the target's post: visible_rows shows it to every reader",
    ("PostTarget", "id"): "the row id as a global id",
    ("PostTarget", "account"): "the target's account by id",
    ("SocialAccount", "id"): "the row id as a global id",
    ("SocialAccount", "postingSlots"): "the account's slots by account id",
    ("ScheduledPost", "id"): "the row id as a global id",
    ("ScheduledPost", "recurrence"): "the post's series by id",
    ("ScheduledPost", "nextOccurrenceAt"): "the series' next post by id, or rows and clock",
    ("ScheduledPost", "status"): "a summary of the post's targets (by post id)",
    ("ScheduledPost", "publishedAt"): "a summary of the post's targets (by post id)",
    ("ScheduledPost", "platformPostId"): "a summary of the post's targets (by post id)",
    ("ScheduledPost", "platformUrl"): "a summary of the post's targets (by post id)",
    ("ScheduledPost", "error"): "a summary of the post's targets (by post id)",
    ("ScheduledPost", "targets"): "the post's targets by post id",
    ("ScheduledPost", "content"): "the post's item: resolve_nodes shows it to every reader",
    ("PerformanceUpdate", "target"): "the snapshot's target: shown to every reader",
    ("PerformanceUpdate", "content"): "the snapshot's item: shown to every reader",
    ("GenerationProgress", "content"): "the job's saved item: shown to every reader",
    ("Content", "id"): "the row id as a global id",
    ("Content", "textMetrics"): "pure: from the row",
    ("Content", "warnings"): "pure: from the row",
    ("Content", "media"): "the item's media by item id",
    ("Content", "versions"): "the item's versions by item id",
    ("Content", "comments"): "the item's review thread by item id",
    ("Content", "personalizations"): "by item id",
    ("Content", "variants"): "by item id",
    ("Content", "predictedEngagement"): "the workspace's model on the row's text and media",
    ("Content", "similar"): "nearest items of the item's own workspace (SQL, by item id)",
    ("SimilarContent", "content"): "an item of the same workspace by id",
    ("Campaign", "id"): "the row id as a global id",
    ("Campaign", "contents"): "by campaign id; its CONTENT_READ check passes for every reader",
    ("ContentVariation", "id"): "the row id as a global id",
    ("ContentVariation", "textMetrics"): "pure: from the row",
    ("ContentVariation", "warnings"): "pure: from the row",
    ("ContentVariation", "predictedEngagement"): "the workspace's model on the row",
    ("ContentVariation", "media"): "the variation's media by id",
    ("ContentVersion", "author"): "a user by id",
    ("ContentVersion", "predictedEngagement"): "the workspace's model on the version's text",
    ("ContentComment", "author"): "a user by id",
    ("User", "id"): "the row id as a global id",
    ("ContentVariant", "id"): "the row id as a global id",
    ("ContentVariant", "predictedEngagement"): "the workspace's model on the variant's text",
    ("VariantPlatformText", "predictedEngagement"): "the workspace's model on the text",
    ("ContentPersonalization", "id"): "the row id as a global id",
    ("ContentPersonalization", "predictedEngagement"): "the workspace's model on its text",
    ("ContentPersonalization", "segment"): "the segment by id",
    ("AudienceSegment", "id"): "the row id as a global id",
    ("MediaAsset", "id"): "the row id as a global id",
    ("MediaAsset", "url"): "a signed URL of the storage key (key and clock, not caller)",
    ("MediaAsset", "thumbnailUrl"): "a signed URL of the storage key (key and clock)",
}


@runtime_checkable
class SharedEvent(Protocol):
    """An event type whose results may be shared (see the module docstring)."""

    def shared_key(self) -> Hashable: ...


class SharedData(dict[str, Any]):
    """A shared result's `data`: the transports encode it once per encoder and reuse the
    text for every subscriber (see app.http.websockets)."""

    __slots__ = ("_texts",)

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self._texts: dict[object, str] = {}

    def payload_text(self, owner: object, encode: Callable[[object], str | bytes]) -> str | None:
        """`encode({"data": self})`, once per `owner` (the encoder's view)."""
        text = self._texts.get(owner)
        if text is None:
            encoded = encode({"data": self})
            if not isinstance(encoded, str):
                return None
            text = self._texts[owner] = encoded
        return text


@dataclass
class Stats:
    """Counters for tests and benches: selections executed, and results reused."""

    executed: int = 0
    shared: int = 0


@dataclass
class _Entry:
    event: object
    operation: OperationDefinitionNode
    expires: float
    result: ExecutionResult | None = None
    task: asyncio.Future[None] | None = None
    # While the selection runs: each subscriber's future (the first one: the owner, who
    # asked for the run), resolved in slices once it finished (see `_share`).
    waiters: list[tuple[asyncio.Future[Any], bool]] = field(default_factory=list)


def _named_types(type_: Any) -> list[Any]:
    """The named types behind a field type (lists and optionals unwrapped)."""
    while isinstance(type_, StrawberryOptional | StrawberryList):
        type_ = type_.of_type
    if isinstance(type_, StrawberryUnion):
        return [t for member in type_.types for t in _named_types(member)]
    return [type_]


def reachable_resolvers(definition: StrawberryObjectDefinition) -> set[tuple[str, str]] | None:
    """Every (type, field) with a resolver reachable from `definition`; None when some
    field cannot be audited at all (an interface, permission classes, field extensions)."""
    found: set[tuple[str, str]] = set()
    seen: set[str] = set()
    pending = [definition]
    while pending:
        current = pending.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        if current.is_interface:
            return None
        for f in current.fields:
            if is_private(f.type):
                continue
            if f.permission_classes or f.extensions:
                return None
            if f.base_resolver is not None:
                found.add((current.name, f.graphql_name or to_camel_case(f.python_name)))
            for named in _named_types(f.type):
                nested = get_object_definition(named)
                if nested is not None:  # enums and scalars are leaves
                    pending.append(nested)
    return found


_SHAREABLE: dict[type, bool] = {}


def shareable_type(cls: type) -> bool:
    """Whether results of events of `cls` may be shared (audited once per type)."""
    known = _SHAREABLE.get(cls)
    if known is None:
        definition = get_object_definition(cls)
        resolvers = reachable_resolvers(definition) if definition is not None else None
        known = _SHAREABLE[cls] = (
            issubclass(cls, SharedEvent) and resolvers is not None and resolvers <= AUDITED.keys()
        )
    return known


def _shareable(event: object) -> TypeGuard[SharedEvent]:
    return shareable_type(type(event))


def _usable(result: object) -> TypeGuard[ExecutionResult]:
    return (
        isinstance(result, ExecutionResult)
        and not result.errors
        and isinstance(result.data, dict)
        and not result.extensions
    )


class SharedResults:
    """Recent results by (event, operation, variables): bounded in count and lifetime."""

    def __init__(self, max_entries: int = MAX_ENTRIES, seconds: float = SHARE_SECONDS) -> None:
        self.max_entries = max_entries
        self.seconds = seconds
        self.enabled = True
        self.stats = Stats()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def ready(
        self, key: Hashable, event: object, operation: OperationDefinitionNode
    ) -> ExecutionResult | None:
        """A copy of the finished result for this key, or None (then `execute`)."""
        entry = self._entries.get(key)
        if (
            entry is None
            or entry.result is None
            or entry.operation is not operation
            or entry.expires < time.monotonic()
            or (entry.event is not event and entry.event != event)
        ):
            return None
        self.stats.shared += 1
        return _copy(entry.result)

    def execute(
        self,
        key: Hashable,
        event: object,
        operation: OperationDefinitionNode,
        run: Callable[[], AwaitableOrValue[Any]],
    ) -> AwaitableOrValue[Any]:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and (
            entry.expires < now or entry.operation is not operation or entry.event != event
        ):
            entry = None
        if entry is not None:
            if entry.result is not None:
                self.stats.shared += 1
                return _copy(entry.result)
            if entry.task is not None:
                return self._wait(self._join(entry, owner=False), run)
        self.stats.executed += 1
        result = run()
        if isinstance(result, Awaitable):
            entry = _Entry(event, operation, now + self.seconds)
            owner = self._join(entry, owner=True)
            entry.task = asyncio.ensure_future(self._share(key, entry, result))
            self._store(key, entry)
            return self._own(owner)
        if _usable(result):
            shared = _shared(result)
            self._store(key, _Entry(event, operation, now + self.seconds, result=shared))
            return _copy(shared)
        return result

    def _store(self, key: Hashable, entry: _Entry) -> None:
        entries = self._entries
        entries.pop(key, None)
        entries[key] = entry
        # Oldest first: drop what expired, then what exceeds the bound.
        now = time.monotonic()
        while entries:
            first = next(iter(entries.values()))
            if first.expires >= now and len(entries) <= self.max_entries:
                break
            entries.popitem(last=False)

    @staticmethod
    def _join(entry: _Entry, *, owner: bool) -> asyncio.Future[Any]:
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry.waiters.append((waiter, owner))
        return waiter

    async def _share(self, key: Hashable, entry: _Entry, pending: Awaitable[Any]) -> None:
        """Run the selection, then hand its result to every waiting subscriber in slices
        (a thousand subscribers woken in one loop iteration would stall it): the owner
        gets the result (or its exception) as is; the others a copy of a usable one, or
        None to run the selection themselves."""
        result: Any = None
        failure: Exception | None = None
        try:
            try:
                result = await pending
            except Exception as exc:  # the owner's failure is reported to the owner
                failure = exc
            finally:
                if self._entries.get(key) is entry:
                    del self._entries[key]  # kept below only when the result can be shared
            if failure is None and _usable(result):
                # Whoever comes from now on takes it at once, ahead of the slices below.
                entry.result = _shared(result)
                if entry.expires >= time.monotonic():
                    self._store(key, entry)
                result = entry.result
            entry.task = None
            slicer = WakeSlicer()
            index = 0
            while index < len(entry.waiters):
                waiter, owner = entry.waiters[index]
                index += 1
                if waiter.done():
                    continue  # that subscriber left
                if owner and failure is not None:
                    waiter.set_exception(failure)
                else:
                    waiter.set_result(result if owner or failure is None else None)
                await slicer.woke()
        finally:
            for waiter, owner in entry.waiters:
                if not waiter.done():  # cancelled: the owner too, the others run it
                    if owner:
                        waiter.cancel()
                    else:
                        waiter.set_result(None)
            entry.waiters = []

    async def _own(self, waiter: asyncio.Future[Any]) -> Any:
        # The owner leaving cancels only its own future, not the others' result.
        result = await waiter
        return _copy(result) if isinstance(result.data, SharedData) else result

    async def _wait(
        self, waiter: asyncio.Future[Any], run: Callable[[], AwaitableOrValue[Any]]
    ) -> Any:
        result = await waiter
        if result is not None and isinstance(result.data, SharedData):
            self.stats.shared += 1
            return _copy(result)
        self.stats.executed += 1
        return await _awaited(run())


async def _awaited(value: AwaitableOrValue[Any]) -> Any:
    return await value if isinstance(value, Awaitable) else value


def _shared(result: ExecutionResult) -> ExecutionResult:
    return ExecutionResult(SharedData(cast(dict[str, Any], result.data)), None)


def _copy(result: ExecutionResult) -> ExecutionResult:
    # Each subscriber gets its own result object (extensions may set attributes on it);
    # `data` is shared and never mutated downstream.
    return ExecutionResult(result.data, None)


RESULTS = SharedResults()


def variables_key(raw: dict[str, Any] | None) -> str | None:
    """The client's variables as canonical JSON (None: not JSON, do not share)."""
    try:
        return json.dumps(raw or {}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


class SharingExecutor(Executor[Any]):
    """Runs each subscription event's selection through `RESULTS`. Mixed in front of the
    schema's executor class by `sharing_executor` (never used on its own)."""

    shared_variables: str | None = None

    @classmethod
    def build(
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[GraphQLError] | Executor[Any]:
        executor = super().build(
            schema, document, root_value, context_value, raw_variable_values, *args, **kwargs
        )
        if isinstance(executor, SharingExecutor):
            executor.shared_variables = variables_key(raw_variable_values)
        return executor

    def _shared_key(self, event: object) -> Hashable | None:
        variables = self.shared_variables
        if variables is None or not RESULTS.enabled or not _shareable(event):
            return None
        # The operation node stands for the document (the parser cache hands every
        # subscriber of one text the same node); the entry holds it, so its id stays unique.
        # The schema (one per app) lives as long as the process.
        return (type(event), event.shared_key(), id(self.operation), variables, id(self.schema))

    def build_per_event_executor(self, payload: Any) -> Executor[Any]:
        # A result already shared needs no per-event copy of this executor.
        key = self._shared_key(payload)
        if key is not None:
            ready = RESULTS.ready(key, payload, self.operation)
            if ready is not None:
                return cast(Executor[Any], _Answered(ready))
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> AwaitableOrValue[Any]:
        event = self.root_value
        key = self._shared_key(event)
        if key is None:
            return super().execute_operation(serially)
        return RESULTS.execute(
            key, event, self.operation, partial(super().execute_operation, serially)
        )


class _Answered:
    """Stands for a per-event executor whose event's result was shared already: graphql-
    core only asks it to `execute_operation` (graphql.execution.execute_subscription_event)."""

    __slots__ = ("result",)

    def __init__(self, result: ExecutionResult) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> ExecutionResult:
        return self.result


_EXECUTORS: dict[type, type[Executor[Any]]] = {}


def sharing_executor(base: type[Executor[Any]]) -> type[Executor[Any]]:
    """`base` with each subscription event's result shared (see SharingExecutor)."""
    if issubclass(base, SharingExecutor):
        return base
    executor = _EXECUTORS.get(base)
    if executor is None:
        name = f"Sharing{base.__name__}"
        executor = _EXECUTORS[base] = type(name, (SharingExecutor, base), {})
    return executor
