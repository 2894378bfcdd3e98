"""NUL characters and lone surrogates refused at the edge: one pass over the variables and
one over the document's string literals, for every operation (HTTP and websockets)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
)

from app.errors import ErrorCode

# Strings the database and UTF-8 cannot hold: NUL, and UTF-16 surrogates that are not part of
# a pair (JSON `"\\ud800"` decodes to one; a valid pair decodes to one astral code point).
_BAD_CHARACTER = re.compile(r"[\x00\ud800-\udfff]")


# A NUL as JSON writes it: `\\u0000` after an even run of backslashes (an odd one would make
# it the text "\\u0000" after an escaped backslash).
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


_BAD_STRING_HINT = "Text may not contain NUL characters or unpaired surrogates."


def _bad_string(value: str) -> str | None:
    """What is wrong with `value` (never the value itself), or None."""
    found = _BAD_CHARACTER.search(value)
    if found is None:
        return None
    return "a NUL character" if found.group() == "\x00" else "an unpaired surrogate"


def _bad_input(where: str, what: str, **extra: str) -> GraphQLError:
    return GraphQLError(
        f"{where} contains {what}. {_BAD_STRING_HINT}",
        extensions={"code": ErrorCode.BAD_USER_INPUT.value, **extra},
    )


def _json_path(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _holds_bad(value: Any) -> bool:
    """Whether any string (or key) inside `value` is bad, at C speed: JSON writes a NUL as
    the escape `\\u0000` and, with ensure_ascii off, keeps surrogates as they are."""
    if isinstance(value, str):
        return _BAD_CHARACTER.search(value) is not None
    dumped = json.dumps(value, ensure_ascii=False, default=lambda _: None)
    return _JSON_NUL.search(dumped) is not None or _BAD_CHARACTER.search(dumped) is not None


def _first_bad(value: Any, path: tuple[str | int, ...]) -> tuple[str, str, bool] | None:
    """(path, what is wrong, whether in a key) of the first bad string in `value`.

    Bisects each list or object with `_holds_bad`, so a 1 MB value costs a few scans in C
    and a few dozen steps in Python, not one step per element.
    """
    while True:
        if isinstance(value, str):
            what = _bad_string(value)
            return (_json_path(path), what, False) if what else None
        if isinstance(value, dict):
            labels: list[str | int] = list(value)
            if _holds_bad(labels):
                what = next(w for k in labels if isinstance(k, str) and (w := _bad_string(k)))
                return _json_path(path), what, True
            children = list(value.values())
        elif isinstance(value, list):
            labels, children = list(range(len(value))), value
        else:
            return None
        low, high = 0, len(children)
        if high == 0 or not _holds_bad(children):
            return None
        while high - low > 1:
            middle = (low + high) // 2
            if _holds_bad(children[low:middle]):
                high = middle
            else:
                low = middle
        value, path = children[low], (*path, labels[low])


def variable_errors(variables: dict[str, Any] | None) -> list[GraphQLError]:
    """An error for each variable holding a bad string (or object key), naming the first
    one's path. A clean value costs one scan in C (see `_holds_bad`)."""
    errors: list[GraphQLError] = []
    for name, value in (variables or {}).items():
        found = _first_bad(value, (name,))
        if found is None:
            continue
        path, what, in_key = found
        where = f'A key of variable "${path}"' if in_key else f'Variable "${path}"'
        errors.append(_bad_input(where, what, variable=path))
    return errors


def _value_errors(
    value: ValueNode, path: tuple[str | int, ...], where: Callable[[str], str]
) -> Iterator[GraphQLError]:
    if isinstance(value, StringValueNode):
        what = _bad_string(value.value)
        if what is not None:
            name = _json_path(path)
            yield _bad_input(where(name), what, argument=name)
    elif isinstance(value, ListValueNode):
        for i, item in enumerate(value.values):
            yield from _value_errors(item, (*path, i), where)
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            yield from _value_errors(field.value, (*path, field.name.value), where)


def _arguments_errors(
    arguments: tuple[ArgumentNode, ...] | None, owner: str
) -> Iterator[GraphQLError]:
    for argument in arguments or ():
        yield from _value_errors(
            argument.value, (argument.name.value,), lambda name: f'Argument "{name}" of {owner}'
        )


def _directives_errors(directives: tuple[DirectiveNode, ...] | None) -> Iterator[GraphQLError]:
    for directive in directives or ():
        yield from _arguments_errors(directive.arguments, f'directive "@{directive.name.value}"')


def _selections_errors(selection_set: SelectionSetNode | None) -> Iterator[GraphQLError]:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        yield from _directives_errors(selection.directives)
        if isinstance(selection, FieldNode):
            yield from _arguments_errors(selection.arguments, f'field "{selection.name.value}"')
        yield from _selections_errors(getattr(selection, "selection_set", None))


def literal_errors(document: DocumentNode) -> list[GraphQLError]:
    """One error per bad string literal of the document: field and directive arguments and
    variable defaults, nested objects and lists included. Only an escape (`\\u0000`) can
    put a NUL in a literal (raw ones, and lone surrogates, fail to parse), so a document
    without a `\\u` is clean."""
    source = document.loc.source.body if document.loc else None
    if source is not None and "\\u" not in source:
        return []
    errors: list[GraphQLError] = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for variable in definition.variable_definitions or ():
                if variable.default_value is not None:
                    name = variable.variable.name.value
                    errors.extend(
                        _value_errors(
                            variable.default_value,
                            (name,),
                            lambda path: f'The default value of variable "${path}"',
                        )
                    )
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            errors.extend(_directives_errors(definition.directives))
            errors.extend(_selections_errors(definition.selection_set))
    return errors
