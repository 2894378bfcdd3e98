"""Recurring posts: slots keep their local time across DST changes; the next occurrence
is made when one is done (published or failed), exactly once however often the hook runs;
after a long outage the series re-anchors on the next future slot without a burst; a
series ends by count or by until, and cancelScheduledPost(cancelSeries) stops it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select, update

from app.models import PostSeries, PostTarget, ScheduledPost
from app.services.publishing import delivery as engine
from app.services.publishing import recurrence, recurrence_rules
from app.services.publishing.delivery import Delivery
from app.state import AppState
from tests.publishing.conftest import Team, approved_content, call, connect_webhook, targets_of
from tests.publishing.conftest import schedule as schedule_once
from tests.publishing.receiver import Receiver, Reply
from tests.publishing.steps import make_due
from tests.teams import gid, uid

BERLIN = "Europe/Berlin"
SOON = timedelta(hours=3)
SERIES = """
id scheduledAt timezone occurrenceIndex nextOccurrenceAt status
recurrence { everyDays until count timezone cancelledAt endedAt }
targets { status }
"""
SCHEDULE = (
    "mutation($i: SchedulePostInput!) { schedulePost(input: $i) {"
    f" post {{ {SERIES} }} errors {{ field code message }} }} }}"
)
NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on ScheduledPost {{ {SERIES} }} }} }}"
CANCEL = (
    "mutation($id: ID!, $s: Boolean!) { cancelScheduledPost(id: $id, cancelSeries: $s) {"
    f" post {{ {SERIES} }} errors {{ field code message }} }} }}"
)


def series_row(anchor: datetime, every: int, **fields: Any) -> PostSeries:
    return PostSeries(anchor_local=anchor, every_days=every, timezone=BERLIN, **fields)


def test_slots_keep_the_local_time_across_dst_changes() -> None:
    spring = datetime(2027, 3, 27, 9, 0)  # Saturday; clocks go forward on Sunday 28th
    assert recurrence_rules.slot_time(spring, 1, 0, BERLIN) == datetime(
        2027, 3, 27, 8, 0, tzinfo=UTC
    )
    assert recurrence_rules.slot_time(spring, 1, 1, BERLIN) == datetime(
        2027, 3, 28, 7, 0, tzinfo=UTC
    )
    autumn = datetime(2027, 10, 30, 9, 0)  # clocks go back on Sunday 31st
    assert recurrence_rules.slot_time(autumn, 1, 1, BERLIN) == datetime(
        2027, 10, 31, 8, 0, tzinfo=UTC
    )
    weekly = [recurrence_rules.slot_time(spring, 7, k, BERLIN) for k in range(3)]
    assert [w.astimezone(ZoneInfo(BERLIN)).hour for w in weekly] == [9, 9, 9]
    # A wall time the clocks skip (02:30 on the spring night) goes out an hour on.
    skipped = recurrence_rules.slot_time(datetime(2027, 3, 27, 2, 30), 1, 1, BERLIN)
    assert skipped.astimezone(ZoneInfo(BERLIN)).replace(tzinfo=None) == datetime(2027, 3, 28, 3, 30)


def test_next_slot_skips_missed_slots_and_respects_until() -> None:
    now = datetime(2027, 5, 20, 12, 0, tzinfo=UTC)  # 14:00 in Berlin
    anchor = datetime(2027, 5, 10, 9, 0)  # ten days ago, every day at 09:00
    slot, when = recurrence_rules.next_slot(series_row(anchor, 1), 0, now) or (0, now)
    assert (slot, when) == (11, datetime(2027, 5, 21, 7, 0, tzinfo=UTC))  # tomorrow 09:00
    every_three = recurrence_rules.next_slot(series_row(anchor, 3), 0, now)
    assert every_three == (4, datetime(2027, 5, 22, 7, 0, tzinfo=UTC))
    ended = series_row(anchor, 1, until=datetime(2027, 5, 21, 6, 0, tzinfo=UTC))
    assert recurrence_rules.next_slot(ended, 0, now) is None


async def schedule(
    client: httpx.AsyncClient,
    team: Team,
    account: str,
    when: str,
    rule: dict[str, Any],
    timezone: str = BERLIN,
) -> dict[str, Any]:
    content_id = await approved_content(client, team)
    variables = {
        "contentId": content_id,
        "socialAccountIds": [account],
        "scheduledAt": when,
        "timezone": timezone,
        "recurrence": rule,
    }
    data = await call(client, team.owner, SCHEDULE, {"i": variables})
    payload: dict[str, Any] = data["schedulePost"]
    return payload


async def publish(state: AppState, delivery: Delivery, post_id: str) -> str:
    [target] = await targets_of(state, post_id)
    await make_due(state, target.id)
    return await engine.run(delivery, target.id, 0)


async def occurrences(state: AppState, series_id: uuid.UUID) -> list[ScheduledPost]:
    async with state.session_factory() as session:
        rows = await session.scalars(
            select(ScheduledPost)
            .where(ScheduledPost.series_id == series_id)
            .order_by(ScheduledPost.occurrence_index)
        )
        return list(rows.all())


async def series_of(state: AppState, post_id: str) -> PostSeries:
    async with state.session_factory() as session:
        post = await session.get(ScheduledPost, uid(post_id))
        assert post is not None and post.series_id is not None
        series = await session.get(PostSeries, post.series_id)
        assert series is not None
        return series


async def test_weekly_series_across_dst_made_once_per_occurrence_and_ended_by_count(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    made = await schedule(client, team, hook, "2027-03-25T09:00:00", {"everyDays": 7, "count": 3})
    assert made["errors"] == []
    first = made["post"]
    assert first["scheduledAt"].startswith("2027-03-25T08:00:00")  # 09:00 CET
    assert (first["occurrenceIndex"], first["recurrence"]["everyDays"]) == (0, 7)
    assert first["recurrence"]["count"] == 3 and first["recurrence"]["timezone"] == BERLIN
    assert first["nextOccurrenceAt"].startswith("2027-04-01T07:00:00")  # 09:00 CEST

    assert await publish(state, delivery, first["id"]) == "published"
    series = await series_of(state, first["id"])
    posts = await occurrences(state, series.id)
    assert [p.occurrence_index for p in posts] == [0, 1]
    second = posts[1]
    assert second.scheduled_at == datetime(2027, 4, 1, 7, 0, tzinfo=UTC)
    [target] = await targets_of(state, gid("ScheduledPost", second.id))
    assert target.status == "PENDING" and target.social_account_id == uid(hook)
    assert target.next_attempt_at == second.scheduled_at and target.series_id == series.id

    # The hook again, twice at once and once more: still exactly one next occurrence.
    [done] = await targets_of(state, first["id"])

    async def hook_once() -> ScheduledPost | None:
        async with state.session_factory() as session, session.begin():
            return await recurrence.continue_series(session, done)

    assert await asyncio.gather(hook_once(), hook_once()) == [None, None]
    assert await hook_once() is None
    assert [p.occurrence_index for p in await occurrences(state, series.id)] == [0, 1]
    node = await call(client, team.owner, NODE, {"id": first["id"]})
    assert node["node"]["nextOccurrenceAt"].startswith("2027-04-01T07:00:00")

    assert await publish(state, delivery, gid("ScheduledPost", second.id)) == "published"
    third = (await occurrences(state, series.id))[2]
    assert third.occurrence_index == 2 and third.scheduled_at == datetime(
        2027, 4, 8, 7, 0, tzinfo=UTC
    )
    assert await publish(state, delivery, gid("ScheduledPost", third.id)) == "published"
    assert len(await occurrences(state, series.id)) == 3  # count reached: no fourth
    node = await call(client, team.owner, NODE, {"id": gid("ScheduledPost", third.id)})
    assert node["node"]["nextOccurrenceAt"] is None
    assert node["node"]["recurrence"]["endedAt"] is not None
    assert receiver.creations.total() == 3


async def test_after_a_long_outage_the_series_reanchors_without_a_burst(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    soon = (datetime.now(ZoneInfo(BERLIN)) + timedelta(hours=2)).replace(tzinfo=None)
    made = await schedule(
        client, team, hook, soon.isoformat(timespec="seconds"), {"everyDays": 1, "count": 50}
    )
    post_id = made["post"]["id"]
    series = await series_of(state, post_id)
    # The workers were down for ten days: the first occurrence only goes out now.
    anchor = series.anchor_local - timedelta(days=10)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(PostSeries).where(PostSeries.id == series.id).values(anchor_local=anchor)
        )
        await session.execute(
            update(ScheduledPost)
            .where(ScheduledPost.id == uid(post_id))
            .values(scheduled_at=datetime.now(UTC) - timedelta(days=10))
        )
    before = datetime.now(UTC)
    assert await publish(state, delivery, post_id) == "published"
    posts = await occurrences(state, series.id)
    assert [p.occurrence_index for p in posts] == [0, 1]  # one next post, no catch-up burst
    nxt = posts[1]
    assert before < nxt.scheduled_at <= before + timedelta(days=1)
    local = nxt.scheduled_at.astimezone(ZoneInfo(BERLIN))
    assert (local.hour, local.minute) == (anchor.hour, anchor.minute)
    assert nxt.occurrence_slot is not None and nxt.occurrence_slot >= 10
    assert receiver.creations.total() == 1


async def test_until_ends_the_series_and_a_failed_occurrence_continues_it(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    until = "2027-06-03T12:00:00+00:00"  # room for 1 June and 3 June, not 5 June
    made = await schedule(
        client, team, hook, "2027-06-01T10:00:00", {"everyDays": 2, "until": until}, "UTC"
    )
    post_id = made["post"]["id"]
    series = await series_of(state, post_id)
    receiver.script.append(Reply(422, {"error": "rejected"}))
    assert await publish(state, delivery, post_id) == "failed"  # a final failure continues
    posts = await occurrences(state, series.id)
    assert [p.scheduled_at for p in posts] == [
        datetime(2027, 6, 1, 10, tzinfo=UTC),
        datetime(2027, 6, 3, 10, tzinfo=UTC),
    ]
    assert await publish(state, delivery, gid("ScheduledPost", posts[1].id)) == "published"
    assert len(await occurrences(state, series.id)) == 2
    assert (await series_of(state, post_id)).ended_at is not None


async def test_cancel_series_stops_it_and_cancels_what_is_not_out(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    made = await schedule(client, team, hook, "2027-02-01T09:00:00", {"everyDays": 2, "count": 9})
    first_id = made["post"]["id"]
    assert await publish(state, delivery, first_id) == "published"
    series = await series_of(state, first_id)
    second = gid("ScheduledPost", (await occurrences(state, series.id))[1].id)

    plain = await call(client, team.owner, CANCEL, {"id": first_id, "s": False})
    assert [e["code"] for e in plain["cancelScheduledPost"]["errors"]] == ["INVALID_STATE"]
    done = await call(client, team.owner, CANCEL, {"id": second, "s": True})
    payload = done["cancelScheduledPost"]
    assert payload["errors"] == [] and payload["post"]["status"] == "CANCELLED"
    assert payload["post"]["recurrence"]["cancelledAt"] is not None
    assert payload["post"]["nextOccurrenceAt"] is None
    # The sweep makes no next occurrence for a cancelled series' done posts.
    async with state.session_factory() as session, session.begin():
        assert await recurrence.sweep(session) == []
    assert len(await occurrences(state, series.id)) == 2

    once = await schedule(client, team, hook, "2027-02-01T09:00:00", {"everyDays": 2, "count": 1})
    assert once["post"]["nextOccurrenceAt"] is None  # a series of one
    content_id = await approved_content(client, team)
    single = await schedule_once(client, team, content_id, [hook], datetime.now(UTC) + SOON)
    shown = await call(client, team.owner, NODE, {"id": single["post"]["id"]})
    assert shown["node"]["occurrenceIndex"] is None and shown["node"]["recurrence"] is None
    refused = await call(client, team.owner, CANCEL, {"id": single["post"]["id"], "s": True})
    [error] = refused["cancelScheduledPost"]["errors"]
    assert (error["field"], error["code"]) == ("cancelSeries", "INVALID")


async def test_a_cancelled_occurrence_is_followed_by_the_next(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    made = await schedule(client, team, hook, "2027-02-01T09:00:00", {"everyDays": 1, "count": 5})
    first_id = made["post"]["id"]
    cancelled = await call(client, team.owner, CANCEL, {"id": first_id, "s": False})
    assert cancelled["cancelScheduledPost"]["errors"] == []
    async with state.session_factory() as session, session.begin():
        made_now = await recurrence.sweep(session)
    series = await series_of(state, first_id)
    assert [p.series_id for p in made_now] == [series.id]
    assert [p.occurrence_index for p in await occurrences(state, series.id)] == [0, 1]


async def test_recurrence_rules_are_checked(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    when = "2027-02-01T09:00:00"
    no_end = await schedule(client, team, hook, when, {"everyDays": 3})
    assert [(e["field"], e["code"]) for e in no_end["errors"]] == [("recurrence", "REQUIRED")]
    zero = await schedule(client, team, hook, when, {"everyDays": 0, "count": 2})
    assert [(e["field"], e["code"]) for e in zero["errors"]] == [
        ("recurrence.everyDays", "INVALID")
    ]
    early = await schedule(
        client, team, hook, when, {"everyDays": 1, "until": "2027-01-01T00:00:00Z"}
    )
    assert [e["field"] for e in early["errors"]] == ["recurrence.until"]
    far = await schedule(client, team, hook, when, {"everyDays": 1, "until": "2031-01-01T00:00Z"})
    assert [e["code"] for e in far["errors"]] == ["TOO_FAR"]
    many = await schedule(client, team, hook, when, {"everyDays": 1, "count": 5000})
    assert [e["field"] for e in many["errors"]] == ["recurrence.count"]
    async with state.session_factory() as session:  # nothing of the refused ones was kept
        for table in (PostSeries, PostTarget):
            kept = await session.scalar(
                select(func.count())
                .select_from(table)
                .where(table.workspace_id == uid(team.workspace_id))
            )
            assert kept == 0
