"""The library page's read path: plain rows, comment counts in the page's own statement, and
nothing made for fields a query does not select."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
from starlette.applications import Starlette

from app.models import Content as ContentRow
from app.models import ContentComment
from schema.lazy import PENDING
from schema.lookahead import Later
from schema.types.content.items import Content
from schema.types.content.variations import ContentVariation
from tests.api.test_query_counts import count_statements
from tests.helpers import create_workspace, gql, register

PAGE = """
query($ws: ID!) { contents(workspaceId: $ws, first: 10, orderBy: CREATED_ASC) {
  edges { node { title commentCount } } } }
"""


def _raw(gid: str) -> uuid.UUID:
    return uuid.UUID(base64.b64decode(gid).decode().split(":", 1)[1])


async def test_comment_counts_come_with_the_page_rows(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    comments = [0, 1, 3]
    async with app.state.smartcontent.session_factory() as session, session.begin():
        for i, count in enumerate(comments):
            item = ContentRow(
                id=uuid.uuid4(),
                workspace_id=_raw(ws),
                title=f"Item {i}",
                body="b",
                content_type="SOCIAL_POST",
                format="PLAIN",
                status="DRAFT",
                tags=[],
                version=1,
                created_at=datetime(2026, 1, 1 + i, tzinfo=UTC),
            )
            session.add(item)
            await session.flush()
            for _ in range(count):
                session.add(
                    ContentComment(content_id=item.id, author_name="O", body="c", kind="COMMENT")
                )
    with count_statements(app) as statements:
        body = await gql(client, PAGE, {"ws": ws}, headers=owner.headers)
    nodes = [e["node"] for e in body["data"]["contents"]["edges"]]
    assert [(n["title"], n["commentCount"]) for n in nodes] == [
        ("Item 0", 0),
        ("Item 1", 1),
        ("Item 2", 3),
    ]
    # auth and the page: the counts are a column of the page, not a batch after it
    assert len(statements) == 2, statements
    assert "count(" in statements[-1]
    # Not selected, not counted.
    with count_statements(app) as statements:
        await gql(client, PAGE.replace("commentCount", ""), {"ws": ws}, headers=owner.headers)
    assert "count(" not in statements[-1]


def _content_row(**fields: object) -> SimpleNamespace:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    values: dict[str, object] = dict(
        id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        title="T",
        body="B",
        content_type="SOCIAL_POST",
        format="PLAIN",
        status="DRAFT",
        campaign_id=uuid.uuid4(),
        tags=[],
        created_by_id=uuid.uuid4(),
        version=1,
        created_at=when,
        updated_at=when,
        deleted_at=None,
        embedded_version=None,
        text_metrics=None,
        text_metrics_version=None,
    )
    values.update(fields)
    return SimpleNamespace(**values)


def test_an_items_relations_are_made_only_when_read() -> None:
    item = Content.from_row(_content_row())  # type: ignore[arg-type]
    for name in ("author", "campaign", "comment_count", "variations"):
        assert item.__dict__[name] is PENDING, name
    later = item.variations
    assert isinstance(later, Later)
    assert item.variations is later  # made once, kept
    assert item.__dict__["author"] is PENDING  # the others still untouched
    # Without an author or a campaign there is nothing to load, ever.
    alone = Content.from_row(_content_row(created_by_id=None, campaign_id=None))  # type: ignore[arg-type]
    assert alone.author is None and alone.campaign is None
    # A value set first (a page's preload) is what the field reads.
    item.comment_count = 7
    assert item.comment_count == 7


async def test_a_variations_rule_check_runs_once_when_a_field_is_read() -> None:
    row = SimpleNamespace(
        id=uuid.uuid4(),
        content_id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        platform="LINKEDIN",
        body="x" * 5000,
        subject=None,
        preheader=None,
        media_ids=[],
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        text_metrics=None,
        text_metrics_version=None,
    )
    variation = ContentVariation.from_row(row)  # type: ignore[arg-type]
    for name in ("character_count", "within_limits", "violations", "parts"):
        assert variation.__dict__[name] is PENDING, name
    assert variation.rule_check is None
    assert await variation.character_count == 5000  # type: ignore[misc]
    check = variation.rule_check
    assert check is not None
    assert await variation.within_limits is False  # type: ignore[misc]
    assert variation.rule_check is check  # one check for every rule field
    assert [v.code for v in await variation.violations] == ["TOO_LONG"]  # type: ignore[misc]
    assert variation.__dict__["parts"] is PENDING  # never read, never made
    # Checked up front (a page that selects the rule fields): plain values.
    eager = ContentVariation.from_row(row, [], check=True)  # type: ignore[arg-type]
    assert eager.character_count == 5000 and eager.within_limits is False
