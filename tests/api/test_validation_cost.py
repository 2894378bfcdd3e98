"""Worst-case documents within the token limit parse and validate in milliseconds.

Each shape goes through the real schema and its real extensions (parser cache, token
limit, staged validation); an outermost test extension measures the CPU time of this thread
for parsing and validating, then stops the operation before execution. CPU time, not wall
time, and the best of three runs: other processes on a busy machine do not count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from graphql import DocumentNode, GraphQLError, get_introspection_query
from strawberry.extensions import SchemaExtension

from app.settings import Settings
from schema import schema as schema_module
from schema.schema import SmartContentSchema, build_schema, parse_document
from tests.helpers import gql

BUDGET_SECONDS = 0.050  # each of parsing and validation
VALIDATED = "validated; not executed"


class _Measure(SchemaExtension):
    """The outermost extension: times parsing and validation, every other hook inside."""

    seconds: dict[str, float]

    def on_parse(self) -> Iterator[None]:
        started = time.thread_time()
        yield
        self.seconds["parse"] = time.thread_time() - started

    def on_validate(self) -> Iterator[None]:
        started = time.thread_time()
        yield
        self.seconds["validate"] = time.thread_time() - started


class _Stop(SchemaExtension):
    """The innermost extension: after validation passed, an error stops the operation
    (Strawberry checks for errors before the validation hooks exit)."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if not ctx.pre_execution_errors:
            ctx.pre_execution_errors = [GraphQLError(VALIDATED)]
        yield


@pytest.fixture(scope="module")
def measured_schema() -> SmartContentSchema:
    schema = build_schema(Settings(_env_file=None))
    schema.extensions = (_Measure, *schema.extensions, _Stop)
    return schema


async def _cost(
    schema: SmartContentSchema, query: str
) -> tuple[dict[str, float], list[GraphQLError]]:
    """The best CPU time of five runs for parsing and for validating (each run a new text:
    the caches must not answer), and the errors of the last run."""
    best = {"parse": float("inf"), "validate": float("inf")}
    errors: list[GraphQLError] = []
    for run in range(5):
        _Measure.seconds = {}
        result = await schema.execute(query + " " * (run + 1))
        for stage, seconds in _Measure.seconds.items():
            best[stage] = min(best[stage], seconds)
        errors = list(result.errors or [])
    return best, errors


def _fan_out(count: int, leaf: str = "health { version }", on: str = "Query") -> str:
    """`count` fragments, each spreading the next twice (the issue's document at 22)."""
    fragments = [f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(count)]
    return " ".join([*fragments, f"fragment F{count} on {on} {{ {leaf} }}"])


def _side_by_side(count: int, bodies: list[str], on: str = "Query", around: str = "{ ? }") -> str:
    """`count` fragments spread in one selection set (`?` in `around`)."""
    spreads = " ".join(f"...A{i}" for i in range(count))
    fragments = " ".join(
        f"fragment A{i} on {on} {{ {bodies[i % len(bodies)]} }}" for i in range(count)
    )
    return around.replace("?", spreads) + " " + fragments


