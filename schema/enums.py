"""GraphQL enums derived from the domain's own Python enums (each concept declared once).

`domain_enum` registers the domain class itself with Strawberry, so resolvers receive and
return domain members directly, and adds a description to every value: a member without
one fails at import, so a new member cannot reach the schema undocumented.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

import strawberry

E = TypeVar("E", bound=type[Enum])


def domain_enum(
    cls: E, *, description: str, values: Mapping[Any, str], name: str | None = None
) -> E:
    missing = [member.name for member in cls if member not in values]
    if missing:
        raise ValueError(f"{cls.__name__}: no description for {missing}")
    strawberry.enum(cls, name=name, description=description)
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    for value in definition.values:
        value.description = values[cls[value.name]]
    return cls
