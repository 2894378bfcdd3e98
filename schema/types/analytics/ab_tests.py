"""A/B tests: a content item (the control "A") against its variants, with per-arm figures,
significance and the verdict (app/services/analytics/ab_test_results.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from app.models import AbTest as AbTestRow
from app.services import lookup
from app.services.analytics import ab_test_results, ab_tests
from schema.context import Info
from schema.ids import parse_id
from schema.loaders.base import uuid_or_nil
from schema.types.content.items import Content
from schema.types.content.variants import ContentVariant
from schema.types.errors import UserError
from schema.types.vocabulary import AbTestMetric, AbTestStatus, AbTestVerdictReason


async def _variant(info: Info, variant_id: uuid.UUID | None) -> ContentVariant | None:
    if variant_id is None:
        return None
    row = await info.context.loaders.content.variants.load(variant_id)
    return ContentVariant.from_row(row) if row is not None else None


@strawberry.type(
    description="One arm of an A/B test and its figures over the test's window. Counts are "
    "events (not distinct visitors) naming the arm's label as their `variant`."
)
class AbTestArm:
    label: str = strawberry.field(
        description='The label events name as their `variant`: "A" for the control (the '
        'content item itself), the variant\'s own ("B", "C", ...) otherwise.'
    )
    share: float = strawberry.field(description="Its share of the traffic (0 to 1).")
    trials: int = strawberry.field(
        description="Trial events counted (IMPRESSION or VIEW, by the test's metric)."
    )
    successes: int = strawberry.field(
        description="Success events counted (CLICK, CONVERSION, or LIKE + COMMENT + SHARE)."
    )
    rate: float | None = strawberry.field(description="successes / trials; null without trials.")
    lift: float | None = strawberry.field(
        description="(rate - control's rate) / control's rate; null for the control, or when "
        "either rate is undefined or the control's is 0."
    )
    z_score: float | None = strawberry.field(
        description="Pooled two-proportion z statistic against the control (positive: "
        "better); null for the control or when undefined."
    )
    p_value: float | None = strawberry.field(
        description="Two-sided p-value of the pooled two-proportion z-test against the "
        "control (uncorrected; the verdict holds it to `verdict.alpha`); null for the "
        "control, an arm without trials, or rates all 0 or all 1."
    )
    probability_to_beat_control: float | None = strawberry.field(
        description="P(this arm's true rate > the control's) under uniform Beta(1, 1) "
        "priors, computed exactly; null for the control."
    )
    variant_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The content variant shown in this arm; null for the control.")
    async def variant(self, info: Info) -> ContentVariant | None:
        return await _variant(info, self.variant_id)

    @classmethod
    def of(cls, arm: ab_test_results.ArmResult) -> AbTestArm:
        return cls(
            label=arm.label,
            share=arm.share,
            trials=arm.trials,
            successes=arm.successes,
            rate=arm.rate,
            lift=arm.lift,
            z_score=arm.z,
            p_value=arm.p_value,
            probability_to_beat_control=arm.probability_to_beat_control,
            variant_id=arm.variant_id,
        )


@strawberry.type(description="Whether an A/B test has a winner yet, and why.")
class AbTestVerdict:
    winner: str | None = strawberry.field(
        description="The winning arm's label, declared only when significant; null otherwise."
    )
    reason: AbTestVerdictReason = strawberry.field(description="Why there is a winner or none.")
    explanation: str = strawberry.field(description="The reason in words, with the labels.")
    alpha: float = strawberry.field(
        description="The level each comparison with the control is held to: 0.05 divided by "
        "the number of variants (Bonferroni)."
    )
    min_trials_per_arm: int = strawberry.field(
        description="Trials every arm needs before any winner is named."
    )

    @classmethod
    def of(cls, verdict: ab_test_results.TestVerdict) -> AbTestVerdict:
        return cls(
            winner=verdict.winner,
            reason=verdict.reason,
            explanation=verdict.explanation,
            alpha=verdict.alpha,
            min_trials_per_arm=verdict.min_trials,
        )


@strawberry.type(
    description="An A/B test of a content item (the control, arm A) against its variants. "
    "Clients split traffic with abTestAssignment and send each engagement event with the "
    "arm's label as its `variant`; the figures come from the hourly rollups of those events "
    "in every UTC hour overlapping [startedAt, stoppedAt or now)."
)
class AbTest(relay.Node):
    id: relay.NodeID[str]
    metric: AbTestMetric = strawberry.field(description="What the arms are compared on.")
    status: AbTestStatus = strawberry.field(description="RUNNING or STOPPED.")
    started_at: datetime = strawberry.field(description="When it started (its creation).")
    stopped_at: datetime | None = strawberry.field(
        description="When it was stopped; null while running."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    traffic_split: list[float] = strawberry.field(
        description="Each arm's share of the traffic, in arm order (the control first)."
    )
    labels: list[str] = strawberry.field(
        description='The arms\' labels in order: "A" (the control) first.'
    )
    test_id: strawberry.Private[uuid.UUID]
    content_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The content item under test (null if no longer visible).")
    async def content(self, info: Info) -> Content | None:
        [node] = await Content.resolve_nodes(info=info, node_ids=[str(self.content_id)])
        return node

    async def _results(self, info: Info) -> ab_test_results.Results:
        results = await info.context.loaders.ab_tests.results.load(self.test_id)
        if results is None:  # deleted (with its content) since it was read
            raise lookup.not_found(AbTestRow)
        return results

    @strawberry.field(
        description="Each arm with its figures, the control first (one statement for every "
        "test of the request)."
    )
    async def arms(self, info: Info) -> list[AbTestArm]:
        return [AbTestArm.of(arm) for arm in (await self._results(info)).arms]

    @strawberry.field(description="The winner, if any, and why.")
    async def verdict(self, info: Info) -> AbTestVerdict:
        return AbTestVerdict.of((await self._results(info)).verdict)

    @strawberry.field(
        description="Start of the counted window: the UTC hour holding startedAt (events of "
        "that whole hour count)."
    )
    async def counted_from(self, info: Info) -> datetime:
        return (await self._results(info)).counted_from

    @strawberry.field(description="End of the counted window: stoppedAt, or now while running.")
    async def counted_until(self, info: Info) -> datetime:
        return (await self._results(info)).counted_until

    @classmethod
    def of(cls, test: ab_tests.LoadedTest) -> AbTest:
        row = test.row
        return cls(
            id=str(row.id),
            metric=AbTestMetric(row.metric),
            status=AbTestStatus(row.status),
            started_at=row.started_at,
            stopped_at=row.stopped_at,
            created_at=row.created_at,
            traffic_split=[arm.share for arm in test.arms],
            labels=[arm.label for arm in test.arms],
            test_id=row.id,
            content_id=row.content_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[AbTest | None]:
        loaded = await info.context.loaders.ab_tests.tests.load_many(
            [uuid_or_nil(i) for i in node_ids]
        )
        principal = info.context.principal
        return [
            cls.of(t)
            if t is not None and principal.role_in(t.row.workspace_id) is not None
            else None
            for t in loaded
        ]


@strawberry.type(description="Which arm of an A/B test a visitor is in.")
class AbTestAssignment:
    label: str = strawberry.field(
        description="The arm's label: send it as `variant` with this visitor's events."
    )
    share: float = strawberry.field(description="The arm's share of the traffic.")
    counted: bool = strawberry.field(
        description="Whether the test is running (a stopped test counts no new events)."
    )
    test: AbTest = strawberry.field(description="The test.")
    variant_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The variant to show; null for the control (the item itself).")
    async def variant(self, info: Info) -> ContentVariant | None:
        return await _variant(info, self.variant_id)

    @classmethod
    def of(cls, value: ab_tests.Assignment) -> AbTestAssignment:
        return cls(
            label=value.arm.label,
            share=value.arm.share,
            counted=value.test.row.status == AbTestStatus.RUNNING,
            test=AbTest.of(value.test),
            variant_id=value.arm.variant_id,
        )


@strawberry.type(description="Result of createAbTest and stopAbTest.")
class AbTestPayload:
    ab_test: AbTest | None = strawberry.field(description="The test after the change.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="A new A/B test of a content item against its variants.")
class CreateAbTestInput:
    content_id: relay.GlobalID = strawberry.field(
        description="The content item under test: the control, arm A."
    )
    variant_ids: list[relay.GlobalID] = strawberry.field(
        description="1 to 4 ContentVariant ids of that item (generateVariants), the other "
        "arms in this order."
    )
    metric: AbTestMetric = strawberry.field(description="What the arms are compared on.")
    traffic_split: list[float] | None = strawberry.field(
        default=None,
        description="One share per arm, the control first, each > 0, adding up to 1 (within "
        "1e-6). Default: equal shares.",
    )

    def to_fields(self) -> ab_tests.AbTestFields:
        return ab_tests.AbTestFields(
            content_id=parse_id(self.content_id, "Content", "contentId"),
            variant_ids=[parse_id(v, "ContentVariant", "variantIds") for v in self.variant_ids],
            metric=AbTestMetric(self.metric),
            traffic_split=self.traffic_split,
        )
