"""Strawberry's extension hooks, with the same behaviour at a lower fixed cost per operation.

Per operation and lifecycle stage (operation, parse, validate, execute), Strawberry looks
up every extension's hook again, wraps each one it finds in a new `contextlib` context
manager (`functools.wraps` included) and enters them through an exit stack: with our seven
extensions, 24 lookups per request (1-5 % of an authenticated `{ __typename }`'s CPU,
bench/README). Here the hooks are classified once per list of extension classes. A stage
whose hooks are all generator functions (ours, and Strawberry's ParserCache and
AddValidationRules) drives the generators itself, with `contextmanager`'s rules; a stage
with any other kind of hook takes Strawberry's own path.

For every result a subscription yields, Strawberry also awaits every extension's
`get_results` and enters every `on_stream_result` hook. Ours need neither for a result
without errors: none reports results, and our stream hooks only rewrite a result's errors
(each says so with `stream_hook_touches_errors_only = True`). An extension with any other
stream hook or with results, or a result with errors, takes Strawberry's path.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    StreamResultContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

ERRORS_ONLY = "stream_hook_touches_errors_only"

Hook = Callable[[SchemaExtension], Generator[None, None, None]]
STAGES = ("on_operation", "on_validate", "on_parse", "on_execute")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one list of extension classes needs, worked out once: per stage, the generator
    hooks with their extension's index (None: a hook of another kind, Strawberry's path)."""

    stages: dict[str, tuple[tuple[int, Hook], ...] | None]
    skips_clean_results: bool
    reports: bool


def _errors_only(cls: type[SchemaExtension]) -> bool:
    return cls.on_stream_result is SchemaExtension.on_stream_result or bool(
        getattr(cls, ERRORS_ONLY, False)
    )


def _stage_hooks(
    classes: tuple[type[SchemaExtension], ...], name: str
) -> tuple[tuple[int, Hook], ...] | None:
    hooks: list[tuple[int, Hook]] = []
    for index, cls in enumerate(classes):
        fn = getattr(cls, name)
        if fn is getattr(SchemaExtension, name):
            continue  # the class keeps SchemaExtension's no-op
        if not inspect.isgeneratorfunction(fn):
            return None  # a coroutine, async generator or plain callable
        hooks.append((index, cast(Hook, fn)))
    return tuple(hooks)


# The schema has one list of extension classes; the bound only matters to code (tests)
# that makes classes on the fly.
_PLANS: dict[tuple[type[SchemaExtension], ...], _Plan] = {}
MAX_PLANS = 64


def _plan(classes: tuple[type[SchemaExtension], ...]) -> _Plan:
    plan = _PLANS.get(classes)
    if plan is None:
        if len(_PLANS) >= MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[classes] = _Plan(
            stages={name: _stage_hooks(classes, name) for name in STAGES},
            skips_clean_results=all(_errors_only(cls) for cls in classes),
            reports=any(cls.get_results is not SchemaExtension.get_results for cls in classes),
        )
    return plan


def _leave(
    generator: Generator[None, None, None], error: BaseException | None
) -> BaseException | None:
    """Leave one generator hook as `contextmanager.__exit__` would; the exception that goes
    on to the next hook out (None: none, or this hook suppressed it)."""
    if error is None:
        try:
            next(generator)
        except StopIteration:
            return None
        except BaseException as raised:
            return raised
        return RuntimeError("generator didn't stop")
    try:
        generator.throw(error)
    except StopIteration as stop:
        return error if stop is error else None
    except RuntimeError as raised:
        # PEP 479: a StopIteration thrown in comes back wrapped; it is the same error.
        if raised.__cause__ is error and isinstance(error, StopIteration):
            return error
        return raised
    except BaseException as raised:
        return raised
    return RuntimeError("generator didn't stop after throw()")


class _GeneratorHooks(ExtensionContextManagerBase):
    """One stage's generator hooks for one operation, entered in order, left in reverse."""

    __slots__ = ("_calls", "_entered")

    def __init__(self, calls: list[tuple[Hook, SchemaExtension]]) -> None:
        self._calls = calls
        self._entered: list[Generator[None, None, None]] = []

    def __enter__(self) -> None:
        entered = self._entered
        for fn, extension in self._calls:
            generator = fn(extension)
            try:
                next(generator)
            except BaseException as exc:
                # Unlike an exit stack left half-entered, the hooks entered so far see it.
                error: BaseException = (
                    RuntimeError("generator didn't yield")
                    if isinstance(exc, StopIteration)
                    else exc
                )
                for outer in reversed(entered):
                    _leave(outer, error)
                entered.clear()
                if error is exc:
                    raise
                raise error from None
            entered.append(generator)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        error = exc_val
        for generator in reversed(self._entered):
            error = _leave(generator, error)
        self._entered.clear()
        # As Strawberry's stages: a hook that suppresses the exception hides it from the
        # hooks further out, but the stage never swallows it (it returns no flag).
        if error is not None and error is not exc_val:
            raise error

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc_val, exc_tb)


# Enters and leaves nothing; with no hooks there is no state, so one serves every stage.
_NO_HOOKS = _GeneratorHooks([])


class LeanExtensionsRunner(SchemaExtensionsRunner):
    """Strawberry's runner: the same hooks in the same order, classified once per list of
    extension classes."""

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> None:
        super().__init__(execution_context, extensions)
        self._plan = _plan(tuple(map(type, self.extensions)))

    def _stage(
        self, name: str, strawberry_stage: type[ExtensionContextManagerBase]
    ) -> ExtensionContextManagerBase:
        hooks = self._plan.stages[name]
        if hooks is None:
            return strawberry_stage(self.extensions)
        if not hooks:
            return _NO_HOOKS
        extensions = self.extensions
        return _GeneratorHooks([(fn, extensions[index]) for index, fn in hooks])

    def operation(self) -> OperationContextManager:
        return cast(OperationContextManager, self._stage("on_operation", OperationContextManager))

    def validation(self) -> ValidationContextManager:
        return cast(ValidationContextManager, self._stage("on_validate", ValidationContextManager))

    def parsing(self) -> ParsingContextManager:
        return cast(ParsingContextManager, self._stage("on_parse", ParsingContextManager))

    def executing(self) -> ExecutingContextManager:
        return cast(ExecutingContextManager, self._stage("on_execute", ExecutingContextManager))

    def on_stream_result(self, result: Any) -> StreamResultContextManager:
        if self._plan.skips_clean_results and not getattr(result, "errors", None):
            return cast(StreamResultContextManager, _NO_HOOKS)
        return super().on_stream_result(result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        if self._plan.reports:
            return await super().get_extensions_results(ctx)
        return dict(ctx.extensions_results)
