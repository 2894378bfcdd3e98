"""The committed schema.graphql matches the code, and every part of it is described."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from app.settings import Settings
from schema.schema import build_schema, schema_sdl

pytestmark = pytest.mark.no_db
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_schema_graphql_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text() == schema_sdl(), "run `make schema` and commit schema.graphql"


def test_every_type_field_argument_and_enum_value_has_a_description() -> None:
    schema = build_schema(Settings(_env_file=None))._schema  # type: ignore[call-arg]
    missing: list[str] = []
    for name, gql_type in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not gql_type.description:
            missing.append(name)
        if isinstance(gql_type, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for field_name, field in gql_type.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        if isinstance(gql_type, GraphQLEnumType):
            for value_name, value in gql_type.values.items():
                if not value.description:
                    missing.append(f"{name}.{value_name}")
    assert missing == []
