"""Campaigns group content around objectives, dates and a budget."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import Campaign, Content
from app.models.vocabulary import CampaignStatus
from app.pagination import Page, newest_first
from app.permissions import Action
from app.services import lookup
from app.services.audit import trail as audit
from app.services.content.items import select_readable
from app.state import AppState

MAX_OBJECTIVES = 20


@dataclass(frozen=True)
class CampaignFields:
    name: str | None = None
    objectives: list[str] | None = None
    start_date: date | None = None
    end_date: date | None = None
    budget: Decimal | None = None
    status: str | None = None


def _validate(fields: CampaignFields, *, creating: bool) -> list[FieldError]:
    errors = []
    if creating or fields.name is not None:
        name = (fields.name or "").strip()
        if not name or len(name) > 200:
            errors.append(
                FieldError("name", UserErrorCode.INVALID, "Name must be 1 to 200 characters.")
            )
    if fields.objectives is not None and (
        len(fields.objectives) > MAX_OBJECTIVES or any(len(o) > 500 for o in fields.objectives)
    ):
        errors.append(
            FieldError(
                "objectives",
                UserErrorCode.INVALID,
                f"At most {MAX_OBJECTIVES} objectives of 500 characters.",
            )
        )
    if fields.budget is not None and fields.budget < 0:
        errors.append(FieldError("budget", UserErrorCode.NEGATIVE, "Budget cannot be negative."))
    if fields.status is not None and fields.status not in CampaignStatus.__members__:
        errors.append(FieldError("status", UserErrorCode.INVALID, "Unknown status."))
    return errors


# How a campaign's status may move: planned, then running (with pauses), then done. A
# completed campaign stays completed (copy it to run it again).
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.ACTIVE}),
    CampaignStatus.ACTIVE: frozenset({CampaignStatus.PAUSED, CampaignStatus.COMPLETED}),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.ACTIVE, CampaignStatus.COMPLETED}),
    CampaignStatus.COMPLETED: frozenset(),
}


def _date_errors(start: date | None, end: date | None) -> list[FieldError]:
    if start and end and end < start:
        return [
            FieldError(
                "endDate", UserErrorCode.BEFORE_START, "The end date is before the start date."
            )
        ]
    return []


def _transition_errors(current: str, target: str | None) -> list[FieldError]:
    if target is None or target == current or target not in CampaignStatus.__members__:
        return []  # no change, or already reported as unknown
    if CampaignStatus(target) in TRANSITIONS[CampaignStatus(current)]:
        return []
    allowed = ", ".join(sorted(TRANSITIONS[CampaignStatus(current)])) or "none"
    return [
        FieldError(
            "status",
            UserErrorCode.INVALID_TRANSITION,
            f"A {current} campaign cannot become {target} (allowed: {allowed}).",
        )
    ]


async def create(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, fields: CampaignFields
) -> Campaign:
    principal.require(workspace_id, Action.CONTENT_EDIT)
    # Every problem at once, so the form can show them all.
    errors = _validate(fields, creating=True) + _date_errors(fields.start_date, fields.end_date)
    if errors:
        raise ValidationFailed(errors)
    async with state.session_factory() as session, session.begin():
        campaign = Campaign(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            name=(fields.name or "").strip(),
            objectives=[o.strip() for o in fields.objectives or [] if o.strip()],
            start_date=fields.start_date,
            end_date=fields.end_date,
            budget=fields.budget,
            status=fields.status or "DRAFT",
            created_by_id=principal.user_id,
        )
        session.add(campaign)
        audit.record(
            session,
            principal,
            "createCampaign",
            workspace_id=workspace_id,
            target_type="Campaign",
            target_id=campaign.id,
            details={"name": campaign.name},
        )
    return await get(state, principal, campaign.id)


async def update(
    state: AppState, principal: Principal, campaign_id: uuid.UUID, fields: CampaignFields
) -> Campaign:
    errors = _validate(fields, creating=False)
    async with state.session_factory() as session, session.begin():
        campaign = await lookup.scoped_row(
            session, Campaign, campaign_id, principal, Action.CONTENT_EDIT, for_update=True
        )
        start = fields.start_date or campaign.start_date
        end = fields.end_date or campaign.end_date
        errors += _date_errors(start, end) + _transition_errors(campaign.status, fields.status)
        if errors:
            raise ValidationFailed(errors)
        changes: dict[str, Any] = {}
        for name in ("name", "objectives", "start_date", "end_date", "budget", "status"):
            value = getattr(fields, name)
            if value is not None:
                value = value.strip() if isinstance(value, str) and name == "name" else value
                setattr(campaign, name, value)
                changes[name] = str(value)
        audit.record_row(session, principal, "updateCampaign", campaign, changes)
    return await get(state, principal, campaign_id)


async def delete(state: AppState, principal: Principal, campaign_id: uuid.UUID) -> None:
    """Its content stays, detached from the campaign."""
    async with state.session_factory() as session, session.begin():
        campaign = await lookup.scoped_row(
            session, Campaign, campaign_id, principal, Action.CONTENT_APPROVE
        )
        await session.delete(campaign)
        audit.record_row(session, principal, "deleteCampaign", campaign, {"name": campaign.name})


async def get(state: AppState, principal: Principal, campaign_id: uuid.UUID) -> Campaign:
    return await lookup.fetch_scoped(
        state.session_factory, Campaign, campaign_id, principal, Action.CONTENT_READ
    )


async def list_campaigns(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    status: str | None = None,
) -> Page[Campaign]:
    return await lookup.workspace_page(
        state.session_factory,
        principal,
        Campaign,
        workspace_id,
        Action.CONTENT_READ,
        first=first,
        after=after,
        where=[Campaign.status == status] if status else (),
    )


async def by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Campaign]:
    rows = (await session.scalars(select(Campaign).where(Campaign.id.in_(ids)))).all()
    return {row.id: row for row in rows}


async def campaign_pages(
    session: AsyncSession, campaign_ids: Sequence[uuid.UUID], *, first: int, after: str | None
) -> dict[uuid.UUID, Page[Content]]:
    """One page of live items, newest first, for each campaign, in one statement (a window per
    campaign), so a list of campaigns with their contents costs the same for any page size.
    Callers check permissions first."""
    keyset = newest_first(Content)
    ranked = select(
        Content.id,
        func.row_number()
        .over(
            partition_by=Content.campaign_id,
            order_by=keyset.order_by(),
        )
        .label("rn"),
    ).where(Content.campaign_id.in_(campaign_ids), Content.deleted_at.is_(None))
    if (condition := keyset.after(after)) is not None:
        ranked = ranked.where(condition)
    sub = ranked.subquery()
    query = (
        select_readable()
        .join(sub, sub.c.id == Content.id)
        .where(sub.c.rn <= first + 1)
        .order_by(Content.campaign_id, sub.c.rn)
    )
    rows = (await session.scalars(query)).all()
    grouped: dict[uuid.UUID, list[Content]] = {c: [] for c in campaign_ids}
    for row in rows:
        assert row.campaign_id is not None
        grouped[row.campaign_id].append(row)
    return {campaign: keyset.page(items, first) for campaign, items in grouped.items()}
