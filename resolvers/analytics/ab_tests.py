"""Analytics: A/B tests (createAbTest, stopAbTest, abTest, abTests, abTestAssignment)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.services.analytics import ab_tests
from resolvers.common import (
    After,
    First,
    WorkspaceId,
    attempt,
    principal_of,
    state_of,
    workspace_page,
)
from schema.context import Info
from schema.ids import optional_id, parse_id
from schema.pagination import Connection
from schema.types.analytics.ab_tests import (
    AbTest,
    AbTestAssignment,
    AbTestPayload,
    CreateAbTestInput,
)
from schema.types.errors import UserError

AbTestId = Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the A/B test.")]


def _payload(test: ab_tests.LoadedTest | None, errors: list[UserError]) -> AbTestPayload:
    return AbTestPayload(ab_test=AbTest.of(test) if test else None, errors=errors)


@strawberry.type
class AbTestQuery:
    @strawberry.field(
        description="One A/B test with each arm's trials, successes, rate, lift, z-test "
        "p-value and probability to beat the control, and the verdict (a winner only when "
        "significant). Requires viewer role."
    )
    async def ab_test(self, info: Info, id: AbTestId) -> AbTest:
        test = await ab_tests.get(state_of(info), principal_of(info), parse_id(id, "AbTest"))
        return AbTest.of(test)

    @strawberry.field(
        description="A workspace's A/B tests, newest first; `contentId`: one item's only. "
        "Requires viewer role."
    )
    async def ab_tests(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        content_id: Annotated[
            relay.GlobalID | None,
            strawberry.argument(description="Only the tests of this content item."),
        ] = None,
        first: First = 50,
        after: After = None,
    ) -> Connection[AbTest]:
        page = await workspace_page(
            info,
            ab_tests.list_tests,
            workspace_id,
            first,
            after,
            content_id=optional_id(content_id, "Content", "contentId"),
        )
        return Connection.of(page, AbTest.of)

    @strawberry.field(
        description="The arm a visitor is in: deterministic for (test, visitorKey), and over "
        "many visitors in the proportions of the test's trafficSplit. Show the arm's variant "
        "(the item itself for A) and send the visitor's events with `variant` = its label. "
        "The rule, to compute it without a call: SHA-256 of '<test UUID>:<visitorKey>', its "
        "first 8 bytes big-endian / 2^64, the first arm whose cumulative share exceeds it. "
        "Requires viewer role."
    )
    async def ab_test_assignment(
        self,
        info: Info,
        test_id: AbTestId,
        visitor_key: Annotated[
            str,
            strawberry.argument(
                description="A stable, opaque key of the visitor (1 to 256 characters), e.g. "
                "a first-party cookie id."
            ),
        ],
    ) -> AbTestAssignment:
        value = await ab_tests.assignment(
            state_of(info), principal_of(info), parse_id(test_id, "AbTest", "testId"), visitor_key
        )
        return AbTestAssignment.of(value)


@strawberry.type
class AbTestMutation:
    @strawberry.mutation(
        description="Start an A/B test of a content item (the control, A) against 1 to 4 of "
        "its variants, RUNNING from now; one running test per item. Requires member role."
    )
    async def create_ab_test(
        self,
        info: Info,
        input: Annotated[CreateAbTestInput, strawberry.argument(description="The test.")],
    ) -> AbTestPayload:
        call = ab_tests.create(state_of(info), principal_of(info), input.to_fields())
        return _payload(*await attempt(call))

    @strawberry.mutation(
        description="Stop a running A/B test: its window ends now and its figures stay as "
        "they are. Requires member role."
    )
    async def stop_ab_test(self, info: Info, id: AbTestId) -> AbTestPayload:
        call = ab_tests.stop(state_of(info), principal_of(info), parse_id(id, "AbTest"))
        return _payload(*await attempt(call))
