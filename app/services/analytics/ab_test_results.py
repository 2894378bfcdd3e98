"""What an A/B test shows: per arm trials, successes, rate, lift, z-test p-value and
probability to beat the control, and the verdict, from the hourly engagement rollups.

Counting. An event counts for an arm when it is about the test's content and names the
arm's label as its `variant` ("A" = the control). The window is [started_at, stopped_at or
now), read from `engagement_hourly` by whole UTC hours: every bucket overlapping the
window counts, so events of the start's hour that came before the start count too, and
the rollups trail ingest by the rollup worker's few seconds. Events without a `variant`,
with another label, or about another content item are not counted. Counts are events, not
visitors: a visitor shown the item twice is two trials (send one IMPRESSION/VIEW per
exposure you want counted). One statement, whatever the number of tests and arms.

Statistics (app/services/analytics/significance.py, unchanged): each variant is compared
with the control alone. With several variants each comparison is held to alpha / (number
of variants) (Bonferroni), so three variants do not triple the chance of a false winner.
The p-values shown are the plain two-sided ones; the correction is in the verdict.

Verdict. No winner while any arm has fewer than MIN_TRIALS trials (TOO_FEW_TRIALS). Then
the winner is the variant significantly better than the control; when several are, the
best only if it is also significantly better than the runner-up; the control wins when
every variant is significantly worse. Otherwise none, with the reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AbTest, AbTestArm, EngagementHourly
from app.models.vocabulary import AbTestMetric, AbTestVerdictReason
from app.models.vocabulary import EngagementEventType as E
from app.services.analytics import significance

ALPHA = 0.05  # the family-wise level: split across the variants
MIN_TRIALS = 100  # per arm, before any winner is named


@dataclass(frozen=True)
class MetricDefinition:
    """Which events are a metric's successes, and which its trials."""

    successes: tuple[E, ...]
    trials: E
    meaning: str


# The one table of what each metric counts (the schema's enum descriptions come from it).
METRICS: dict[AbTestMetric, MetricDefinition] = {
    AbTestMetric.CTR: MetricDefinition(
        (E.CLICK,), E.IMPRESSION, "Click-through rate: CLICK events / IMPRESSION events."
    ),
    AbTestMetric.CONVERSION_RATE: MetricDefinition(
        (E.CONVERSION,), E.VIEW, "Conversion rate: CONVERSION events / VIEW events."
    ),
    AbTestMetric.ENGAGEMENT_RATE: MetricDefinition(
        (E.LIKE, E.COMMENT, E.SHARE),
        E.IMPRESSION,
        "Engagement rate: (LIKE + COMMENT + SHARE events) / IMPRESSION events.",
    ),
}


@dataclass(frozen=True)
class ArmCounts:
    position: int
    label: str
    variant_id: uuid.UUID | None
    share: float
    successes: int
    trials: int


@dataclass(frozen=True)
class ArmResult:
    label: str
    variant_id: uuid.UUID | None
    share: float
    successes: int
    trials: int
    rate: float | None  # successes / trials; None without trials
    # Against the control (None for the control itself, or when undefined).
    lift: float | None  # (rate - control's) / control's
    z: float | None
    p_value: float | None
    probability_to_beat_control: float | None


@dataclass(frozen=True)
class TestVerdict:
    winner: str | None  # the winning arm's label
    reason: AbTestVerdictReason
    explanation: str
    alpha: float  # each comparison's level (ALPHA / number of variants)
    min_trials: int


@dataclass(frozen=True)
class Results:
    counted_from: datetime  # the start of the hour holding started_at
    counted_until: datetime  # stopped_at, or the time of the read
    arms: list[ArmResult]
    verdict: TestVerdict


def _rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def evaluate(arms: Sequence[ArmCounts]) -> tuple[list[ArmResult], TestVerdict]:
    """Per-arm figures and the verdict; `arms[0]` is the control. CPU-bound (numerical
    integration per variant): callers run it in a thread."""
    control, variants = arms[0], arms[1:]
    alpha = ALPHA / len(variants)
    inconsistent = [a.label for a in arms if a.successes > a.trials]
    control_rate = _rate(control.successes, control.trials)
    results = [_arm(control, None, None, None)]
    verdicts: list[tuple[ArmCounts, significance.Verdict]] = []
    for arm in variants:
        if arm.label in inconsistent or control.label in inconsistent:
            results.append(_arm(arm, control_rate, None, None))
            continue
        judged = significance.verdict(
            significance.Arm(control.successes, control.trials),
            significance.Arm(arm.successes, arm.trials),
            alpha=alpha,
            min_trials=MIN_TRIALS,
        )
        verdicts.append((arm, judged))
        results.append(_arm(arm, control_rate, judged, judged.probability_to_beat))
    return results, _verdict(arms, verdicts, inconsistent, alpha)


def _arm(
    arm: ArmCounts,
    control_rate: float | None,
    judged: significance.Verdict | None,
    beat: float | None,
) -> ArmResult:
    rate = _rate(arm.successes, arm.trials)
    lift = (
        (rate - control_rate) / control_rate
        if rate is not None and control_rate and arm.position > 0
        else None
    )
    return ArmResult(
        label=arm.label,
        variant_id=arm.variant_id,
        share=arm.share,
        successes=arm.successes,
        trials=arm.trials,
        rate=rate,
        lift=lift,
        z=judged.z if judged else None,
        p_value=judged.p_value if judged else None,
        probability_to_beat_control=beat,
    )


