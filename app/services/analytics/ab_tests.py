"""A/B tests of a content item against its AI-written variants: creating, stopping,
reading and listing them, and assigning visitors to arms.

The control "A" is the item itself and always the first arm; the variants
(content_variants of that item, 1 to MAX_VARIANTS) follow in the order given, each arm
with its share of the traffic. A test runs from its creation until stopAbTest; at most one
test of an item runs at a time. Clients split their traffic with `assign` (or the
abTestAssignment query) and send each engagement event with the arm's label as its
`variant`; the counts and statistics are app/services/analytics/ab_test_results.py.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import BadUserInput, FieldError, UserErrorCode, ValidationFailed
from app.models import AbTest, AbTestArm, Content, ContentVariant
from app.models.ab_tests import CONTROL_LABEL
from app.models.vocabulary import AbTestMetric, AbTestStatus
from app.pagination import Page, fetch_page, newest_first
from app.permissions import Action
from app.services import lookup
from app.services.audit import trail as audit
from app.state import AppState

MAX_VARIANTS = 4
SPLIT_TOLERANCE = 1e-6
MAX_VISITOR_KEY = 256


@dataclass(frozen=True)
class AbTestFields:
    content_id: uuid.UUID
    variant_ids: list[uuid.UUID]
    metric: AbTestMetric
    traffic_split: list[float] | None = None  # one share per arm, the control first


@dataclass(frozen=True)
class LoadedTest:
    """A test with its arms in order (the control first)."""

    row: AbTest
    arms: tuple[AbTestArm, ...]


def _shape_errors(fields: AbTestFields) -> list[FieldError]:
    """What is wrong with the input on its own, before any lookup (all problems at once)."""
    errors = []
    count = len(fields.variant_ids)
    if count == 0:
        errors.append(
            FieldError("variantIds", UserErrorCode.REQUIRED, "Name at least one variant.")
        )
    elif count > MAX_VARIANTS:
        errors.append(
            FieldError(
                "variantIds",
                UserErrorCode.TOO_MANY,
                f"At most {MAX_VARIANTS} variants (the control is always the item itself).",
            )
        )
    if len(set(fields.variant_ids)) != count:
        errors.append(
            FieldError("variantIds", UserErrorCode.DUPLICATE, "A variant is named twice.")
        )
    split = fields.traffic_split
    if split is not None and count:
        if len(split) != count + 1:
            errors.append(
                FieldError(
                    "trafficSplit",
                    UserErrorCode.WRONG_LENGTH,
                    f"One share per arm, the control first: {count + 1} shares, not {len(split)}.",
                )
            )
        elif not all(math.isfinite(s) and 0 < s <= 1 for s in split):
            errors.append(
                FieldError(
                    "trafficSplit",
                    UserErrorCode.OUT_OF_RANGE,
                    "Every share must be greater than 0 and at most 1.",
                )
            )
        elif abs(math.fsum(split) - 1) > SPLIT_TOLERANCE:
            errors.append(
                FieldError(
                    "trafficSplit",
                    UserErrorCode.SUM_NOT_ONE,
                    f"The shares add up to {math.fsum(split):.6g}, not 1.",
                )
            )
    return errors


async def _variants(
    session: AsyncSession, principal: Principal, content: Content, ids: Sequence[uuid.UUID]
) -> tuple[list[ContentVariant], list[FieldError]]:
    rows = (await session.scalars(select(ContentVariant).where(ContentVariant.id.in_(ids)))).all()
    found = {row.id: row for row in rows}
    variants, errors = [], []
    for i, variant_id in enumerate(ids):
        row = found.get(variant_id)
        if row is None or principal.role_in(row.workspace_id) is None:
            # Another workspace's variant looks like none at all.
            errors.append(
                FieldError(f"variantIds.{i}", UserErrorCode.NOT_FOUND, "No such variant.")
            )
        elif row.content_id != content.id:
            errors.append(
                FieldError(
                    f"variantIds.{i}",
                    UserErrorCode.OTHER_CONTENT,
                    f"Variant {row.label} belongs to another content item.",
                )
            )
        else:
            variants.append(row)
    return variants, errors


def _equal_split(arms: int) -> list[float]:
    return [1 / arms] * arms


async def create(state: AppState, principal: Principal, fields: AbTestFields) -> LoadedTest:
    """Start a test of the item against `variant_ids` (RUNNING from now)."""
    errors = _shape_errors(fields)
    async with state.session_factory() as session, session.begin():
        # The lock serialises creations for one item, so the running check below holds
        # (the partial unique index is the backstop).
        content = await lookup.scoped_row(
            session, Content, fields.content_id, principal, Action.CONTENT_EDIT, for_update=True
        )
        if content.deleted_at is not None:
            errors.append(FieldError("contentId", UserErrorCode.DELETED, "The content is deleted."))
        variants, variant_errors = await _variants(session, principal, content, fields.variant_ids)
        errors += variant_errors
        running = await session.scalar(
            select(AbTest.id).where(
                AbTest.content_id == content.id, AbTest.status == AbTestStatus.RUNNING
            )
        )
        if running is not None:
            errors.append(_running_error())
        if errors:
            raise ValidationFailed(errors)
        shares = fields.traffic_split or _equal_split(len(variants) + 1)
        test = AbTest(
            id=uuid.uuid4(),
            workspace_id=content.workspace_id,
            content_id=content.id,
            metric=fields.metric.value,
            status=AbTestStatus.RUNNING.value,
            started_at=func.now(),
            created_by_id=principal.user_id,
        )
        session.add(test)
        await session.flush()
        session.add_all(
            AbTestArm(
                test_id=test.id,
                position=position,
                label=variant.label if variant else CONTROL_LABEL,
                variant_id=variant.id if variant else None,
                share=share,
            )
            for position, (variant, share) in enumerate(zip([None, *variants], shares, strict=True))
        )
        audit.record_row(
            session,
            principal,
            "createAbTest",
            test,
            {
                "contentId": str(content.id),
                "metric": fields.metric.value,
                "arms": [CONTROL_LABEL, *(v.label for v in variants)],
                "trafficSplit": shares,
            },
        )
    return await get(state, principal, test.id, written=True)


def _running_error() -> FieldError:
    return FieldError(
        "contentId",
        UserErrorCode.EXISTS,
        "A test of this content is already running; stop it first.",
    )


async def stop(state: AppState, principal: Principal, test_id: uuid.UUID) -> LoadedTest:
    """RUNNING -> STOPPED, freezing the end of the test's window at now."""
    async with state.session_factory() as session, session.begin():
        test = await lookup.scoped_row(session, AbTest, test_id, principal, Action.CONTENT_EDIT)
        stopped = await session.scalar(
            update(AbTest)
            .where(AbTest.id == test.id, AbTest.status == AbTestStatus.RUNNING)
            .values(status=AbTestStatus.STOPPED.value, stopped_at=func.now())
            .returning(AbTest.stopped_at)
        )
        if stopped is None:
            raise ValidationFailed(
                [FieldError("id", UserErrorCode.INVALID_STATE, "The test is already stopped.")]
            )
        audit.record_row(session, principal, "stopAbTest", test, {"stoppedAt": str(stopped)})
    return await get(state, principal, test_id, written=True)


