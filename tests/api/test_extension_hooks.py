"""schema.extension_hooks: the same hooks, entered and left as Strawberry's own context
managers do (a differential test over toy extensions), without Strawberry's per-operation
hook lookup on the request path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import ExtensionContextManagerBase, OperationContextManager

from schema.extension_hooks import LeanExtensionsRunner, _GeneratorHooks
from tests.helpers import gql, register

Log = list[str]


def _extension(name: str, log: Log, on_exit: str = "pass") -> SchemaExtension:
    """A generator hook that logs what it sees; `on_exit` decides what it does after the
    body: pass, suppress the body's exception, raise a new one, or yield a second time."""

    class Toy(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append(f"{name} enter")
            try:
                yield
            except Exception as exc:
                log.append(f"{name} saw {type(exc).__name__}({exc})")
                if on_exit == "suppress":
                    return
                if on_exit == "replace":
                    raise KeyError(name) from exc
                raise
            finally:
                log.append(f"{name} finally")
            log.append(f"{name} clean exit")
            if on_exit == "replace":
                raise KeyError(name)
            if on_exit == "yield again":
                yield

    Toy.__name__ = Toy.__qualname__ = f"Toy_{name}_{on_exit.replace(' ', '_')}"
    return Toy()


Body = Callable[[], Awaitable[None]]


async def _clean() -> None:
    await asyncio.sleep(0)


async def _fails() -> None:
    raise ValueError("body")


async def _cancelled() -> None:
    raise asyncio.CancelledError


SCENARIOS: list[tuple[str, list[str], Body]] = [
    ("clean", ["pass", "pass", "pass"], _clean),
    ("body fails", ["pass", "pass"], _fails),
    ("inner suppresses", ["pass", "suppress"], _fails),
    ("outer suppresses", ["suppress", "pass"], _fails),
    ("inner replaces", ["pass", "replace", "pass"], _fails),
    ("replaces a clean exit", ["pass", "replace"], _clean),
    ("yields twice", ["pass", "yield again"], _clean),
    ("cancelled", ["pass", "suppress"], _cancelled),
    ("no hooks", [], _fails),
]


async def _run(stage: Any, body: Body) -> str:
    try:
        async with stage:
            await body()
    except BaseException as exc:
        return f"raised {type(exc).__name__}({exc})"
    return "returned"


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("kinds", "body"), [(k, b) for _, k, b in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
async def test_a_stage_behaves_as_strawberrys_own(kinds: list[str], body: Body) -> None:
    outcomes: list[tuple[str, Log]] = []
    for lean in (False, True):
        log: Log = []
        extensions = [_extension(f"e{i}", log, kind) for i, kind in enumerate(kinds)]
        if lean:
            stage: Any = LeanExtensionsRunner(None, extensions).operation()  # type: ignore[arg-type]
        else:
            stage = OperationContextManager(extensions)
        outcomes.append((await _run(stage, body), log))
    assert outcomes[1] == outcomes[0]


@pytest.mark.no_db
async def test_a_hook_that_fails_on_the_way_in_is_seen_by_those_already_in() -> None:
    log: Log = []

    class Refuses(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append("refuses enter")
            raise PermissionError("no")
            yield  # a generator function

    outer = _extension("outer", log)
    stage = LeanExtensionsRunner(None, [outer, Refuses()]).operation()  # type: ignore[arg-type]
    assert await _run(stage, _clean) == "raised PermissionError(no)"
    # Strawberry's exit stack would leave `outer` suspended at its yield.
    assert log == ["outer enter", "refuses enter", "outer saw PermissionError(no)", "outer finally"]


@pytest.mark.no_db
async def test_a_hook_that_never_yields_is_an_error() -> None:
    class Returns(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            return
            yield

    stage = LeanExtensionsRunner(None, [Returns()]).operation()  # type: ignore[arg-type]
    assert await _run(stage, _clean) == "raised RuntimeError(generator didn't yield)"


@pytest.mark.no_db
async def test_a_stage_with_another_kind_of_hook_takes_strawberrys_path() -> None:
    log: Log = []

    class Coroutine(SchemaExtension):
        async def on_operation(self) -> None:  # type: ignore[override]
            log.append("coroutine")

    class AsyncGenerator(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            log.append("async enter")
            yield
            log.append("async exit")

    extensions = [_extension("gen", log), Coroutine(), AsyncGenerator()]
    runner = LeanExtensionsRunner(None, extensions)  # type: ignore[arg-type]
    stage = runner.operation()
    assert type(stage) is OperationContextManager
    assert await _run(stage, _clean) == "returned"
    assert log == [
        "gen enter", "coroutine", "async enter", "async exit", "gen finally", "gen clean exit"
    ]  # fmt: skip
    # The other stages of the same runner, where every hook is a generator, stay lean.
    assert isinstance(runner.parsing(), ExtensionContextManagerBase)


async def test_a_request_looks_no_hook_up(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register(client)
    looked_up: list[str] = []
    stages: list[str] = []
    lookup = ExtensionContextManagerBase.get_hook
    enter = _GeneratorHooks.__enter__

    def counted_lookup(self: ExtensionContextManagerBase, extension: SchemaExtension) -> Any:
        looked_up.append(self.HOOK_NAME)
        return lookup(self, extension)

    def counted_enter(self: _GeneratorHooks) -> None:
        stages.append(",".join(type(e).__name__ for _, e in self._calls))
        enter(self)

    monkeypatch.setattr(ExtensionContextManagerBase, "get_hook", counted_lookup)
    monkeypatch.setattr(_GeneratorHooks, "__enter__", counted_enter)
    body = await gql(client, "{ __typename me { id } }", headers=account.headers)
    assert body["data"]["__typename"] == "Query"
    assert "errors" not in body
    assert looked_up == [], "Strawberry looked the hooks up again"
    # operation, parse, validate, execute: every hook we have runs, in the schema's order.
    assert stages == [
        "OperationEdge,DatabaseUnavailable",
        "SafeParserCache",
        "Validation",
        "RequestChecks",
    ]