def _verdict(
    arms: Sequence[ArmCounts],
    verdicts: list[tuple[ArmCounts, significance.Verdict]],
    inconsistent: list[str],
    alpha: float,
) -> TestVerdict:
    def say(winner: str | None, reason: AbTestVerdictReason, explanation: str) -> TestVerdict:
        return TestVerdict(winner, reason, explanation, alpha, MIN_TRIALS)

    if inconsistent:
        return say(
            None,
            AbTestVerdictReason.INCONSISTENT_COUNTS,
            f"More successes than trials in arm {', '.join(inconsistent)}: the trial events "
            "(impressions or views) are not all being sent with the variant.",
        )
    thin = [a.label for a in arms if a.trials < MIN_TRIALS]
    if thin:
        return say(
            None,
            AbTestVerdictReason.TOO_FEW_TRIALS,
            f"Each arm needs at least {MIN_TRIALS} trials; {', '.join(thin)} "
            f"{'has' if len(thin) == 1 else 'have'} fewer.",
        )
    control = arms[0]
    better = sorted(
        (arm for arm, v in verdicts if v.better is True),
        key=lambda a: (-(a.successes / a.trials), a.position),
    )
    if len(better) == 1:
        return say(
            better[0].label,
            AbTestVerdictReason.SIGNIFICANT,
            f"{better[0].label} beats the control at p < {alpha:.3g}.",
        )
    if better:
        best, runner_up = better[0], better[1]
        head_to_head = significance.z_test(
            significance.Arm(runner_up.successes, runner_up.trials),
            significance.Arm(best.successes, best.trials),
        )
        labels = ", ".join(a.label for a in better)
        if head_to_head is not None and head_to_head.p_value < alpha:
            return say(
                best.label,
                AbTestVerdictReason.SIGNIFICANT,
                f"{labels} beat the control at p < {alpha:.3g}, and {best.label} beats "
                f"{runner_up.label} too.",
            )
        return say(
            None,
            AbTestVerdictReason.NOT_SIGNIFICANT,
            f"{labels} beat the control at p < {alpha:.3g}, but {best.label} does not beat "
            f"{runner_up.label} significantly.",
        )
    if verdicts and all(v.better is False for _, v in verdicts):
        return say(
            control.label,
            AbTestVerdictReason.SIGNIFICANT,
            f"Every variant is worse than the control at p < {alpha:.3g}.",
        )
    if all(v.p_value is None for _, v in verdicts):
        return say(
            None,
            AbTestVerdictReason.NO_VARIANCE,
            "Nothing to test: every arm's rate is 0, or every arm's is 1.",
        )
    return say(
        None,
        AbTestVerdictReason.NOT_SIGNIFICANT,
        f"No variant differs from the control at p < {alpha:.3g}.",
    )


def _hour_floor(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def results_for(
    session: AsyncSession, test_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, Results]:
    """Results of many tests (a DataLoader's batch): one statement for all their arms."""
    h = EngagementHourly
    end = func.coalesce(AbTest.stopped_at, now)
    # Each arm with its test, per event type (the grouping keys are the selected columns).
    keys = (
        AbTestArm.test_id,
        AbTestArm.position,
        AbTestArm.label,
        AbTestArm.variant_id,
        AbTestArm.share,
        AbTest.metric,
        AbTest.started_at,
        AbTest.stopped_at,
        h.event_type,
    )
    query = (
        select(*keys, func.coalesce(func.sum(h.events), 0))
        .join(AbTest, AbTest.id == AbTestArm.test_id)
        # Served by ix_engagement_hourly_content (content_id, bucket_start).
        .outerjoin(
            h,
            and_(
                h.content_id == AbTest.content_id,
                h.workspace_id == AbTest.workspace_id,
                h.variant == AbTestArm.label,
                h.bucket_start >= func.date_trunc("hour", AbTest.started_at, "UTC"),
                h.bucket_start < end,
            ),
        )
        .where(AbTestArm.test_id.in_(test_ids))
        .group_by(*keys)
    )
    tests: dict[uuid.UUID, tuple[AbTestMetric, datetime, datetime | None]] = {}
    arms: dict[uuid.UUID, dict[int, tuple[str, uuid.UUID | None, float]]] = {}
    events: dict[tuple[uuid.UUID, int], dict[str, int]] = {}
    for row in (await session.execute(query)).all():
        test_id, position, label, variant_id, share, metric, started, stopped, kind, n = row
        tests[test_id] = (AbTestMetric(metric), started, stopped)
        arms.setdefault(test_id, {})[position] = (label, variant_id, share)
        if kind is not None:
            events.setdefault((test_id, position), {})[kind] = int(n)
    counted: dict[uuid.UUID, tuple[datetime, datetime, list[ArmCounts]]] = {}
    for test_id, (metric, started, stopped) in tests.items():
        definition = METRICS[metric]
        per_arm = []
        for position, (label, variant_id, share) in sorted(arms[test_id].items()):
            kinds = events.get((test_id, position), {})
            per_arm.append(
                ArmCounts(
                    position=position,
                    label=label,
                    variant_id=variant_id,
                    share=share,
                    successes=sum(kinds.get(k.value, 0) for k in definition.successes),
                    trials=kinds.get(definition.trials.value, 0),
                )
            )
        counted[test_id] = (_hour_floor(started), stopped or now, per_arm)
    # The integrals take a few milliseconds per arm: a page of tests is kept off the loop.
    return await asyncio.to_thread(_evaluate_all, counted)


def _evaluate_all(
    counted: dict[uuid.UUID, tuple[datetime, datetime, list[ArmCounts]]],
) -> dict[uuid.UUID, Results]:
    out = {}
    for test_id, (since, until, arms) in counted.items():
        per_arm, verdict = evaluate(arms)
        out[test_id] = Results(since, until, per_arm, verdict)
    return out
