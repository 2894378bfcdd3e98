"""The one `Schema`: root types, limits and extensions wired from settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, parse
from graphql.execution import Executor
from graphql.execution.middleware import MiddlewareManager
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.file_uploads import Upload
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StreamResult
from strawberry.types.execution import ExecutionContext, ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.scalar import scalar

from app.settings import Settings
from resolvers.mutation import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription
from schema.execution.executor import PlannedExecutor
from schema.extension_hooks import LeanExtensionsRunner
from schema.extensions import (
    DocumentCache,
    OperationEdge,
    Validation,
    format_errors,
    timeout_error,
)
from schema.limits import LONG_DOCUMENT_CHARS, Limits, SafeParserCache
from schema.shared_events import sharing_executor

# Bounded caches: distinct query texts come from clients and must not grow memory forever.
CACHE_SIZE = 512


def parse_document(query: str, options: dict[str, Any]) -> DocumentNode:
    return parse(query, **options)


def _no_literal(_node: Any, _variables: Any = None) -> Any:
    # A GraphQLError, so graphql-core reports it as the client's mistake (not masked).
    raise GraphQLError("A file can only come as a multipart part, passed in a variable.")


# Upload as strawberry defines it, but a literal in the document (`file: "x"`) is a
# validation error instead of a string reaching the resolver as if it were a file.
STRICT_UPLOAD = scalar(
    name="Upload",
    description="Represents a file upload.",
    serialize=lambda v: v,
    parse_value=lambda v: v,
    parse_literal=_no_literal,
)


class SmartContentSchema(strawberry.Schema):
    """Adds a per-operation execution timeout to queries and mutations over HTTP, and
    parses long documents off the event loop."""

    execution_timeout: float = 15.0
    max_errors: int = 20

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Client mistakes are not server errors: OperationEdge logs the masked (internal) ones."""

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # Subscriptions need a websocket; over plain HTTP they are refused with a 400.
        allowed = kwargs.get("allowed_operation_types")
        if allowed is not None:
            kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        try:
            async with asyncio.timeout(self.execution_timeout):
                return await super().execute(*args, **kwargs)
        except TimeoutError:
            errors = format_errors([timeout_error(self.execution_timeout)], self.max_errors)
            return ExecutionResult(data=None, errors=errors)

    def _stream(
        self,
        execution_context: ExecutionContext,
        extensions_runner: SchemaExtensionsRunner,
        middleware_manager: MiddlewareManager,
        execution_context_class: type[Executor[Any]] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> StreamResult:
        # Both websocket protocols come here (`subscribe` is a wrapper of `stream`); the
        # executor class is used for subscriptions only: each event's selection runs once
        # for all its subscribers (schema.shared_events).
        base = execution_context_class or self.execution_context_class
        return super()._stream(
            execution_context,
            extensions_runner,
            middleware_manager,
            sharing_executor(base),
            operation_extensions,
        )

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        # The same hooks at a lower fixed cost; per streamed result, only where they may
        # change it (schema.extension_hooks).
        return LeanExtensionsRunner(execution_context, extensions)

    async def _prepare_operation_async(
        self, context: ExecutionContext, extensions_runner: SchemaExtensionsRunner
    ) -> PreExecutionError | None:
        # Strawberry's parse step (HTTP and websocket operations alike) runs on the event
        # loop; a long text is parsed here first, in a thread and uncached, and the parse
        # step then finds the document (SafeParserCache keeps a document it is given). The
        # extensions have entered their operation hooks: the token limit is in the parse
        # options already.
        query = context.query
        if context.graphql_document is None and query and len(query) > LONG_DOCUMENT_CHARS:
            options = dict(context.parse_options)
            try:
                context.graphql_document = await asyncio.to_thread(parse_document, query, options)
            except GraphQLError as error:
                context.pre_execution_errors = [error]
                return PreExecutionError(data=None, errors=[error])
        return await super()._prepare_operation_async(context, extensions_runner)


def build_schema(settings: Settings | None = None) -> SmartContentSchema:
    settings = settings or Settings()
    limits = Limits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_selections=settings.max_selections,
    )
    # Factories, not instances: each operation gets fresh extension objects (they hold
    # per-operation state such as the execution context).
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        # DataLoaders' scope, the token limit, error codes and masking, metrics.
        partial(OperationEdge, max_errors=settings.max_errors, max_tokens=settings.max_tokens),
        # Their LRU caches live at module level, shared by every operation.
        partial(SafeParserCache, maxsize=CACHE_SIZE),
        # The limits first (linear in the document), then string inputs, then graphql-core's
        # rules (cached): see schema.extensions.Validation.
        partial(Validation, limits=limits, cache=DocumentCache(CACHE_SIZE)),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    schema = SmartContentSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        # Queries and mutations run on a plan cached per document (schema.execution).
        execution_context_class=PlannedExecutor,
        config=StrawberryConfig(auto_camel_case=True, scalar_map={Upload: STRICT_UPLOAD}),
    )
    schema.execution_timeout = settings.execution_timeout_seconds
    schema.max_errors = settings.max_errors
    return schema


def schema_sdl() -> str:
    """The SDL committed as `schema.graphql` (independent of runtime settings)."""
    return build_schema(Settings(_env_file=None)).as_str() + "\n"