async def load_many(
    session: AsyncSession, test_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, LoadedTest]:
    """Tests with their arms, in one statement (no visibility check: callers make it)."""
    rows = (
        await session.execute(
            select(AbTest, AbTestArm)
            .join(AbTestArm, AbTestArm.test_id == AbTest.id)
            .where(AbTest.id.in_(test_ids))
            .order_by(AbTest.id, AbTestArm.position)
        )
    ).all()
    grouped: dict[uuid.UUID, tuple[AbTest, list[AbTestArm]]] = {}
    for test, arm in rows:
        grouped.setdefault(test.id, (test, []))[1].append(arm)
    return {key: LoadedTest(test, tuple(arms)) for key, (test, arms) in grouped.items()}


async def get(
    state: AppState, principal: Principal, test_id: uuid.UUID, *, written: bool = False
) -> LoadedTest:
    """The test if the caller may read it; `written`: just changed, read from the primary."""
    factory = state.session_factory if written else state.read_session_factory
    async with factory() as session:
        found = (await load_many(session, [test_id])).get(test_id)
    # Outside the caller's workspaces a test does not exist (ids cannot be probed).
    if found is None or principal.role_in(found.row.workspace_id) is None:
        raise lookup.not_found(AbTest)
    principal.require(found.row.workspace_id, Action.CONTENT_READ)
    return found


async def list_tests(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    content_id: uuid.UUID | None = None,
) -> Page[LoadedTest]:
    """A workspace's tests, newest first (optionally one item's): two statements a page."""
    principal.require(workspace_id, Action.CONTENT_READ)
    query = select(AbTest).where(AbTest.workspace_id == workspace_id)
    if content_id is not None:
        query = query.where(AbTest.content_id == content_id)
    page = await fetch_page(
        state.read_session_factory, query, newest_first(AbTest), first=first, after=after
    )
    async with state.read_session_factory() as session:
        loaded = await load_many(session, [t.id for t in page.items])
    return Page(
        items=[loaded[t.id] for t in page.items], has_next=page.has_next, cursors=page.cursors
    )


def assign(test_id: uuid.UUID, visitor_key: str, shares: Sequence[float]) -> int:
    """The arm (index) of a visitor: SHA-256 of "<test uuid>:<visitor key>" (UTF-8), its
    first 8 bytes big-endian over 2**64 as a point in [0, 1), the first arm whose cumulative
    share exceeds it (the last arm takes what rounding leaves). Stable for a key, and over
    many keys the arms' proportions follow the shares. Clients may compute it themselves."""
    digest = hashlib.sha256(f"{test_id}:{visitor_key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for index, share in enumerate(shares[:-1]):
        cumulative += share
        if point < cumulative:
            return index
    return len(shares) - 1


@dataclass(frozen=True)
class Assignment:
    test: LoadedTest
    arm: AbTestArm


async def assignment(
    state: AppState, principal: Principal, test_id: uuid.UUID, visitor_key: str
) -> Assignment:
    if not visitor_key or len(visitor_key) > MAX_VISITOR_KEY:
        raise BadUserInput(
            f"visitorKey must be 1 to {MAX_VISITOR_KEY} characters.",
            extra={"field": "visitorKey"},
        )
    test = await get(state, principal, test_id)
    index = assign(test.row.id, visitor_key, [arm.share for arm in test.arms])
    return Assignment(test, test.arms[index])