def _shapes() -> Iterator[tuple[str, Callable[[], str], str]]:
    """(name, document, expected outcome): QUERY_TOO_COMPLEX, or VALIDATED when the
    document is within every limit and the stock rules themselves run on it."""
    yield "fan-out of 22 fragments", lambda: "{ ...F0 } " + _fan_out(22), "QUERY_TOO_COMPLEX"
    yield (
        "fan-out under a list field",
        lambda: (
            '{ contents(workspaceId: "x") { edges { node { ...F0 } } } } '
            + _fan_out(22, "id", "Content")
        ),
        "QUERY_TOO_COMPLEX",
    )
    yield (
        "fan-out of 250 fragments ending in an unknown one",
        lambda: "{ ...F0 } " + _fan_out(250, "...Missing"),
        "QUERY_TOO_COMPLEX",
    )
    yield (
        "depth at the limit",
        lambda: (
            "{ __schema { types { fields { type { "
            + "ofType { " * 11
            + "name"
            + " }" * 11
            + " } } } } }"
        ),
        VALIDATED,
    )
    yield (
        "one over the depth limit",
        lambda: (
            "{ __schema { types { fields { type { "
            + "ofType { " * 12
            + "name"
            + " }" * 12
            + " } } } } }"
        ),
        "QUERY_TOO_COMPLEX",
    )
    yield (
        "inline fragments nested 190 deep",
        lambda: "{ " + "... on Query { " * 190 + "__typename" + " }" * 190 + " }",
        VALIDATED,
    )
    yield (
        "30 aliases",
        lambda: "{ " + " ".join(f"a{i}: health {{ version }}" for i in range(30)) + " }",
        VALIDATED,
    )
    yield (
        "700 aliases",
        lambda: "{ " + " ".join(f"a{i}: __typename" for i in range(700)) + " }",
        "QUERY_TOO_COMPLEX",
    )
    yield "one field 70 times", lambda: "{ " + "health { version } " * 70 + "}", VALIDATED
    yield (
        "one field 700 times",
        lambda: "{ " + "health { version } " * 700 + "}",
        "QUERY_TOO_COMPLEX",
    )
    yield (
        "70 fields that conflict",
        lambda: "{ " + " ".join(f'node(id: "{i}") {{ id }}' for i in range(70)) + " }",
        "GRAPHQL_VALIDATION_FAILED",
    )
    yield (
        "50 fragments side by side",
        lambda: _side_by_side(50, ["me { id }", "health { version }", "__typename"]),
        VALIDATED,
    )
    yield (
        "40 fragments selecting id, as a client's components do",
        lambda: _side_by_side(40, ["id"], "User", "{ me { ? } }"),
        VALIDATED,
    )
    yield (
        "300 fragments side by side",
        lambda: _side_by_side(300, ["__typename"]),
        "QUERY_TOO_COMPLEX",
    )
    yield (
        "a chain of 50 fragments",
        lambda: (
            "{ health { ...C0 } } "
            + " ".join(
                f"fragment C{i} on Health {{ {['version', 'database', 'redis'][i % 3]} ...C{i + 1} }}"
                for i in range(50)
            )
            + " fragment C50 on Health { version }"
        ),
        VALIDATED,
    )
    yield (
        "a chain of 300 fragments",
        lambda: (
            "{ health { ...C0 } } "
            + " ".join(f"fragment C{i} on Health {{ version ...C{i + 1} }}" for i in range(300))
            + " fragment C300 on Health { version }"
        ),
        "QUERY_TOO_COMPLEX",
    )
    yield (
        "inline fragments on many types",
        lambda: (
            '{ node(id: "x") { '
            + " ".join(
                f"... on {t} {{ {f} }}"
                for _ in range(12)
                for t, f in [("User", "email"), ("Workspace", "name"), ("Content", "title")]
            )
            + " } }"
        ),
        VALIDATED,
    )
    yield (
        "120 fields with two directives each",
        lambda: (
            "query($b: Boolean!) { health { "
            + " ".join(
                f"{['version', 'database', 'redis'][i % 3]} @include(if: $b) @skip(if: $b)"
                for i in range(120)
            )
            + " } }"
        ),
        VALIDATED,
    )
    yield (
        "400 unused variables",
        lambda: "query(" + " ".join(f"$v{i}: String" for i in range(400)) + ") { __typename }",
        "GRAPHQL_VALIDATION_FAILED",
    )
    yield "GraphiQL's introspection query", lambda: get_introspection_query(True), VALIDATED


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [pytest.param(query, expected, id=name) for name, query, expected in _shapes()],
)
async def test_worst_case_documents_validate_in_milliseconds(
    measured_schema: SmartContentSchema, query: Callable[[], str], expected: str
) -> None:
    await measured_schema.execute("{ __typename }")  # one-time costs (schema checks) first
    seconds, errors = await _cost(measured_schema, query())
    assert errors, "every measured operation stops before execution"
    if expected == VALIDATED:
        assert [e.message for e in errors] == [VALIDATED]
    else:
        # (A long list of errors ends with "Too many errors", QUERY_TOO_COMPLEX.)
        assert (errors[0].extensions or {}).get("code") == expected, errors[0].message
    assert seconds["validate"] < BUDGET_SECONDS, f"validation: {seconds} s of CPU"
    assert seconds["parse"] < BUDGET_SECONDS, f"parsing: {seconds} s of CPU"


async def test_fan_out_document_gets_a_clear_error_quickly_over_http(
    client: httpx.AsyncClient,
) -> None:
    started = time.thread_time()  # the in-process app runs on this thread
    body = await gql(client, "query FanOut { ...F0 } " + _fan_out(22))
    cpu = time.thread_time() - started
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "'FanOut' stands for" in error["message"]
    assert "Allowed: 2000" in error["message"]
    assert cpu < 0.5, f"{cpu:.2f} s of CPU for one request"
    health = await gql(client, "{ health { version } }")
    assert health["data"]["health"]["version"]


async def test_a_long_document_is_parsed_off_the_event_loop(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens are bounded, their length is not: a long text is parsed in a worker thread."""
    loop_thread = threading.current_thread()
    threads: list[threading.Thread] = []

    def recording(query: str, options: dict[str, Any]) -> DocumentNode:
        threads.append(threading.current_thread())
        return parse_document(query, options)

    monkeypatch.setattr(schema_module, "parse_document", recording)
    comment = "# " + "x" * 200_000 + "\n"
    body = await gql(client, comment + "{ health { version } }")
    assert body["data"]["health"]["version"]
    broken = await gql(client, comment + "{ health { version }")
    assert [e["extensions"]["code"] for e in broken["errors"]] == ["GRAPHQL_PARSE_FAILED"]
    assert len(threads) == 2
    assert all(thread is not loop_thread for thread in threads)
    # A short one stays on the loop (a thread would cost more than the parse).
    await gql(client, "{ health { database } }")
    assert len(threads) == 2


async def test_cached_validation_errors_are_not_rewritten_by_a_response(
    client: httpx.AsyncClient,
) -> None:
    """The same invalid document twice: each response gets the full count and its own
    request id (responses once rewrote the cached list in place)."""
    query = "{ " + " ".join(f"missing{i}" for i in range(25)) + " }"
    for _ in range(2):
        response = await client.post("/graphql", json={"query": query})
        errors = response.json()["errors"]
        assert len(errors) == 21
        assert errors[-1]["message"] == "Too many errors: 5 more not shown."
        assert {e["extensions"]["requestId"] for e in errors} == {response.headers["x-request-id"]}
