"""addToQueue under concurrency: calls for one account at once each take their own slot
(the account's advisory lock serialises finding the slot and saving the post)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from app.models import PostTarget
from app.state import AppState
from tests.publishing.conftest import Team, approved_content, call, connect_webhook
from tests.publishing.receiver import Receiver
from tests.teams import uid

QUEUE = (
    "mutation($c: ID!, $a: ID!) { addToQueue(input: {contentId: $c, socialAccountId: $a})"
    " { post { id scheduledAt } errors { code message } } }"
)
CALLS = 6


async def test_simultaneous_add_to_queue_takes_distinct_slots(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    contents = [await approved_content(client, team, title=f"Post {i}") for i in range(CALLS)]
    slots = [{"weekday": d, "time": t} for d in range(7) for t in ("08:00", "12:00", "18:00")]
    done = await call(
        client,
        team.owner,
        "mutation($i: SetPostingSlotsInput!) { setPostingSlots(input: $i) { errors { code } } }",
        {"i": {"socialAccountId": hook, "timezone": "Europe/Berlin", "slots": slots}},
    )
    assert done["setPostingSlots"]["errors"] == []

    async def add(content_id: str) -> dict[str, Any]:
        data = await call(client, team.owner, QUEUE, {"c": content_id, "a": hook})
        payload: dict[str, Any] = data["addToQueue"]
        return payload

    # Each call runs on its own pooled connection; without the lock they all read the
    # same free slot before any of them commits.
    results = await asyncio.gather(*(add(c) for c in contents))
    assert [r["errors"] for r in results] == [[]] * CALLS
    times = [r["post"]["scheduledAt"] for r in results]
    assert len(set(times)) == CALLS, times
    async with state.session_factory() as session:
        stored = (
            await session.scalars(
                select(PostTarget.scheduled_at).where(PostTarget.social_account_id == uid(hook))
            )
        ).all()
    assert len(stored) == len(set(stored)) == CALLS
