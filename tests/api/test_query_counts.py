"""SQL statements per request must not grow with page size (dataloaders everywhere)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event
from starlette.applications import Starlette

from app.models import Membership, User, Workspace
from app.security import passwords
from tests.helpers import PASSWORD, gql, register

PAGE = """
query($n: Int!) {
  workspaces(first: $n) {
    edges { node {
      id name viewerRole memberCount
      members(first: 10) { edges { node { role joinedAt user { id name email } } } }
    } }
  }
}
"""


@contextmanager
def count_statements(app: Starlette) -> Iterator[list[str]]:
    engine = app.state.smartcontent.engine.sync_engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _workspaces_with_members(app: Starlette, owner_id: str, count: int) -> None:
    """`count` workspaces owned by the caller, each with three other members."""
    import base64

    owner = uuid.UUID(base64.b64decode(owner_id).decode().split(":", 1)[1])
    password_hash = passwords.hash_password(PASSWORD)
    async with app.state.smartcontent.session_factory() as session, session.begin():
        for i in range(count):
            workspace = Workspace(id=uuid.uuid4(), name=f"W{i}", brand_voice={})
            session.add(workspace)
            await session.flush()
            session.add(Membership(workspace_id=workspace.id, user_id=owner, role="OWNER"))
            for role in ("ADMIN", "MEMBER", "VIEWER"):
                user = User(
                    id=uuid.uuid4(),
                    email=f"{uuid.uuid4().hex[:10]}@example.com",
                    name=role,
                    password_hash=password_hash,
                    token_version=0,
                )
                session.add(user)
                await session.flush()
                session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=role))


async def test_workspace_page_statements_do_not_grow_with_page_size(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    await _workspaces_with_members(app, account.user_id, 12)
    await gql(client, "{ __typename }", headers=account.headers)  # its principal, cached
    counts = {}
    for size in (2, 12):
        with count_statements(app) as statements:
            body = await gql(client, PAGE, {"n": size}, headers=account.headers)
        edges = body["data"]["workspaces"]["edges"]
        assert len(edges) == size
        assert all(len(e["node"]["members"]["edges"]) == 4 for e in edges)
        assert all(e["node"]["memberCount"] == 4 for e in edges)
        assert all(
            m["node"]["user"] is not None for e in edges for m in e["node"]["members"]["edges"]
        )
        counts[size] = len(statements)
    assert counts[2] == counts[12], counts
    # auth, page, member counts, member pages, users (and slack for one more)
    assert counts[12] <= 7, counts
