"""Request checks that need the parsed operation, run just before execution (over HTTP and
websockets alike). Each refuses the request with a GraphQL error and nothing executes."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    GraphQLError,
    ListTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    TypeNode,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.utilities import get_operation_ast
from starlette.datastructures import UploadFile
from strawberry.extensions import SchemaExtension

from app.errors import AppError, BadUserInput

UPLOAD_TYPE = "Upload"
_UNKNOWN = object()


def _is_upload(node: TypeNode) -> bool:
    while isinstance(node, NonNullTypeNode | ListTypeNode):
        node = node.type
    return getattr(getattr(node, "name", None), "value", None) == UPLOAD_TYPE


def _only_files(value: object) -> bool:
    if value is None or isinstance(value, UploadFile):
        return True
    return isinstance(value, list) and all(_only_files(v) for v in value)


def _operation_count(document: DocumentNode) -> int:
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


class RequestChecks(SchemaExtension):
    """- A document with several operations needs `operationName` (Strawberry would run the
      first one; the GraphQL spec says GetOperation() fails).
    - An `Upload` variable must hold a file part of a multipart request: a JSON value in its
      place (a string, an object) is BAD_USER_INPUT before any resolver sees it."""

    def _problem(self) -> GraphQLError | None:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is None:
            return None
        # Strawberry keeps the name the client sent only privately; if that changes, the
        # ambiguity check is skipped rather than refusing every multi-operation document.
        provided = getattr(ctx, "_provided_operation_name", _UNKNOWN)
        if provided is None and _operation_count(document) > 1:
            message = "The document has several operations: name the one to run with operationName."
            return GraphQLError(message, original_error=AppError(message))
        operation = get_operation_ast(document, ctx.operation_name)
        variables = ctx.variables or {}
        for definition in (operation.variable_definitions or ()) if operation else ():
            name = definition.variable.name.value
            if _is_upload(definition.type) and not _only_files(variables.get(name)):
                message = (
                    f'Variable "${name}" must be a file sent as a part of a multipart request '
                    f'(see "map"), not a JSON value.'
                )
                return GraphQLError(message, [definition], original_error=BadUserInput(message))
        return None

    def on_execute(self) -> Iterator[None]:
        problem = self._problem()
        if problem is not None:
            # Strawberry skips execution when an extension has already set the result.
            self.execution_context.result = GraphQLExecutionResult(data=None, errors=[problem])
        yield
