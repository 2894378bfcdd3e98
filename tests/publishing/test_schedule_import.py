"""importSchedule: a CSV upload scheduled row by row, with a per-row report; refusals as
schedulePost's; whole-file refusals (size, rows, encoding); dry runs; batched look-ups."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.models import AuditEntry, Content, PostTarget, ScheduledPost
from app.state import AppState
from tests.api.test_query_counts import count_statements
from tests.helpers import create_workspace, register
from tests.publishing.conftest import Team, approved_content, call, connect_webhook
from tests.publishing.receiver import Receiver
from tests.teams import uid

IMPORT = """
mutation($ws: ID!, $file: Upload!, $dry: Boolean!, $tz: String!) {
  importSchedule(workspaceId: $ws, file: $file, dryRun: $dry, timezone: $tz) {
    report {
      dryRun total accepted refused warnings
      rows { row accepted postId scheduledAt errors { field code message } }
    }
    errors { field code message }
  }
}
"""


async def upload(
    client: httpx.AsyncClient,
    team: Team,
    data: bytes,
    *,
    dry_run: bool = False,
    timezone: str = "UTC",
) -> dict[str, Any]:
    """A GraphQL multipart request, as clients send uploads."""
    operations = {
        "query": IMPORT,
        "variables": {"ws": team.workspace_id, "file": None, "dry": dry_run, "tz": timezone},
    }
    response = await client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("schedule.csv", data, "text/csv")},
        headers={**team.owner.headers, "Apollo-Require-Preflight": "true"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["importSchedule"]
    return payload


def later(hours: int) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


def codes(row: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(e["field"], e["code"]) for e in row["errors"]]


async def count(state: AppState, model: type[Any]) -> int:
    async with state.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_mixed_file_is_judged_row_by_row(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url, "Main hook"))["account"]["id"]
    gone = (await connect_webhook(client, team, receiver.url, "Old hook"))["account"]["id"]
    await call(
        client,
        team.owner,
        "mutation($id: ID!) { disconnectSocialAccount(id: $id) { errors { code } } }",
        {"id": gone},
    )
    first = await approved_content(client, team, title="First")
    second = await approved_content(client, team, title="Second")
    draft = await call(
        client,
        team.owner,
        "mutation($i: CreateContentInput!) { createContent(input: $i) { content { id } } }",
        {"i": {"workspaceId": team.workspace_id, "title": "Draft", "body": "Not yet"}},
    )
    draft_id = draft["createContent"]["content"]["id"]
    other = Team(await register(client), "")
    other.workspace_id = await create_workspace(client, other.owner, "Other")
    foreign = await approved_content(client, other, title="Theirs")

    t1 = later(3)
    berlin_wall_clock = (datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(days=2)).replace(
        hour=9, minute=0, second=0, microsecond=0, tzinfo=None
    )
    lines = [
        "Content_ID,Account,account_id,Scheduled At,TimeZone,first_comment",
        f"{first},,{hook},{t1.isoformat()},,hello",  # 2: accepted
        f"{second},Main hook,,{berlin_wall_clock.isoformat()},Europe/Berlin,",  # 3: by name
        f"{first},,{hook},next tuesday,,",  # 4: bad time
        f"{first},,{hook},{(datetime.now(UTC) - timedelta(hours=1)).isoformat()},,",  # 5
        f"{uuid.uuid4()},,{hook},{t1.isoformat()},,",  # 6: unknown content
        f"{foreign},,{hook},{t1.isoformat()},,",  # 7: another workspace's content
        f"{second},,{gone},{later(4).isoformat()},,",  # 8: disconnected account
        f'"{first}"x,,{hook},{t1.isoformat()},,',  # 9: malformed line
        f"{first},,{hook},{t1.isoformat()},,",  # 10: duplicate of row 2
        f"{draft_id},,{hook},{t1.isoformat()},,",  # 11: needs approval
        "",
        f"{first},,{hook},{t1.isoformat()},Mars/Olympus,",  # 13: bad zone
        f"{second},Nobody,,{t1.isoformat()},,",  # 14: unknown account name
    ]
    data = "\ufeff" + "\r\n".join(lines) + "\r\n"  # a BOM and CRLFs, as spreadsheets write
    payload = await upload(client, team, data.encode())
    assert payload["errors"] == []
    report = payload["report"]
    rows = {r["row"]: r for r in report["rows"]}
    assert sorted(rows) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]
    assert (report["total"], report["accepted"], report["refused"]) == (12, 2, 10)
    assert report["dryRun"] is False
    assert report["warnings"] == ["Column 'first_comment' is not imported; it was ignored."]
    assert rows[2]["accepted"] and rows[2]["postId"]
    assert datetime.fromisoformat(rows[2]["scheduledAt"]) == t1
    assert rows[3]["accepted"] and rows[3]["postId"]
    local = datetime.fromisoformat(rows[3]["scheduledAt"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert local.replace(tzinfo=None) == berlin_wall_clock  # the naive time read in Berlin
    assert codes(rows[4]) == [("scheduled_at", "INVALID")]
    assert codes(rows[5]) == [("scheduled_at", "IN_THE_PAST")]
    assert codes(rows[6]) == [("content_id", "NOT_FOUND")]
    assert codes(rows[7]) == [("content_id", "NOT_FOUND")]  # not told it exists elsewhere
    assert codes(rows[8]) == [("account_id", "ACCOUNT_NOT_CONNECTED")]
    assert codes(rows[9]) == [(None, "MALFORMED")]
    assert codes(rows[10]) == [(None, "DUPLICATE")]
    assert codes(rows[11]) == [("content_id", "APPROVAL_REQUIRED")]
    assert codes(rows[13]) == [("timezone", "INVALID")]
    assert codes(rows[14]) == [("account", "NOT_FOUND")]
    assert all(r["postId"] is None for n, r in rows.items() if n not in (2, 3))

    async with state.session_factory() as session:
        targets = (await session.scalars(select(PostTarget))).all()
        posts = (await session.scalars(select(ScheduledPost))).all()
        statuses = {
            c.id: c.status
            for c in (await session.scalars(select(Content))).all()
            if c.id in (uid(first), uid(second), uid(draft_id), uid(foreign))
        }
    assert len(targets) == 2 and len(posts) == 2
    assert {t.social_account_id for t in targets} == {uid(hook)}
    assert {p.content_id for p in posts} == {uid(first), uid(second)}
    assert statuses == {
        uid(first): "SCHEDULED",
        uid(second): "SCHEDULED",
        uid(draft_id): "DRAFT",
        uid(foreign): "APPROVED",
    }

    # The same file again schedules nothing twice: both good rows are duplicates now.
    again = (await upload(client, team, data.encode()))["report"]
    rows = {r["row"]: r for r in again["rows"]}
    assert again["accepted"] == 0
    assert codes(rows[2]) == codes(rows[3]) == [(None, "DUPLICATE")]
    assert "already waiting" in rows[2]["errors"][0]["message"]
    assert await count(state, PostTarget) == 2


async def test_dry_run_schedules_nothing(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content = await approved_content(client, team)
    audits = await count(state, AuditEntry)
    when = later(2)  # once: a second call may fall in the next second
    lines = [
        "content_id;account_id;scheduled_at",  # semicolons, as some locales export
        f"{content};{hook};{when.replace(tzinfo=None).isoformat()}",
        f"{content};{hook};{later(5).replace(tzinfo=None).isoformat()}",
        f"{content};{hook};2020-01-01T10:00:00",
    ]
    payload = await upload(
        client, team, "\n".join(lines).encode(), dry_run=True, timezone="America/New_York"
    )
    report = payload["report"]
    assert (report["dryRun"], report["accepted"], report["refused"]) == (True, 2, 1)
    assert [r["accepted"] for r in report["rows"]] == [True, True, False]
    assert all(r["postId"] is None for r in report["rows"])
    # The naive times were read in the request's zone.
    first = datetime.fromisoformat(report["rows"][0]["scheduledAt"])
    assert first == when.replace(tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)
    assert await count(state, PostTarget) == 0
    assert await count(state, ScheduledPost) == 0
    assert await count(state, AuditEntry) == audits
    async with state.session_factory() as session:
        row = await session.get(Content, uid(content))
        assert row is not None and row.status == "APPROVED"
    done = await upload(client, team, "\n".join(lines).encode(), timezone="America/New_York")
    assert done["report"]["accepted"] == 2 and await count(state, PostTarget) == 2


async def test_whole_file_refusals(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content = await approved_content(client, team)
    row = f"{content},{hook},{later(2).isoformat()}\n"
    header = "content_id,account_id,scheduled_at\n"
    limit = state.settings.schedule_import_max_bytes

    async def refused(data: bytes) -> list[tuple[str | None, str]]:
        payload = await upload(client, team, data)
        assert payload["report"] is None
        return [(e["field"], e["code"]) for e in payload["errors"]]

    assert await refused((header + row * (limit // len(row) + 1)).encode()) == [
        ("file", "TOO_LARGE")
    ]
    many = state.settings.schedule_import_max_rows + 1
    assert await refused((header + row * many).encode()) == [("file", "TOO_MANY")]
    latin1 = (header + f"{content},{hook},{later(2).isoformat()},Café\n").encode("latin-1")
    [(field, code)] = await refused(latin1)
    assert (field, code) == ("file", "NOT_UTF8")
    assert await refused((header + row).encode("utf-16")) == [("file", "NOT_UTF8")]
    assert await refused(b"") == [("file", "EMPTY")]
    assert await refused(header.encode()) == [("file", "EMPTY")]
    assert await refused(b"content_id,scheduled_at\n") == [("file", "REQUIRED")]
    assert await refused(b"content_id,account,Account_Name,scheduled_at\n") == [
        ("file", "DUPLICATE")
    ]
    bad_zone = await upload(client, team, (header + row).encode(), timezone="Nowhere/Else")
    assert [e["field"] for e in bad_zone["errors"]] == ["timezone"]
    assert await count(state, PostTarget) == 0


async def test_lookups_are_batched(
    client: httpx.AsyncClient, pub_app: Starlette, team: Team, receiver: Receiver
) -> None:
    """Contents, accounts and waiting posts are loaded once per file: a file of 12 rows
    issues no more look-ups than one of 2 (only the writes grow)."""
    hooks = [
        (await connect_webhook(client, team, receiver.url, f"Hook {i}"))["account"]["id"]
        for i in range(3)
    ]
    contents = [await approved_content(client, team, title=f"C{i}") for i in range(4)]

    def sheet(n: int, start: int) -> bytes:
        lines = ["content_id,account_id,scheduled_at"]
        for i in range(n):
            when = later(start + i).isoformat()
            lines.append(f"{contents[i % 4]},{hooks[i % 3]},{when}")
        return "\n".join(lines).encode()

    def lookups(statements: list[str]) -> int:
        return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))

    with count_statements(pub_app) as small:
        assert (await upload(client, team, sheet(2, 1), dry_run=True))["report"]["accepted"] == 2
    with count_statements(pub_app) as large:
        assert (await upload(client, team, sheet(12, 20), dry_run=True))["report"]["accepted"] == 12
    assert lookups(large) == lookups(small), (small, large)


async def test_variation_rows_and_clock_gaps(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    made = await call(
        client,
        team.owner,
        "mutation($i: CreateContentInput!) { createContent(input: $i) { content { id } } }",
        {"i": {"workspaceId": team.workspace_id, "title": "Varied", "body": "The long text."}},
    )
    content = made["createContent"]["content"]["id"]
    variations = {}
    for platform in ("WEBHOOK", "LINKEDIN"):
        done = await call(
            client,
            team.owner,
            "mutation($id: ID!, $p: Platform!) { createVariation(contentId: $id, platform: $p)"
            " { variation { id } errors { code } } }",
            {"id": content, "p": platform},
        )
        variations[platform] = done["createVariation"]["variation"]["id"]
    for step in ("submitForReview", "approveContent"):
        await call(
            client,
            team.owner,
            f"mutation($id: ID!) {{ {step}(id: $id) {{ errors {{ code }} }} }}",
            {"id": content},
        )
    when = later(6).isoformat()
    lines = [
        "content_id,variation_id,account_id,scheduled_at,timezone",
        f",{variations['WEBHOOK']},{hook},{when},",  # 2: accepted, the variation's text
        f",{variations['LINKEDIN']},{hook},{later(7).isoformat()},",  # 3: LinkedIn's text
        f"{content},{variations['WEBHOOK']},{hook},{when},",  # 4: both given
        f",{uuid.uuid4()},{hook},{when},",  # 5: no such variation
        f"{content},,{hook},2027-03-28T02:30,Europe/Berlin",  # 6: the clocks skip 02:30
        f"{content},,not-an-id,{when},",  # 7
    ]
    report = (await upload(client, team, "\n".join(lines).encode()))["report"]
    rows = {r["row"]: r for r in report["rows"]}
    assert rows[2]["accepted"], rows[2]
    assert codes(rows[3]) == [("variation_id", "INVALID")]
    assert codes(rows[4]) == [("content_id", "REQUIRED")]
    assert codes(rows[5]) == [("variation_id", "NOT_FOUND")]
    assert codes(rows[6]) == [("scheduled_at", "INVALID")]
    assert "does not exist in Europe/Berlin" in rows[6]["errors"][0]["message"]
    assert codes(rows[7]) == [("account_id", "INVALID")]
    async with state.session_factory() as session:
        [post] = (await session.scalars(select(ScheduledPost))).all()
    assert post.variation_id == uid(variations["WEBHOOK"]) and post.content_id == uid(content)
